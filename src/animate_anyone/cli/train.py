"""``animate-anyone train stage1|stage2|distill --config FILE [key=value ...]``."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train stage 1 (image level), stage 2 (temporal layers) or distil a few-step student"
    )
    stages = p.add_subparsers(dest="stage", required=True)
    for stage, what in (
        ("stage1", "image level: ReferenceNet, UNet spatial layers, Pose Guider"),
        ("stage2", "temporal layers"),
        ("distill", "consistency distillation: a few-step student without guidance (configs/train/mini_distill.yaml)"),
    ):
        s = stages.add_parser(stage, help=what)
        s.add_argument("--config", help=f"YAML instance of TrainConfig (configs/train/{stage}.yaml, ...)")
        s.add_argument(
            "--resume", nargs="?", const="auto", help="continue from the latest checkpoint in output_dir, or from PATH"
        )
        s.add_argument(
            "--overwrite", action="store_true", help="start over in a used output_dir (its checkpoints are deleted)"
        )
        s.add_argument("--quiet", action="store_true", help="no progress bar")
        s.add_argument(
            "overrides", nargs="*", metavar="key=value", help="dotted overrides, e.g. optim.lr=1e-5 data.frames=24"
        )
        s.set_defaults(run=run)


def run(args) -> int | None:
    import os
    import sys
    from pathlib import Path

    from ..config import load_config
    from ..training.config import TrainConfig
    from ..training.loop import TrainingStopped, train

    resume, overrides = args.resume, list(args.overrides)
    if resume not in (None, "auto") and "=" in resume and not Path(resume).exists():
        # "--resume key=value ...": argparse gave the first override to --resume; it meant the latest checkpoint
        resume, overrides = "auto", [resume, *overrides]
    config = load_config(TrainConfig, args.config, [*overrides, f"stage={args.stage.removeprefix('stage')}"])
    try:
        result = train(config, resume=resume, progress=not args.quiet, overwrite=args.overwrite)
    except TrainingStopped as stopped:
        if int(os.environ.get("RANK", 0)) == 0:
            print(f"animate-anyone train {args.stage}: {stopped}", file=sys.stderr)
        return 128 + stopped.signum  # 143 after SIGTERM, 130 after Ctrl-C: a scheduler sees it did not finish

    if int(os.environ.get("RANK", 0)) == 0:  # under a launcher the main process alone says it
        print(f"wrote {result}")
