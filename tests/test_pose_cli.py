"""The pose toolchain on files: extract -> render / align, and `animate` driven by keypoints or a raw video."""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest

from animate_anyone.cli.main import main
from animate_anyone.media import iter_frames, probe_frames, write_video
from animate_anyone.pose.keypoints import load_pose

skimage_data = pytest.importorskip("skimage.data")
pytest.importorskip("mediapipe")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("pose")
    photo = skimage_data.astronaut()  # (512, 512, 3) uint8, a person from the waist up
    PIL.Image.fromarray(photo[::2, ::2]).save(d / "ref.png")  # a smaller copy of the same person as reference
    frames = [np.roll(photo, shift, axis=1) for shift in (0, 48, 96)]  # the person moves right
    write_video(d / "driver.mp4", frames, fps=8)
    return d


def test_extract_render_align(files, capsys):
    d = files
    assert main(["pose", "extract", str(d / "driver.mp4"), "-o", str(d / "driver.npz")]) == 0
    pose = load_pose(d / "driver.npz")
    assert (pose.num_frames, pose.width, pose.height, pose.fps) == (3, 512, 512, 8.0)
    neck_x = pose.body[:, 0, 1, 0]
    assert (
        (pose.body[:, 0, 1, 2] > 0).all() and np.all(np.diff(neck_x) > 0) and neck_x[-1] - neck_x[0] > 40
    )  # follows the shift (MediaPipe smooths, so it lags)
    assert "3 frames" in capsys.readouterr().out

    assert main(["pose", "render", str(d / "driver.npz"), "-o", str(d / "skeleton.mp4"), "--size", "256x256"]) == 0
    info = probe_frames(d / "skeleton.mp4")
    assert (info.num_frames, info.width, info.height) == (3, 256, 256)

    out, debug = d / "aligned.json", d / "debug.mp4"
    assert (
        main(
            [
                "pose",
                "align",
                str(d / "driver.npz"),
                "--reference",
                str(d / "ref.png"),
                "-o",
                str(out),
                "--overlay",
                str(debug),
            ]
        )
        == 0
    )
    aligned = load_pose(out)
    assert (aligned.num_frames, aligned.width, aligned.height) == (3, 256, 256)  # the reference's image
    shoulders = lambda p: np.linalg.norm(p.body[0, 0, 2, :2] - p.body[0, 0, 5, :2])  # noqa: E731
    assert shoulders(aligned) == pytest.approx(shoulders(pose) / 2, rel=0.1)  # the reference is half as large
    assert probe_frames(debug).num_frames == 3
    # with the driver's video, the "before" panel shows it under the skeleton (not black)
    over = d / "over.mp4"
    argv = ["pose", "align", str(d / "driver.npz"), "--reference", str(d / "ref.png"), "-o", str(d / "b.json")]
    assert main([*argv, "--overlay", str(over), "--video", str(d / "driver.mp4")]) == 0
    plain, drawn = next(iter_frames(debug)), next(iter_frames(over))
    before = slice(0, 256)  # the driver panel: 512x512 shown at the reference's height, 256
    assert drawn[:, before].mean() > plain[:, before].mean() + 20


def test_animate_from_keypoints_and_from_a_driving_video(files, tiny_model_dir, capsys):
    d = files
    common = ["--model", str(tiny_model_dir), "--reference", str(d / "ref.png"), "--steps", "1", "--quiet"]
    assert main(["pose", "extract", str(d / "driver.mp4"), "-o", str(d / "kp.npz")]) == 0
    assert main(["animate", *common, "--pose", str(d / "kp.npz"), "--out", str(d / "a.mp4")]) == 0
    assert (
        main(
            [
                "animate",
                *common,
                "--driver",
                str(d / "driver.mp4"),
                "--out",
                str(d / "b.mp4"),
                "--frames",
                "2",
                "--no-align",
            ]
        )
        == 0
    )
    assert probe_frames(d / "a.mp4").num_frames == 3 and probe_frames(d / "b.mp4").num_frames == 2
    capsys.readouterr()
    write_video(d / "nobody.mp4", [np.zeros((64, 64, 3), np.uint8)] * 2, fps=8)
    assert main(["animate", *common, "--driver", str(d / "nobody.mp4"), "--out", str(d / "c.mp4")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "nobody.mp4" in err[-1] and not (d / "c.mp4").exists()
