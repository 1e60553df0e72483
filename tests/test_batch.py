"""``animate-anyone batch``: jobs from a JSON-lines file checked whole before the first job (a bad line refuses the
file, every bad line listed, nothing written), a failing job recorded while the others go on, resume after a kill
(nothing redone, nothing half-written, a killed run's temporaries removed by each process for its own jobs),
sharding by rank, and outputs that `evaluate` takes as they are."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from animate_anyone.cli.main import main
from animate_anyone.config import load_config
from animate_anyone.distributed import Launch
from animate_anyone.jobs.animate_config import AnimateConfig
from animate_anyone.jobs.batch import run_batch
from animate_anyone.jobs.job_file import check_jobs, read_jobs
from animate_anyone.media import probe_frames, write_video


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("batch-inputs")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 48, 3), dtype=np.uint8)).save(folder / "ref.png")
    write_video(folder / "pose.mp4", list(rng.integers(0, 255, (3, 64, 48, 3), dtype=np.uint8)), 8.0)
    write_video(folder / "truth.mp4", list(rng.integers(0, 255, (3, 64, 48, 3), dtype=np.uint8)), 8.0)
    return folder


def write_jobs(folder, jobs) -> str:
    path = folder / "jobs.jsonl"
    path.write_text("\n".join(json.dumps(j) for j in jobs) + "\n")
    return str(path)


def good(job_id, **kw):
    return {"id": job_id, "reference": "ref.png", "pose": "pose.mp4", "steps": 1, "size": "48x64", **kw}


def config(model):
    return load_config(AnimateConfig, None, [], {"model": str(model)})


def test_read_jobs_checks_every_line(inputs, tmp_path):
    jobs = read_jobs(write_jobs(inputs, [good("a"), {"reference": "ref.png", "driver": "x.mp4", "seed": 2}]))
    assert [j.id for j in jobs] == ["a", "job-00002"] and jobs[1].driver == inputs / "x.mp4"
    assert jobs[0].settings == {"steps": 1, "size": "48x64"} and jobs[0].reference == inputs / "ref.png"
    for lines, message in [
        (['{"reference": "r.png"}'], "exactly one of 'pose'"),
        (['{"pose": "p.mp4"}'], "no 'reference'"),
        (["[1, 2]"], "expected a JSON object"),
        (["{oops"], "not a JSON object"),
        ([json.dumps(good("a")), json.dumps(good("a"))], "repeats an earlier id"),
        ([json.dumps(good("a", format="webm"))], "format 'webm' is not one of mp4, mov, mkv, gif, png"),
    ]:
        (tmp_path / "bad.jsonl").write_text("\n".join(lines))
        with pytest.raises(ValueError, match=message):
            read_jobs(tmp_path / "bad.jsonl")


def test_a_bad_line_refuses_the_whole_file_before_anything_is_written(inputs, tmp_path, tiny_model_dir, capsys):
    jobs = write_jobs(inputs, [good("a"), good("b"), good("c", out="c.mp4")])  # line 3 of 3: a misspelled key
    out = tmp_path / "results"
    assert main(["batch", jobs, "--out", str(out), "--model", str(tiny_model_dir), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("animate-anyone batch: error: ")
    assert f"{jobs} line 3: unknown key 'out'" in err and "line 1" not in err and "line 2" not in err
    assert not out.exists()  # nothing written, not even DIR/videos
    # A close key is named.
    with pytest.raises(ValueError, match=r"line 1: unknown key 'stpes' \(did you mean 'steps'\?\)"):
        read_jobs(write_jobs(inputs, [good("a", stpes=2)]))


def test_bad_values_and_inputs_are_found_before_the_first_job(inputs, tmp_path, tiny_model_dir):
    jobs = write_jobs(
        inputs,
        [
            good("a", steps=-1),
            good("b", size="abc"),
            good("c", frames=100000000),  # the pose video has 3 frames: named as frames, not as memory
            good("d"),
            good("e", truth="no-truth.mp4"),
            good("f", steps="many"),
        ],
    )
    with pytest.raises(ValueError) as refused:
        check_jobs(jobs, config(tiny_model_dir))
    message = str(refused.value)
    assert message.startswith(f"5 bad lines in {jobs}, no job was run: {jobs} line 1: steps -1: ")
    # a job line's words: its keys (size, frames), not the command's flags
    assert f"; {jobs} line 2: size abc: must look like WIDTHxHEIGHT (e.g. 512x768) or N for a square; " in message
    assert f"; {jobs} line 3: frames 100000000: the pose sequence {inputs / 'pose.mp4'} has 3 frames" in message
    assert "memory" not in message and "line 4" not in message
    assert f"; {jobs} line 5: truth {inputs / 'no-truth.mp4'}: no such file or folder" in message
    assert f"; {jobs} line 6: steps: expected int, got 'many'" in message
    # Many bad lines: lines sharing a reason go together, at most 20 entries, then how many more.
    many = write_jobs(inputs, [good(f"k{i}", steps=-i - 1) for i in range(25)])
    with pytest.raises(ValueError) as refused:
        check_jobs(many, config(tiny_model_dir))
    message = str(refused.value)
    assert message.count(" line ") == 20 and message.endswith("; and 5 more bad lines")
    assert f"{many} line 20: steps -20: " in message and "line 21" not in message
    with pytest.raises(ValueError, match=f"^3 bad lines in {many}, no job was run: {many} lines 1-3: no model"):
        check_jobs(write_jobs(inputs, [good(f"k{i}") for i in range(3)]), load_config(AnimateConfig, None, [], {}))


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([good("..", format="png")], "line 1: id '..': names a folder, not an output"),  # was: 'skipped: output exists'
        ([good(".")], "line 1: id '.': names a folder, not an output"),
        ([good("a/b")], r"line 1: id 'a/b': contains '/'"),
        ([good("a\\b")], r"line 1: id 'a\\\\b': contains '\\'"),
        ([good(".hidden")], r"line 1: id '.hidden': starts with '.' \(hidden names are the batch's temporaries\)"),
        ([good(""), good("b")], "line 1: id '': give a name"),
        ([good("a.mp4", format="png"), good("a")], r"line 2: its output videos/a.mp4 is also line 1's"),
        ([good("a"), good("a", format="gif")], "line 2: id 'a' repeats an earlier id"),
    ],
)
def test_ids_name_outputs_inside_the_videos_folder_and_never_collide(inputs, lines, message):
    with pytest.raises(ValueError, match=message):
        read_jobs(write_jobs(inputs, lines))


def test_a_dotdot_id_is_refused_not_skipped(inputs, tmp_path, tiny_model_dir):
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="id '..': names a folder"):
        run_batch(write_jobs(inputs, [good("..", format="png")]), out, config(tiny_model_dir), progress=False)
    assert not out.exists()


def test_each_process_removes_the_temporaries_of_its_own_jobs_left_by_a_killed_run(inputs, tmp_path, tiny_model_dir):
    # Rank 0 of 2 owns j0 (mp4) and j2 (png frames); j1 is rank 1's, which may be writing it now.
    jobs = write_jobs(inputs, [good("j0"), good("j1"), good("j2", format="png")])
    videos = tmp_path / "out" / "videos"
    videos.mkdir(parents=True)
    (videos / "j0.mp4").write_bytes(b"done")  # finished outputs: skipped, so no model loads here
    (videos / "j2").mkdir()
    mine = [
        videos / ".j0.mp4.0123456789ab.partial",
        videos / ".j2.0123456789ab.partial",
        videos / ".j2.k_7x9q2z.partial",
    ]
    mine[0].write_bytes(b"half a video")
    mine[1].mkdir()  # VideoWriter's PNG frames
    (mine[1] / "000000.png").write_bytes(b"a frame")
    mine[2].mkdir()  # atomic_directory's
    theirs = [videos / ".j1.mp4.ba9876543210.partial", videos / ".j2.mp4.ba9876543210.partial"]
    for path in theirs:
        path.write_bytes(b"being written by rank 1")
    summary = run_batch(jobs, tmp_path / "out", config(tiny_model_dir), launch=Launch(rank=0, world=2), progress=False)
    assert summary["counts"] == {"done": 0, "skipped": 2, "failed": 0}
    assert not any(path.exists() for path in mine)
    assert all(path.exists() for path in theirs)  # another rank's job (and a name no job of rank 0 writes)


def test_ray_checks_the_file_and_removes_temporaries_before_it_starts(inputs, tmp_path, tiny_model_dir, monkeypatch):
    from animate_anyone.jobs.batch_ray import RaySettings, run_batch_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # importing Ray fails: the check comes first
    with pytest.raises(ValueError, match=r"line 2: unknown key 'out'"):
        run_batch_ray(
            write_jobs(inputs, [good("a"), good("b", out="x")]), tmp_path / "out", config(tiny_model_dir), RaySettings()
        )
    assert not (tmp_path / "out").exists()
    # A killed run's temporary is gone before Ray is asked for anything (a stand-in Ray, stopped at its first use).
    videos = tmp_path / "out" / "videos"
    videos.mkdir(parents=True)
    stale = videos / ".a.mp4.0123456789ab.partial"
    stale.write_bytes(b"half a video")
    seen = []

    def cluster_resources():
        seen.append(stale.exists())
        raise RuntimeError("stop here")

    fake = types.SimpleNamespace(is_initialized=lambda: True, cluster_resources=cluster_resources)
    monkeypatch.setitem(sys.modules, "ray", fake)
    with pytest.raises(RuntimeError, match="stop here"):
        run_batch_ray(write_jobs(inputs, [good("a")]), tmp_path / "out", config(tiny_model_dir), RaySettings())
    assert seen == [False]


def test_an_out_that_is_a_file_is_refused_before_any_work(inputs, tmp_path, tiny_model_dir, capsys):
    from animate_anyone.jobs.batch_ray import RaySettings, run_batch_ray

    jobs = write_jobs(inputs, [good("a")])
    taken = tmp_path / "results"
    taken.write_text("not a folder")
    assert main(["batch", jobs, "--out", str(taken), "--model", str(tiny_model_dir), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert (
        err == f"animate-anyone batch: error: --out {taken}: {taken} is a file, not a folder; choose a folder "
        "(new or existing)\n"
    )
    assert taken.read_text() == "not a folder"
    with pytest.raises(NotADirectoryError, match=f"^out {taken / 'sub'}: {taken} is a file"):  # the library's name
        run_batch(jobs, taken / "sub", config(tiny_model_dir), progress=False)
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        run_batch_ray(jobs, taken, config(tiny_model_dir), RaySettings())


def test_a_failing_job_is_recorded_and_the_others_go_on(inputs, tmp_path, tiny_model_dir, monkeypatch):
    import animate_anyone.jobs.animate as animate_module

    # A job that passes the check and fails when it runs: its reference is gone by then (moved, a full disk, ...).
    real_animate = animate_module.animate

    def animate(config, reference, *args, **kwargs):
        if Path(reference).name == "gone.png":
            Path(reference).unlink()
        return real_animate(config, reference, *args, **kwargs)

    monkeypatch.setattr(animate_module, "animate", animate)
    shutil.copy(inputs / "ref.png", inputs / "gone.png")
    jobs = write_jobs(
        inputs,
        [good("one", truth="truth.mp4"), good("broken", reference="gone.png"), good("two", truth="truth.mp4")],
    )
    out = tmp_path / "out"
    code = main(["batch", jobs, "--out", str(out), "--model", str(tiny_model_dir), "--quiet"])
    assert code == 1  # a job failed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"] == {"done": 2, "skipped": 0, "failed": 1}
    failed = [r for r in summary["records"] if r["status"] == "failed"]
    assert failed[0]["id"] == "broken" and "gone.png" in failed[0]["error"]
    for name in ("one", "two"):
        assert probe_frames(out / "videos" / f"{name}.mp4").num_frames == 3
    done = [r for r in summary["records"] if r["status"] == "done"]
    assert all(r["worker"] == "rank-0" and r["attempts"] == 1 and r["seconds"] > 0 for r in done)
    assert summary["workers"] == [{"worker": "rank-0", "pipeline_loads": 1, "jobs": 3}]  # loaded once for 3 jobs
    # Rerun: the finished jobs are skipped, the failed one is tried again.
    shutil.copy(inputs / "ref.png", inputs / "gone.png")
    summary = run_batch(jobs, out, config(tiny_model_dir), progress=False)
    assert summary["counts"] == {"done": 0, "skipped": 2, "failed": 1}
    # With ground truth given, evaluate takes the folders as they are.
    scores = tmp_path / "scores.json"
    argv = ["evaluate", "--pred", str(out / "videos"), "--gt", str(out / "truth"), "--metrics", "psnr"]
    assert main([*argv, "--out", str(scores), "--quiet"]) == 0
    assert json.loads(scores.read_text())["num_videos"] == 2


def test_ranks_take_disjoint_shares_and_the_last_merges(inputs, tmp_path, tiny_model_dir):
    jobs = write_jobs(inputs, [good(f"j{i}") for i in range(5)])
    out = tmp_path / "out"
    seen = []
    for rank in (1, 0):
        summary = run_batch(jobs, out, config(tiny_model_dir), launch=Launch(rank=rank, world=2), progress=False)
        seen.append({r["id"] for r in summary["records"]})
        assert (out / "summary.json").exists() == (rank == 0)  # written once both parts are there
    assert seen[0] == {"j1", "j3"} and seen[1] == {"j0", "j2", "j4"}
    merged = json.loads((out / "summary.json").read_text())
    assert merged["counts"]["done"] == 5 and [r["id"] for r in merged["records"]] == [f"j{i}" for i in range(5)]


def test_killed_in_the_middle_then_rerun_redoes_nothing_and_loses_nothing(inputs, tmp_path, tiny_model_dir):
    jobs = write_jobs(inputs, [good(f"k{i}", steps=3) for i in range(4)])
    out = tmp_path / "out"
    command = [sys.executable, "-m", "animate_anyone.cli.main", "batch", jobs, "--out", str(out)]
    process = subprocess.Popen([*command, "--model", str(tiny_model_dir), "--quiet"])
    deadline = time.monotonic() + 300
    while not (out / "videos" / "k0.mp4").exists():
        assert process.poll() is None and time.monotonic() < deadline, "the batch ended before its first output"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = {p.name: p.stat().st_mtime_ns for p in (out / "videos").glob("*.mp4")}
    assert "k0.mp4" in before and len(before) < 4
    for path in (out / "videos").glob("*.mp4"):  # whatever is there is complete
        assert probe_frames(path).num_frames == 3
    summary = run_batch(jobs, out, config(tiny_model_dir), progress=False)
    assert summary["counts"]["skipped"] == len(before) and summary["counts"]["done"] == 4 - len(before)
    assert all((out / "videos" / name).stat().st_mtime_ns == t for name, t in before.items())  # not redone
    assert sorted(p.name for p in (out / "videos").iterdir()) == [f"k{i}.mp4" for i in range(4)]


def test_png_jobs_write_lossless_frame_folders(inputs, tmp_path, tiny_model_dir):
    jobs = write_jobs(inputs, [good("p", format="png"), good("g", format="gif")])
    summary = run_batch(jobs, tmp_path / "out", config(tiny_model_dir), progress=False)
    assert summary["counts"]["done"] == 2
    frames = sorted((tmp_path / "out" / "videos" / "p").iterdir())
    assert [f.name for f in frames] == ["000000.png", "000001.png", "000002.png"]
    assert probe_frames(tmp_path / "out" / "videos" / "g.gif").num_frames == 3
    assert run_batch(jobs, tmp_path / "out", config(tiny_model_dir), progress=False)["counts"]["skipped"] == 2


def test_ray_settings_are_checked_and_belong_to_the_ray_engine(inputs, tmp_path, capsys):
    from animate_anyone.jobs.batch_ray import RaySettings, _worker_count

    jobs = write_jobs(inputs, [good("a")])
    assert main(["batch", jobs, "--out", str(tmp_path / "out"), "--workers", "2", "--max-attempts", "2"]) == 2
    assert "--workers, --max-attempts belong to the Ray engine; add --engine ray" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    for kwargs, message in [
        ({"workers": 0}, "^workers 0: give at least 1"),
        ({"cpus_per_job": 0}, "^cpus_per_job 0: a worker must reserve some CPU or GPU"),
        ({"gpus_per_job": -1}, "^gpus_per_job -1: must be >= 0"),
        ({"max_attempts": 0}, "^max_attempts 0: give at least 1"),
    ]:
        with pytest.raises(ValueError, match=message):
            RaySettings(**kwargs)
    # Workers: as many as the cluster holds, never more than the jobs; none fitting is an error naming both.
    cluster = {"CPU": 16.0, "GPU": 4.0}
    assert _worker_count(cluster, RaySettings(), 100) == 16
    assert _worker_count(cluster, RaySettings(cpus_per_job=4), 100) == 4
    assert _worker_count(cluster, RaySettings(cpus_per_job=1, gpus_per_job=0.5), 100) == 8
    assert _worker_count(cluster, RaySettings(), 3) == 3 and _worker_count(cluster, RaySettings(workers=2), 9) == 2
    with pytest.raises(ValueError, match="16.0 CPUs and 0 GPUs: not enough for one worker of 1.0 CPUs and 1 GPUs"):
        _worker_count({"CPU": 16.0}, RaySettings(gpus_per_job=1), 5)


def test_ray_workers_get_absolute_paths_and_the_cpu_when_they_reserve_no_gpu(inputs, tmp_path, monkeypatch):
    from animate_anyone.jobs.batch_ray import RaySettings, _for_workers, _worker_count, run_batch_ray

    monkeypatch.chdir(tmp_path)
    base = load_config(AnimateConfig, None, [], {"model": "./models/m"})
    cpu = _for_workers(base, RaySettings())
    assert cpu.model == str(tmp_path / "models" / "m") and cpu.device == "cpu"
    hub = load_config(AnimateConfig, None, [], {"model": "org/name"})  # no such folder: a Hub id, for the workers too
    assert _for_workers(hub, RaySettings()).model == "org/name"
    assert _for_workers(base, RaySettings(gpus_per_job=1)).device == "auto"
    explicit = load_config(AnimateConfig, None, [], {"model": "/m", "device": "cuda"})
    assert _for_workers(explicit, RaySettings()).device == "cuda"  # an explicit device is the user's
    assert read_jobs(write_jobs(inputs, [good("a")]))[0].reference.is_absolute()
    assert _worker_count({"CPU": 2.0}, RaySettings(workers=4), 10) == 2  # never more than the cluster holds
    with pytest.raises(ValueError, match="the Ray engine runs from one process"):
        run_batch_ray(write_jobs(inputs, [good("a")]), tmp_path / "out", base, RaySettings(), launch=Launch(world=2))


def test_each_job_gets_its_own_optimisations_and_its_model_relative_to_the_job_file(inputs, tmp_path, tiny_model_dir):
    """Issue 40, state a job cannot see: the pipeline a process keeps takes each job's ``optimisations.*`` (not those
    of whichever job loaded it first), and a line's ``model`` is found beside the job file, as its inputs are."""
    from animate_anyone.jobs.batch import PipelineCache

    shutil.copytree(tiny_model_dir, tmp_path / "models" / "tiny")
    jobs = tmp_path / "jobs.jsonl"
    line = {"reference": str(inputs / "ref.png"), "pose": str(inputs / "pose.mp4"), "model": "models/tiny"}
    jobs.write_text(json.dumps({**line, "id": "a"}) + "\n" + json.dumps({**line, "id": "b", "pose.det_model": "d"}))
    first, second = read_jobs(jobs)
    assert first.settings["model"] == str(tmp_path / "models" / "tiny")
    assert second.settings["pose.det_model"] == str(tmp_path / "d")
    home = read_jobs(write_jobs(tmp_path, [{**line, "model": "~/models/tiny"}]))[0]
    assert home.settings["model"] == str(Path.home() / "models" / "tiny")  # the user's, as on the command line
    pipes = PipelineCache()
    base = load_config(AnimateConfig, None, [], {"model": str(tiny_model_dir), "device": "cpu"})
    pipe = pipes.get(base)
    assert pipe.optimisations.window_batch == 1
    wide = load_config(
        AnimateConfig, None, ["optimisations.window_batch=3"], {"model": str(tiny_model_dir), "device": "cpu"}
    )
    assert pipes.get(wide) is pipe and pipe.optimisations.window_batch == 3 and pipes.loads == 1
    assert pipes.get(base).optimisations.window_batch == 1  # the next job's own again


def test_overrides_may_follow_the_options():
    """``batch JOBS --out DIR --model M steps=4``: argparse alone refused the trailing ``key=value`` ("unrecognized
    arguments"), since the positional list had been filled, empty, next to JOBS."""
    from animate_anyone.cli.main import parse

    args = parse(["batch", "jobs.jsonl", "seed=1", "--out", "d", "--quiet", "steps=4", "pose.align=false"])
    assert args.jobs == "jobs.jsonl" and args.overrides == ["seed=1", "steps=4", "pose.align=false"]
    with pytest.raises(SystemExit):
        parse(["batch", "jobs.jsonl", "--out", "d", "--bogus"])
