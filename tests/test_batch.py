"""``animate-anyone batch``: jobs from a JSON-lines file, a failing job recorded while the others go on, resume
after a kill (nothing redone, nothing half-written), sharding by rank, and outputs that `evaluate` takes as they are."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from animate_anyone.cli.main import main
from animate_anyone.config import load_config
from animate_anyone.jobs.animate_config import AnimateConfig
from animate_anyone.jobs.batch import read_jobs, run_batch
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


def test_a_failing_job_is_recorded_and_the_others_go_on(inputs, tmp_path, tiny_model_dir):
    jobs = write_jobs(
        inputs,
        [good("one", truth="truth.mp4"), good("broken", reference="missing.png"), good("two", truth="truth.mp4")],
    )
    out = tmp_path / "out"
    code = main(["batch", jobs, "--out", str(out), "--model", str(tiny_model_dir), "--quiet"])
    assert code == 1  # a job failed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"] == {"done": 2, "skipped": 0, "failed": 1}
    failed = [r for r in summary["records"] if r["status"] == "failed"]
    assert failed[0]["id"] == "broken" and "missing.png" in failed[0]["error"]
    for name in ("one", "two"):
        assert probe_frames(out / "videos" / f"{name}.mp4").num_frames == 3
    done = [r for r in summary["records"] if r["status"] == "done"]
    assert all(r["worker"] == "rank-0" and r["attempts"] == 1 and r["seconds"] > 0 for r in done)
    assert summary["workers"] == [{"worker": "rank-0", "pipeline_loads": 1, "jobs": 3}]  # loaded once for 3 jobs
    # Rerun: the finished jobs are skipped, the failed one is tried again.
    summary = run_batch(jobs, out, config(tiny_model_dir), progress=False)
    assert summary["counts"] == {"done": 0, "skipped": 2, "failed": 1}
    # With ground truth given, evaluate takes the folders as they are.
    scores = tmp_path / "scores.json"
    argv = ["evaluate", "--pred", str(out / "videos"), "--gt", str(out / "truth"), "--metrics", "psnr"]
    assert main([*argv, "--out", str(scores), "--quiet"]) == 0
    assert json.loads(scores.read_text())["num_videos"] == 2


def test_ranks_take_disjoint_shares_and_the_last_merges(inputs, tmp_path, tiny_model_dir, monkeypatch):
    jobs = write_jobs(inputs, [good(f"j{i}") for i in range(5)])
    out = tmp_path / "out"
    seen = []
    for rank in (1, 0):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        summary = run_batch(jobs, out, config(tiny_model_dir), progress=False)
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
        ({"workers": 0}, "--workers 0: give at least 1"),
        ({"cpus_per_job": 0}, "one of them > 0"),
        ({"gpus_per_job": -1}, "each must be >= 0"),
        ({"max_attempts": 0}, "--max-attempts 0: give at least 1"),
    ]:
        with pytest.raises(ValueError, match=message):
            RaySettings(**kwargs)
    # Workers: as many as the cluster holds, never more than the jobs; none fitting is an error naming both.
    cluster = {"CPU": 16.0, "GPU": 4.0}
    assert _worker_count(cluster, RaySettings(), 100) == 16
    assert _worker_count(cluster, RaySettings(cpus_per_job=4), 100) == 4
    assert _worker_count(cluster, RaySettings(cpus_per_job=1, gpus_per_job=0.5), 100) == 8
    assert _worker_count(cluster, RaySettings(), 3) == 3 and _worker_count(cluster, RaySettings(workers=2), 9) == 2
    with pytest.raises(ValueError, match="16.0 CPUs and 0 GPUs: not enough for one worker"):
        _worker_count({"CPU": 16.0}, RaySettings(gpus_per_job=1), 5)


def test_ray_workers_get_absolute_paths_and_the_cpu_when_they_reserve_no_gpu(inputs, tmp_path, monkeypatch):
    from animate_anyone.jobs.batch_ray import RaySettings, _for_workers, _worker_count, run_batch_ray

    monkeypatch.chdir(tmp_path)
    base = load_config(AnimateConfig, None, [], {"model": "models/m"})
    cpu = _for_workers(base, RaySettings())
    assert cpu.model == str(tmp_path / "models" / "m") and cpu.device == "cpu"
    assert _for_workers(base, RaySettings(gpus_per_job=1)).device == "auto"
    explicit = load_config(AnimateConfig, None, [], {"model": "/m", "device": "cuda"})
    assert _for_workers(explicit, RaySettings()).device == "cuda"  # an explicit device is the user's
    assert read_jobs(write_jobs(inputs, [good("a")]))[0].reference.is_absolute()
    assert _worker_count({"CPU": 2.0}, RaySettings(workers=4), 10) == 2  # never more than the cluster holds
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="--engine ray runs from one process"):
        run_batch_ray(write_jobs(inputs, [good("a")]), tmp_path / "out", base, RaySettings())
