"""Training data: manifest, toy dataset, the loader's sampling / crops / pose alignment, and `data prepare`.

Alignment is checked on the toy dataset, whose videos carry coloured discs on the nose, wrists and ankles
exactly at their keypoints: after a random crop the disc's centroid in the cropped video frame must fall on
the joint as drawn in the sample's pose image (from a keypoint file, or from a rendered pose at another size).
"""

from __future__ import annotations

import argparse
import json
import pickle

import numpy as np
import pytest
import torch

from animate_anyone.data.dataset import (
    Sample,
    VideoPoseDataset,
    collate,
    crop_box,
    crop_keypoints,
    epoch_keys,
    reference_candidates,
)
from animate_anyone.data.manifest import ManifestError, read_manifest, read_quarantine, write_manifest
from animate_anyone.media import write_video
from animate_anyone.pose.draw import BODY_COLORS
from animate_anyone.pose.keypoints import load_pose
from toy_data import MARKERS, make_toy_dataset

VIDEO_SIZE, RESOLUTION = (96, 128), (64, 96)  # (width, height): the toy videos, the samples


def run_cli(argv: list[str]) -> int:
    """``animate-anyone`` with only the data subcommand, errors handled as cli/main.py does."""
    from animate_anyone.cli import data

    parser = argparse.ArgumentParser(prog="animate-anyone")
    data.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except (FileNotFoundError, FileExistsError, ValueError) as exc:
        print(f"animate-anyone {args.command}: error: {exc}", file=__import__("sys").stderr)
        return 2
    return 0


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_toy_dataset(tmp_path_factory.mktemp("toy") / "data", clips=2, frames=12, size=VIDEO_SIZE, fps=8)


def image(tensor: torch.Tensor, signed: bool) -> np.ndarray:
    """(3, H, W) float -> (H, W, 3) uint8."""
    array = (tensor.permute(1, 2, 0).numpy() + 1) * 127.5 if signed else tensor.permute(1, 2, 0).numpy() * 255
    return np.clip(np.rint(array), 0, 255).astype(np.uint8)


def centroid(mask: np.ndarray) -> np.ndarray | None:
    """(x, y) of the pixel centres in ``mask`` (continuous coordinates), None when empty."""
    ys, xs = np.nonzero(mask)
    return None if len(xs) == 0 else np.array([xs.mean() + 0.5, ys.mean() + 0.5])


def near(rgb: np.ndarray, colour, tolerance: float) -> np.ndarray:
    return np.linalg.norm(rgb.astype(np.float64) - np.array(colour, np.float64), axis=2) < tolerance


# ------------------------------------------------------------------------------------------------ manifest


def test_toy_dataset_and_manifest(toy):
    clips = read_manifest(toy)
    assert [c.id for c in clips] == ["toy_000", "toy_001"]
    for clip in clips:
        assert (clip.num_frames, clip.fps, clip.width, clip.height) == (12, 8.0, *VIDEO_SIZE)
        assert clip.video.is_file() and clip.pose_is_keypoints
        pose = load_pose(clip.pose)
        assert (pose.num_frames, pose.width, pose.height) == (12, *VIDEO_SIZE)
    lines = [json.loads(line) for line in (toy / "manifest.jsonl").read_text().splitlines()]
    assert lines[0]["video"] == "videos/toy_000.mp4" and lines[0]["pose"] == "poses/toy_000.npz"  # relative
    assert read_manifest(toy / "manifest.jsonl") == clips  # the manifest file itself works too
    assert read_quarantine(toy) == []
    # the two clips move differently (different gait phase from the seed)
    a, b = (load_pose(c.pose).body for c in clips)
    assert not np.allclose(a, b)


def test_manifest_errors(tmp_path, toy):
    good = (toy / "manifest.jsonl").read_text().splitlines()

    def manifest(*lines: str):
        path = tmp_path / "manifest.jsonl"
        path.write_text("\n".join(lines) + "\n")
        return path

    base = json.loads(good[0])
    absolute = dict(base, video=str(toy / base["video"]), pose=str(toy / base["pose"]))
    assert (
        read_manifest(manifest(json.dumps(absolute), ""))[0].video == toy / base["video"]
    )  # absolute paths, blank line
    with pytest.raises(FileNotFoundError, match=r"line 2 \(id 'other'\): video not found"):
        read_manifest(
            manifest(json.dumps(absolute), json.dumps(dict(base, id="other")))
        )  # relative to tmp_path: missing
    with pytest.raises(ManifestError, match=r"line 1: not a JSON object"):
        read_manifest(manifest("{oops"))
    with pytest.raises(ManifestError, match=r"line 1 \(id 'toy_000'\): missing fps"):
        read_manifest(manifest(json.dumps({k: v for k, v in absolute.items() if k != "fps"})))
    with pytest.raises(ManifestError, match=r"num_frames must be a positive integer"):
        read_manifest(manifest(json.dumps(dict(absolute, num_frames=0))))
    with pytest.raises(ManifestError, match=r"line 2 .*already used on line 1"):
        read_manifest(manifest(json.dumps(absolute), json.dumps(absolute)))
    with pytest.raises(FileNotFoundError, match="no such manifest"):
        read_manifest(tmp_path / "nowhere")
    # write_manifest writes paths relative to the directory it writes into
    write_manifest(tmp_path / "copy", read_manifest(toy))
    assert read_manifest(tmp_path / "copy") == read_manifest(toy)
    assert json.loads((tmp_path / "copy" / "manifest.jsonl").read_text().splitlines()[0])["video"].startswith("../")


# ------------------------------------------------------------------------------------------------ sampling


@pytest.mark.parametrize("frames, stride", [(1, 1), (4, 2)])
def test_sample_shapes_and_ranges(toy, frames, stride):
    dataset = VideoPoseDataset(toy, frames=frames, stride=stride, resolution=RESOLUTION)
    assert len(dataset) == 2 and dataset.skipped == []
    item = dataset[1, 7]
    width, height = RESOLUTION
    assert item["pixels"].shape == (3, frames, height, width) and item["pixels"].dtype == torch.float32
    assert item["pose"].shape == (3, frames, height, width) and item["pose"].dtype == torch.float32
    assert item["reference"].shape == (3, height, width) and item["reference"].dtype == torch.float32
    assert item["reference_image"].shape == (height, width, 3) and item["reference_image"].dtype == torch.uint8
    assert (
        -1 <= item["pixels"].min() < item["pixels"].max() <= 1
        and -1 <= item["reference"].min() <= item["reference"].max() <= 1
    )
    assert item["pose"].min() == 0 and 0.5 < item["pose"].max() <= 1  # a skeleton on black
    assert torch.equal(item["reference"], item["reference_image"].permute(2, 0, 1).float() / 127.5 - 1)
    assert item["clip_id"] == "toy_001"
    indices = item["frame_indices"].tolist()
    assert len(indices) == frames and all(b - a == stride for a, b in zip(indices, indices[1:]))
    assert 0 <= indices[0] and indices[-1] < 12
    assert not indices[0] <= item["reference_index"] <= indices[-1]  # the video is long enough to avoid the span


def test_samples_are_a_pure_function_of_the_key(toy):
    a = VideoPoseDataset(toy, frames=4, stride=2, resolution=RESOLUTION)
    b = VideoPoseDataset(toy, frames=4, stride=2, resolution=RESOLUTION)  # another instance (another worker)
    first, again = a[0, 123], b[0, 123]
    for name, value in first.items():
        assert torch.equal(value, again[name]) if isinstance(value, torch.Tensor) else value == again[name], name
    others = [a[0, seed] for seed in range(8)]
    assert len({tuple(o["box"].tolist()) for o in others}) == 8  # the crop changes with the seed
    assert len({tuple(o["frame_indices"].tolist()) for o in others}) > 1  # and so do the frames
    assert len({o["reference_index"] for o in others}) > 1
    assert not torch.equal(others[0]["pixels"], others[1]["pixels"])
    assert not torch.equal(a[0, 5]["box"], a[1, 5]["box"])  # one seed, two clips: not the same crop
    with pytest.raises(TypeError, match=r"\(clip index, seed\)"):
        a[0]
    with pytest.raises(IndexError):
        a[2, 0]


def test_without_augment_the_crop_is_the_centred_largest_box(toy):
    dataset = VideoPoseDataset(toy, resolution=RESOLUTION, augment=False)
    box = dataset[0, 1]["box"].tolist()
    # 96x128 video, 2:3 output: the full height, width 128 * 2/3 = 85.33, centred
    assert box == pytest.approx([(96 - 256 / 3) / 2 / 96, 0.0, 1 - (96 - 256 / 3) / 2 / 96, 1.0])
    assert dataset[0, 1]["box"].tolist() == dataset[0, 2]["box"].tolist()


def test_crop_box_and_reference_policy():
    rng = np.random.default_rng(0)
    for _ in range(200):
        x0, y0, x1, y1 = crop_box(rng, 640, 360, (256, 384), True)
        assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
        assert (x1 - x0) * 640 / ((y1 - y0) * 360) == pytest.approx(256 / 384)  # the output's aspect ratio
        assert 0.8 - 1e-9 <= (y1 - y0) <= 1.0  # 0.8-1.0 of the largest box (the full height here)
    assert list(reference_candidates(10, 3, 5)) == [0, 1, 2, 6, 7, 8, 9]
    assert list(reference_candidates(10, 3, 5, margin=2)) == [0, 8, 9]
    assert list(reference_candidates(10, 3, 5, margin=9)) == [0, 1, 2, 6, 7, 8, 9]  # nothing that far: outside the span
    assert list(reference_candidates(4, 0, 3)) == [0, 1, 2, 3]  # the span is the video


def test_short_clips_are_skipped(tmp_path):
    data = make_toy_dataset(tmp_path / "data", clips=3, frames=[12, 6, 7], size=(32, 32))
    with pytest.warns(UserWarning, match="skipped 1 of 3 clips shorter than 7 frames"):
        dataset = VideoPoseDataset(data, frames=4, stride=2, resolution=(32, 32))
    assert len(dataset) == 2 and dataset.skipped == ["toy_001"]
    assert [dataset[i, 0]["clip_id"] for i in range(2)] == ["toy_000", "toy_002"]
    assert dataset[1, 0]["frame_indices"].tolist() == [0, 2, 4, 6]  # the whole 7-frame clip
    assert 0 <= dataset[1, 0]["reference_index"] < 7


def test_collate_and_dataloader(toy):
    dataset = VideoPoseDataset(toy, frames=2, stride=3, resolution=(32, 48))
    keys = epoch_keys(len(dataset), epoch=0, seed=1)
    assert keys == epoch_keys(len(dataset), epoch=0, seed=1) and keys != epoch_keys(len(dataset), epoch=1, seed=1)
    assert sorted(i for i, _ in keys) == [0, 1]
    batch = collate([dataset[k] for k in keys])
    assert batch["pixels"].shape == (2, 3, 2, 48, 32) and batch["reference_image"].shape == (2, 48, 32, 3)
    assert sorted(batch["clip_id"]) == ["toy_000", "toy_001"] and all(len(f) == 2 for f in batch["frame_indices"])
    assert isinstance(batch["reference_index"], list)
    loader = torch.utils.data.DataLoader(dataset, batch_size=2, sampler=keys)  # the default collate works too
    (default,) = list(loader)
    assert torch.equal(default["pixels"], batch["pixels"]) and default["frame_indices"].shape == (2, 2)
    assert pickle.loads(pickle.dumps(dataset))[keys[0]]["clip_id"] == batch["clip_id"][0]  # DataLoader workers
    sample = dataset.sample(*keys[0])
    assert isinstance(sample, Sample) and sample.frame_indices == batch["frame_indices"][0]


# ------------------------------------------------------------------------------------------------ alignment


def test_keypoint_pose_lies_on_the_figure_after_cropping(toy):
    dataset = VideoPoseDataset(toy, frames=2, stride=3, resolution=RESOLUTION, crop_scale=(0.6, 1.0))
    checked, worst = 0, 0.0
    for seed in range(6):
        for index in range(2):
            item = dataset[index, seed]
            keypoints = crop_keypoints(
                load_pose(dataset.clips[index].pose).select(item["frame_indices"].tolist()),
                tuple(item["box"].tolist()),
                RESOLUTION,
            )
            for f in range(2):
                frame, pose = image(item["pixels"][:, f], signed=True), image(item["pose"][:, f], signed=False)
                for joint, colour in MARKERS.items():
                    disc = centroid(near(frame, colour, 60))
                    drawn = centroid(np.all(pose == BODY_COLORS[joint], axis=2))  # the joint's disc (radius 0.5 px)
                    x, y = keypoints.body[f, 0, joint, :2]
                    if not (3 <= x <= RESOLUTION[0] - 3 and 3 <= y <= RESOLUTION[1] - 3):
                        continue  # the marker is cut by the crop: its centroid is biased
                    assert disc is not None and drawn is not None, (seed, index, f, joint)
                    worst = max(worst, float(np.abs(disc - drawn).max()), float(np.abs(disc - (x, y)).max()))
                    checked += 1
    assert checked > 60
    # measured 0.95 px; about 0.5 of it is H.264's: the decoded colour discs sit ~0.5 px left of where they were
    # drawn (4:2:0 chroma siting), the pose is exact. A misaligned crop is off by many pixels.
    assert worst <= 1.25, f"pose and video disagree by up to {worst:.2f} px"


def test_rendered_pose_at_another_size_aligns(tmp_path):
    # the pose "video" is 192x160: another size AND another aspect ratio than the 96x128 video (stretched)
    data = make_toy_dataset(
        tmp_path / "data", clips=1, frames=6, size=VIDEO_SIZE, rendered_pose="png", pose_size=(192, 160)
    )
    (clip,) = read_manifest(data)
    assert not clip.pose_is_keypoints and clip.pose.is_dir()
    dataset = VideoPoseDataset(data, resolution=RESOLUTION, crop_scale=(0.6, 1.0))
    pose = load_pose(data / "poses" / "toy_000.npz")  # the keypoints the video and the rendering were drawn from
    worst, checked = 0.0, 0
    for seed in range(8):
        item = dataset[0, seed]
        frame, rendered = image(item["pixels"][:, 0], signed=True), image(item["pose"][:, 0], signed=False)
        keypoints = crop_keypoints(pose.select(item["frame_indices"].tolist()), tuple(item["box"].tolist()), RESOLUTION)
        for joint, colour in MARKERS.items():
            x, y = keypoints.body[0, 0, joint, :2]
            if not (4 <= x <= RESOLUTION[0] - 4 and 4 <= y <= RESOLUTION[1] - 4):
                continue
            disc, drawn = centroid(near(frame, colour, 60)), centroid(near(rendered, BODY_COLORS[joint], 30))
            assert disc is not None and drawn is not None, (seed, joint)
            worst = max(worst, float(np.abs(disc - drawn).max()), float(np.abs(drawn - (x, y)).max()))
            checked += 1
    assert checked >= 20
    assert worst <= 1.5, f"rendered pose and video disagree by up to {worst:.2f} px"


# ------------------------------------------------------------------------------------------------ prepare


def write_any_video(path, frames, fps):
    """A video in the container ``path``'s suffix names (media's writer, else PyAV's own encoder)."""
    import av

    from animate_anyone.media import H264_FORMATS

    suffix = path.suffix.lower()
    if suffix in H264_FORMATS or suffix == ".gif":
        return write_video(path, frames, fps=fps)
    if suffix == ".m4v":  # Apple's name for an MP4 file
        return write_video(path.with_suffix(".mp4"), frames, fps=fps).rename(path)
    codec = {".webm": "libvpx", ".avi": "mpeg4"}[suffix]  # a new member of VIDEO_SUFFIXES needs a writer here
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def test_dataset_and_evaluation_list_the_videos_media_reads(tmp_path):
    """One list of video suffixes, media.VIDEO_SUFFIXES: media reads a file of each, evaluation pairs every one,
    and data preparation takes all of them but GIFs (data.prepare.DATASET_VIDEO_SUFFIXES)."""
    from animate_anyone.data.prepare import DATASET_VIDEO_SUFFIXES
    from animate_anyone.data.prepare import find_videos as dataset_videos
    from animate_anyone.evaluation.pairing import find_videos as evaluated_videos
    from animate_anyone.media import VIDEO_SUFFIXES, probe_frames

    frames = [np.full((16, 32, 3), 40 * i, np.uint8) for i in range(3)]
    for n, suffix in enumerate(VIDEO_SUFFIXES):
        name = f"v{n}{suffix.upper() if n % 2 else suffix}"  # listings go by the suffix in any case
        assert probe_frames(write_any_video(tmp_path / name, frames, fps=8)).num_frames == 3, name
    (tmp_path / "notes.txt").write_text("not a video")
    (tmp_path / "song.mp3").write_bytes(b"")
    assert sorted(p.suffix.lower() for p in evaluated_videos(tmp_path).values()) == sorted(VIDEO_SUFFIXES)
    assert sorted(p.suffix.lower() for p in dataset_videos(tmp_path)) == sorted(DATASET_VIDEO_SUFFIXES)
    assert set(VIDEO_SUFFIXES) - set(DATASET_VIDEO_SUFFIXES) == {".gif"}


@pytest.fixture(scope="module")
def raw_videos(tmp_path_factory):
    skimage_data = pytest.importorskip("skimage.data")
    from PIL import Image

    root = tmp_path_factory.mktemp("raw")
    person = np.asarray(Image.fromarray(skimage_data.astronaut()).resize((256, 256), Image.Resampling.BILINEAR))

    def moving(n: int, size: tuple[int, int] = (256, 256)) -> list[np.ndarray]:  # the person moves right 2 px a frame
        picture = np.asarray(Image.fromarray(person).resize(size))
        return [np.roll(picture, 2 * i, axis=1) for i in range(n)]

    (root / "set_a").mkdir()
    write_video(root / "set_a" / "good.mp4", moving(16), fps=10)
    write_video(root / "good2.mov", moving(16), fps=10)
    write_video(root / "short.mp4", moving(8), fps=10)
    write_video(root / "small.mp4", moving(16, (128, 128)), fps=10)
    write_video(root / "slow.mkv", moving(16), fps=5)
    write_video(root / "nobody.mp4", [np.full((256, 256, 3), 128, np.uint8)] * 16, fps=10)
    (root / "broken.mp4").write_bytes(b"\x00garbage, not a video\xff" * 50)
    (root / "notes.txt").write_text("not a video, ignored")
    return root


def test_prepare_quarantines_and_resumes(raw_videos, tmp_path, capsys):
    pytest.importorskip("mediapipe")
    out = tmp_path / "dataset"
    assert run_cli(["data", "prepare", str(raw_videos), "--out", str(out), "--quiet"]) == 0
    summary = capsys.readouterr().out
    assert "kept 2, quarantined 5" in summary and "extracted for 2, reused for 0" in summary
    clips = read_manifest(out)
    assert [c.id for c in clips] == ["good2", "set_a/good"]
    assert [c.video for c in clips] == [
        (raw_videos / "good2.mov").resolve(),
        (raw_videos / "set_a" / "good.mp4").resolve(),
    ]
    assert all(c.pose == (out / "poses" / f"{c.id.replace('/', '__')}.npz").resolve() for c in clips)
    assert all((c.num_frames, c.fps, c.width, c.height) == (16, 10.0, 256, 256) for c in clips)
    line = json.loads((out / "manifest.jsonl").read_text().splitlines()[0])
    assert not line["video"].startswith("/") and line["pose"] == "poses/good2.npz"  # relative paths
    reasons = {q["video"].rsplit("/", 1)[-1]: q["reason"] for q in read_quarantine(out)}
    assert reasons == {
        "broken.mp4": "unreadable",
        "nobody.mp4": "no_person",
        "short.mp4": "too_short",
        "slow.mkv": "bad_fps",
        "small.mp4": "low_resolution",
    }
    assert all(q["detail"] for q in read_quarantine(out))
    # the keypoints are the astronaut's, moving right with the frames
    pose = load_pose(clips[0].pose)
    assert (pose.num_frames, pose.width, pose.height) == (16, 256, 256) and (pose.body[:, 0, 1, 2] > 0).all()
    assert pose.body[-1, 0, 1, 0] > pose.body[0, 0, 1, 0]

    stamp = {c.id: c.pose.stat().st_mtime_ns for c in clips}
    assert run_cli(["data", "prepare", str(raw_videos), "--out", str(out), "--quiet"]) == 0
    summary = capsys.readouterr().out
    assert "kept 2, quarantined 5" in summary and "extracted for 0, reused for 2 (+1 known without a person)" in summary
    assert {c.id: c.pose.stat().st_mtime_ns for c in read_manifest(out)} == stamp  # not rewritten
    assert {q["video"].rsplit("/", 1)[-1]: q["reason"] for q in read_quarantine(out)} == reasons

    # the prepared directory feeds the loader (MediaPipe keypoints drawn on the crop)
    dataset = VideoPoseDataset(out, frames=2, stride=4, resolution=(128, 192))
    item = dataset[1, 3]
    assert item["pixels"].shape == (3, 2, 192, 128) and item["pose"].max() > 0.5

    assert run_cli(["data", "check", str(out), "--frames", "8", "--stride", "3"]) == 0
    assert (
        "2 clips, 32 frames (2 keypoints); usable with 8 frames at stride 3: 0; quarantined: 5"
        in capsys.readouterr().out
    )


def test_prepare_thresholds_and_errors(raw_videos, tmp_path, capsys):
    out = tmp_path / "dataset"
    # only cheap videos reach extraction-free outcomes: everything is too short or too small here
    assert run_cli(["data", "prepare", str(raw_videos), "--out", str(out), "--min-frames", "100", "--quiet"]) == 0
    assert "kept 0, quarantined 7 (1 unreadable, 6 too_short)" in capsys.readouterr().out
    assert read_manifest(out) == []
    assert run_cli(["data", "prepare", str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert "no such folder of videos" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert run_cli(["data", "prepare", str(tmp_path / "empty"), "--out", str(out)]) == 2
    assert "no videos" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        run_cli(["data", "prepare", str(raw_videos), "--out", str(out), "--fps-range", "60,10"])
    assert exc.value.code == 2


def test_preview_cli(toy, tmp_path, capsys):
    out = tmp_path / "preview.png"
    assert run_cli(["data", "preview", str(toy), "-o", str(out), "--count", "3", "--size", "64x96"]) == 0
    from PIL import Image

    assert Image.open(out).size == (4 * 64, 3 * 96)
    assert run_cli(["data", "check", str(tmp_path / "none")]) == 2
    assert "no such manifest" in capsys.readouterr().err


def test_prepare_ids_resume_and_overwrite_with_a_stub_detector(tmp_path, monkeypatch, toy):
    import os
    import shutil

    from animate_anyone.data.prepare import prepare_dataset
    from animate_anyone.media import probe_frames
    from animate_anyone.pose import extract

    calls = []

    def stub(source, backend="mediapipe", **kw):  # the toy's exact keypoints instead of a detector
        calls.append(os.path.basename(source))
        info = probe_frames(source)
        pose = load_pose(toy / "poses" / "toy_000.npz")
        pose.fps = info.fps
        return pose, extract.ExtractionReport(str(source), backend, pose.num_frames, 8)

    monkeypatch.setattr(extract, "extract_poses", stub)
    videos = tmp_path / "videos"
    (videos / "sub").mkdir(parents=True)
    for name in ("a.mp4", "a.mov", "sub/a.mp4"):
        shutil.copy(toy / "videos" / "toy_000.mp4", videos / name)
    options = dict(min_frames=8, min_size=64, fps_range=(5, 30), progress=False)
    report = prepare_dataset(videos, tmp_path / "data", absolute_paths=True, **options)
    assert [c.id for c in report.clips] == ["a.mov", "a.mp4", "sub/a"] and len(calls) == 3
    poses = sorted(p.name for p in (tmp_path / "data" / "poses").glob("*.npz"))
    assert poses == ["a.mov.npz", "a.mp4.npz", "sub__a.npz"]
    assert json.loads((tmp_path / "data" / "manifest.jsonl").read_text().splitlines()[0])["video"] == str(
        (videos / "a.mov").resolve()
    )
    assert read_manifest(tmp_path / "data") == report.clips

    report = prepare_dataset(videos, tmp_path / "data", **options)
    assert (report.reused, report.extracted, len(calls)) == (["a.mov", "a.mp4", "sub/a"], [], 3)
    stamp = (videos / "a.mp4").stat().st_mtime_ns
    os.utime(videos / "sub" / "a.mp4", ns=(stamp + 10**10, stamp + 10**10))  # the video changed after its keypoints
    report = prepare_dataset(videos, tmp_path / "data", **options)
    assert (report.reused, report.extracted) == (["a.mov", "a.mp4"], ["sub/a"])
    report = prepare_dataset(videos, tmp_path / "data", overwrite=True, **options)
    assert (report.reused, len(report.extracted), len(calls)) == ([], 3, 7)
    assert "kept 3, quarantined 0; keypoints extracted for 3, reused for 0" in report.summary()
