"""``animate-anyone data prepare | check | preview``: build, inspect and look at a training dataset directory."""

from __future__ import annotations

import argparse

# The dataset functions' parameters (data/prepare.py, data/inspect.py, pose/track.py name them in messages) -> flags.
FLAGS = {
    "out": "--out",
    "min_frames": "--min-frames",
    "min_size": "--min-size",
    "fps_range": "--fps-range",
    "max_gap": "--max-gap",
    "person": "--person",
    "frames": "--frames",
    "stride": "--stride",
    "count": "--count",
    "size": "--size",
}


def register(subparsers) -> None:
    from ..pose.track import PERSON_HELP
    from .flags import add_size_argument

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
    pr.add_argument("--person", help=PERSON_HELP)
    pr.add_argument(
        "--allow-person-switch", action="store_true", help="keep clips where the followed person changes part way"
    )
    pr.add_argument("--allow-several-people", action="store_true", help="keep clips with several people in a frame")
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
    add_size_argument(pv, default="256x384", note="of a sample")
    pv.add_argument("--seed", type=int, default=0, help="seed of the sampled clips (default 0)")
    pv.add_argument("--no-augment", action="store_true", help="centred largest crop instead of random crops")
    pv.add_argument("--overwrite", action="store_true", help="replace an existing --out")
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
    from ..config import SettingError
    from ..data.prepare import prepare_dataset
    from .flags import renamed

    try:
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
            person=args.person,
            allow_switches=args.allow_person_switch,
            allow_several=args.allow_several_people,
            progress=not args.quiet,
        )
    except SettingError as error:  # the rule's own words, under this command's flag
        raise renamed(error, FLAGS) from None
    print(report.summary())


def run_check(args) -> None:
    from ..config import SettingError
    from ..data.inspect import summarize
    from .flags import renamed

    try:
        print(summarize(args.data_dir, args.frames, args.stride))
    except SettingError as error:
        raise renamed(error, FLAGS) from None


def run_preview(args) -> None:
    from ..atomic import refuse_existing
    from ..config import SettingError
    from ..data.inspect import preview
    from .flags import renamed

    refuse_existing(args.out, args.overwrite, FLAGS["out"])
    try:
        out = preview(args.data_dir, args.out, args.count, args.size, args.seed, augment=not args.no_augment)
    except SettingError as error:
        raise renamed(error, FLAGS) from None
    print(f"wrote {out} ({args.count} samples: frame | pose | overlay | reference)")
