"""One video across two processes (torchrun, gloo on CPU): the windows of each step are split between the
ranks and the result equals one process's with every preset (on the packaged, trained model); the `animate`
command under torchrun writes one file, equal to the single-process one within 2 levels."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.integration
HELPER = Path(__file__).with_name("video_across_ranks.py")


def torchrun(n: int, *args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={n}", *args]


def run(command, timeout=600):
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.mark.parametrize("preset", ["quality", "fast", "student"])
def test_one_video_across_two_processes_equals_one(tmp_path, preset):
    """The packaged miniature model (trained: temporal layers that are not zero, so a wrong window split, blend
    weight or reused feature changes frames), 30 frames in windows of 12 overlapping by 4 (3 or 4 windows a
    step), each preset: two processes write the one-process video within 2 levels, and share every step's
    windows within one."""
    from animate_anyone.assets import packaged_model

    model, frames = str(packaged_model()), "30"
    run([sys.executable, str(HELPER), model, str(tmp_path / "one"), frames, preset])
    run(torchrun(2, str(HELPER), model, str(tmp_path / "two"), frames, preset))
    one = np.load(tmp_path / "one" / "frames.npy").astype(int)
    two = np.load(tmp_path / "two" / "frames.npy").astype(int)
    assert one.shape == two.shape == (30, 64, 64, 3)
    assert np.abs(one - two).max() <= 2
    single = json.loads((tmp_path / "one" / "rank-0.json").read_text())
    ranks = [json.loads((tmp_path / "two" / f"rank-{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world"] == 2 for r in ranks) and single["world"] == 1
    assert min(single["windows"]) >= 3  # a video of at least 3 windows
    # Every step's windows are split between the ranks, within one of each other, together the single process's.
    for step, (a, b) in enumerate(zip(ranks[0]["windows"], ranks[1]["windows"])):
        assert a + b == single["windows"][step] and abs(a - b) <= 1, (step, a, b)
    for key in ("full_rows", "shallow_rows"):
        assert ranks[0][key] + ranks[1][key] == single[key]
    print(
        f"{preset}, 30 frames, mini: 1 process {single['full_rows']}+{single['shallow_rows']} UNet rows in "
        f"{single['seconds']:.1f} s; 2 processes {[r['full_rows'] + r['shallow_rows'] for r in ranks]} rows in "
        f"{[round(r['seconds'], 1) for r in ranks]} s"
    )


def test_animate_command_under_torchrun_writes_one_equal_file(tmp_path):
    """The command itself, with the fast preset (its feature cache split between the processes)."""
    from PIL import Image

    from animate_anyone.assets import packaged_model
    from animate_anyone.media import iter_frames, write_video
    from animate_anyone_lab.demo import demo_clip

    reference, _, poses = demo_clip(1, 30, 64)
    Image.fromarray(reference[:, 8:56]).save(tmp_path / "ref.png")  # 48x64: another aspect ratio
    write_video(tmp_path / "pose.mp4", list(poses[:, :, 8:56]), 8.0)
    common = [
        "animate",
        "--model",
        str(packaged_model()),
        "--reference",
        str(tmp_path / "ref.png"),
        "--pose",
        str(tmp_path / "pose.mp4"),
        "--preset",
        "fast",
        "--context-frames",
        "12",
        "--quiet",
    ]
    run([sys.executable, "-m", "animate_anyone.cli.main", *common, "--out", str(tmp_path / "one")])
    run(torchrun(2, "-m", "animate_anyone.cli.main", *common, "--out", str(tmp_path / "two")))
    # PNG frames (lossless: h264 would turn a one-level difference into larger ones).
    one = np.stack(list(iter_frames(tmp_path / "one"))).astype(int)
    two = np.stack(list(iter_frames(tmp_path / "two"))).astype(int)
    assert one.shape == two.shape == (30, 88, 64, 3)  # the reference's aspect ratio at the mini model's 64 px
    assert np.abs(one - two).max() <= 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "pose.mp4", "ref.png", "two"]  # written once


def test_batch_under_torchrun_shares_the_jobs(tmp_path, tiny_model_dir):
    from PIL import Image

    from animate_anyone.media import probe_frames, write_video

    rng = np.random.default_rng(2)
    Image.fromarray(rng.integers(0, 255, (64, 48, 3), dtype=np.uint8)).save(tmp_path / "ref.png")
    write_video(tmp_path / "pose.mp4", list(rng.integers(0, 255, (3, 64, 48, 3), dtype=np.uint8)), 8.0)
    jobs = [{"id": f"j{i}", "reference": "ref.png", "pose": "pose.mp4", "steps": 1, "size": "48x64"} for i in range(5)]
    (tmp_path / "jobs.jsonl").write_text("\n".join(json.dumps(j) for j in jobs) + "\n")
    out = tmp_path / "out"
    args = ["-m", "animate_anyone.cli.main", "batch", str(tmp_path / "jobs.jsonl"), "--out", str(out)]
    run(torchrun(2, *args, "--model", str(tiny_model_dir), "--quiet"))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["counts"] == {"done": 5, "skipped": 0, "failed": 0}
    assert {r["rank"] for r in summary["records"]} == {0, 1}  # both processes worked
    assert {w["worker"]: w["pipeline_loads"] for w in summary["workers"]} == {"rank-0": 1, "rank-1": 1}
    assert sorted(p.name for p in (out / "videos").iterdir()) == [f"j{i}.mp4" for i in range(5)]
    assert all(probe_frames(p).num_frames == 3 for p in (out / "videos").iterdir())
