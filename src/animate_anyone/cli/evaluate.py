"""``animate-anyone evaluate``: score generated videos against ground truth (JSON + CSV + a printed table)."""

from __future__ import annotations

from ..devices import DEVICE_HELP

# evaluate()'s parameters (evaluation/* name them in messages and in the reasons of skipped metrics) -> flags.
FLAGS = {
    "out": "--out",
    "clip_length": "--clip-length",
    "lpips_weights": "--lpips-weights",
    "inception_weights": "--inception-weights",
    "i3d_weights": "--i3d-weights",
    "resnet3d_weights": "--resnet3d-weights",
    "device": "--device",
}


def register(subparsers) -> None:
    from ..evaluation.evaluate import ALL_METRICS, CLIP_LENGTH

    p = subparsers.add_parser(
        "evaluate",
        help="score generated videos against ground-truth videos",
        description="Pairs the videos of --pred and --gt by name (file stem or frame-folder name); "
        "every pair must have the same frame count and size. See docs/evaluation.md.",
    )
    p.add_argument("--pred", required=True, help="generated videos: video files and/or folders of frames")
    p.add_argument("--gt", required=True, help="ground-truth videos, same names as in --pred")
    p.add_argument("--out", "-o", required=True, help="results JSON (a CSV of the same name is written beside it)")
    p.add_argument("--metrics", default="all", help=f"comma-separated, default all: {','.join(ALL_METRICS)}")
    p.add_argument("--pose-dir", help="driving keypoints <name>.npz/.json for PCK (default: extracted from --gt)")
    p.add_argument(
        "--pose-backend",
        default="mediapipe",
        choices=["mediapipe", "dwpose", "regressor"],
        help="pose extractor for PCK (regressor: the synthetic benchmark's keypoint regressor, docs/benchmark.md)",
    )
    p.add_argument(
        "--pose-model", help="with --pose-backend regressor: its folder (default: the packaged one, assets/pose_oracle)"
    )
    p.add_argument(
        "--lpips-weights", help="LPIPS weights (default: the converted cache of evaluation.features, else skipped)"
    )
    p.add_argument(
        "--lpips-net",
        default="alex",
        choices=["alex", "vgg"],
        help="LPIPS backbone (default alex; DisCo's code used vgg)",
    )
    p.add_argument("--inception-weights", help="Inception-v3 weights for FID (skipped without)")
    p.add_argument(
        "--i3d-weights", help="I3D weights for FVD (default: the converted cache of evaluation.features, else skipped)"
    )
    p.add_argument(
        "--resnet3d-weights",
        help="Kinetics 3D ResNet-50 weights (resnet-50-kinetics.pth) for FID-VID (skipped without)",
    )
    p.add_argument(
        "--clip-length",
        type=int,
        default=CLIP_LENGTH,
        help=f"frames per clip for FVD and FID-VID (default {CLIP_LENGTH})",
    )
    p.add_argument(
        "--fvd-samples",
        default="video",
        choices=["video", "clip"],
        help="FVD samples: one per video, the mean of its clips (default, DisCo) or one per clip (original FVD)",
    )
    p.add_argument("--device", default="auto", help="for SSIM and the feature networks: " + DEVICE_HELP)
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out (and its CSV)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args) -> None:
    from ..config import SettingError
    from ..evaluation.evaluate import evaluate, format_table, write_results
    from ..evaluation.output import check_results_output
    from .flags import renamed

    check_results_output(args.out, args.overwrite, FLAGS["out"])
    try:
        results = evaluate(
            args.pred,
            args.gt,
            args.metrics,
            pose_dir=args.pose_dir,
            lpips_weights=args.lpips_weights,
            lpips_net=args.lpips_net,
            inception_weights=args.inception_weights,
            i3d_weights=args.i3d_weights,
            resnet3d_weights=args.resnet3d_weights,
            clip_length=args.clip_length,
            fvd_samples=args.fvd_samples,
            pose_backend=args.pose_backend,
            pose_model=args.pose_model,
            device=args.device,
            progress=not args.quiet,
            weight_names=FLAGS,
        )
    except SettingError as error:  # the rule's own words, under this command's flag
        raise renamed(error, FLAGS) from None
    json_path, csv_path = write_results(results, args.out)
    print(format_table(results))
    print(f"wrote {json_path} and {csv_path}")
