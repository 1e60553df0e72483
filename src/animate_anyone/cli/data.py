"""``animate-anyone data prepare | check | preview``: build, inspect and look at a training dataset directory."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("data", help="prepare and inspect training datasets (videos + keypoints)")
    jobs = p.add_subparsers(dest="job", required=True)

    pr = jobs.add_parser(
        "prepare",
        help="folder of videos -> dataset directory (manifest, quarantine, keypoints)",
        description="Probe every video under VIDEO_DIR (recursive), quarantine unusable ones with a "
        "reason, extract keypoints of the rest into DATA_DIR/poses/ and write DATA_DIR/manifest.jsonl "
        "and quarantine.jsonl. Videos are not copied: the manifest points at them (relative to "
        "DATA_DIR unless --absolute-paths). Rerunning reuses existing keypoint files.",
    )
    pr.add_argument("video_dir", help="folder of videos (.mp4 .mov .webm .mkv .avi), searched recursively")
    pr.add_argument("--out", "-o", required=True, help="dataset directory to write (DATA_DIR)")
    pr.add_argument("--min-frames", type=int, default=16, help="quarantine videos with fewer frames (default 16)")
    pr.add_argument(
        "--min-size", type=int, default=256, help="quarantine videos whose shorter side is smaller (default 256)"
    )
    pr.add_argument(
        "--fps-range",
        type=_fps_range,
        default=(10.0, 60.0),
        metavar="LOW,HIGH",
        help="quarantine videos whose frame rate is outside (inclusive; default 10,60)",
    )
    pr.add_argument(
        "--backend",
        default="mediapipe",
        choices=["mediapipe", "dwpose"],
        help="pose backend (default mediapipe, offline)",
    )
    pr.add_argument("--dwpose-det", help="DWPose detector ONNX (default $ANIMATE_ANYONE_DWPOSE_DET)")
    pr.add_argument("--dwpose-pose", help="DWPose pose ONNX (default $ANIMATE_ANYONE_DWPOSE_POSE)")
    pr.add_argument(
        "--max-gap", type=int, default=8, help="interpolate missing detections over at most this many frames"
    )
    pr.add_argument("--overwrite", action="store_true", help="re-extract keypoints even where a valid file exists")
    pr.add_argument("--absolute-paths", action="store_true", help="store absolute video paths in the manifest")
    pr.add_argument("--quiet", action="store_true", help="no progress bar")
    pr.set_defaults(run=run_prepare)

    ch = jobs.add_parser("check", help="validate a dataset directory and count usable clips")
    ch.add_argument("data_dir", help="dataset directory (or its manifest.jsonl)")
    ch.add_argument("--frames", type=int, default=1, help="frames per sample (default 1)")
    ch.add_argument("--stride", type=int, default=1, help="frame stride (default 1)")
    ch.set_defaults(run=run_check)

    pv = jobs.add_parser("preview", help="write an image of a few samples: frame | pose | overlay | reference")
    pv.add_argument("data_dir", help="dataset directory (or its manifest.jsonl)")
    pv.add_argument("--out", "-o", required=True, help="image to write (.png / .jpg)")
    pv.add_argument("--count", type=int, default=4, help="samples (rows), default 4")
    pv.add_argument("--size", default="256x384", help="WIDTHxHEIGHT of a sample (default 256x384)")
    pv.add_argument("--seed", type=int, default=0)
    pv.add_argument("--no-augment", action="store_true", help="centred largest crop instead of random crops")
    pv.set_defaults(run=run_preview)


def _fps_range(text: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH (e.g. 10,60), got {text!r}") from None
    if not 0 <= low <= high:
        raise argparse.ArgumentTypeError(f"need 0 <= LOW <= HIGH, got {text!r}")
    return low, high


def run_prepare(args) -> None:
    from ..data.prepare import prepare_dataset

    report = prepare_dataset(
        args.video_dir,
        args.out,
        min_frames=args.min_frames,
        min_size=args.min_size,
        fps_range=args.fps_range,
        backend=args.backend,
        overwrite=args.overwrite,
        absolute_paths=args.absolute_paths,
        det_model=args.dwpose_det,
        pose_model=args.dwpose_pose,
        max_gap=args.max_gap,
        progress=not args.quiet,
    )
    print(report.summary())


def run_check(args) -> None:
    from collections import Counter
    from pathlib import Path

    from ..data.manifest import manifest_path, read_manifest, read_quarantine

    clips = read_manifest(args.data_dir)
    if args.frames < 1 or args.stride < 1:
        raise ValueError(f"--frames and --stride must be >= 1, got {args.frames} and {args.stride}")
    span = (args.frames - 1) * args.stride + 1
    usable = sum(c.num_frames >= span for c in clips)
    kinds = Counter("keypoints" if c.pose_is_keypoints else "rendered" for c in clips)
    frames = sum(c.num_frames for c in clips)
    quarantine = Counter(q.get("reason", "?") for q in read_quarantine(Path(manifest_path(args.data_dir)).parent))
    print(
        f"{manifest_path(args.data_dir)}: {len(clips)} clips, {frames} frames "
        f"({', '.join(f'{n} {k}' for k, n in sorted(kinds.items())) or 'none'}); usable with {args.frames} frames at "
        f"stride {args.stride}: {usable}; quarantined: {sum(quarantine.values())}"
        + (f" ({', '.join(f'{n} {r}' for r, n in sorted(quarantine.items()))})" if quarantine else "")
    )


def run_preview(args) -> None:
    import warnings

    import numpy as np
    from PIL import Image

    from ..data.dataset import VideoPoseDataset, epoch_keys
    from ..pose.draw import overlay
    from ..runtime import parse_size

    if args.count < 1:
        raise ValueError(f"--count must be >= 1, got {args.count}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = VideoPoseDataset(
            args.data_dir, frames=1, resolution=parse_size(args.size), augment=not args.no_augment
        )
    if len(dataset) == 0:
        raise ValueError(f"{args.data_dir}: no usable clips")
    rows = []
    for i in range(args.count):
        index, seed = epoch_keys(len(dataset), i // len(dataset), args.seed)[i % len(dataset)]
        s = dataset.sample(index, seed)
        frame = np.rint((s.pixels[:, 0].permute(1, 2, 0).numpy() + 1) * 127.5).astype(np.uint8)
        pose = np.rint(s.pose[:, 0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        rows.append(np.concatenate([frame, pose, overlay(frame, pose), s.reference_image], axis=1))
    Image.fromarray(np.concatenate(rows, axis=0)).save(args.out)
    print(f"wrote {args.out} ({args.count} samples: frame | pose | overlay | reference)")
