"""``animate-anyone train stage1|stage2|distill --config FILE [key=value ...]``."""

from __future__ import annotations

from .flags import TRAINER_FLAGS

# The trainers' parameters (training/loop.py, preflight.py, light_decoder.py, small_loop.py name them in messages)
# -> the flags of ``train STAGE`` and of ``train light-decoder``.
FLAGS = {"resume": "--resume", "overwrite": "--overwrite"}
LIGHT_DECODER_FLAGS = {
    **FLAGS,
    **TRAINER_FLAGS,
    "model": "--model",
    "size": "--size",
    "batch_size": "--batch-size",
    "lr": "--lr",
}


def register(subparsers) -> None:
    from .flags import add_size_argument, add_trainer_arguments

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
            "--estimate-memory",
            metavar="ARCHITECTURE",
            help="print the memory one training process needs with the networks of ARCHITECTURE (tiny, mini, sd15), "
            "counted on the meta device; nothing trains (--json FILE: also write it)",
        )
        s.add_argument("--json", help="with --estimate-memory: write the estimate to this JSON file")
        s.add_argument(
            "overrides", nargs="*", metavar="key=value", help="dotted overrides, e.g. optim.lr=1e-5 data.frames=24"
        )
        s.set_defaults(run=run)
    light = stages.add_parser(
        "light-decoder",
        help="distil a light decoder (TAESD-style) from a model directory's VAE decoder, into that directory",
    )
    light.add_argument("--model", required=True, help="model directory; its light_decoder/ is written there")
    light.add_argument(
        "--data", nargs="+", required=True, help="dataset directories (manifest.jsonl) to take frames from"
    )
    add_size_argument(light, square=True, note="of the training frames (default: the model's resolution, <= 256)")
    add_trainer_arguments(light, steps=3000, checkpoints="MODEL/light_decoder.checkpoints")
    light.add_argument("--batch-size", type=int, default=8, help="frames per step (default 8)")
    light.add_argument("--lr", type=float, default=1e-3, help="peak learning rate, one-cycle (default 1e-3)")
    light.add_argument("--channels", type=int, default=64, help="channels of every level (default 64, TAESD's)")
    light.add_argument("--blocks", type=int, default=3, help="residual blocks per level (default 3, TAESD's)")
    light.add_argument("--seed", type=int, default=0, help="seed of the initialisation and the frame draws (default 0)")
    light.add_argument("--overwrite", action="store_true", help="replace the model's light decoder")
    light.add_argument("--quiet", action="store_true", help="no progress bar")
    light.set_defaults(run=run_light_decoder)


def run_light_decoder(args) -> None:
    from ..config import SettingError
    from ..training.light_decoder import train_light_decoder
    from .flags import renamed

    try:
        report = train_light_decoder(
            args.model,
            args.data,
            size=args.size,
            steps=args.max_steps,
            batch_size=args.batch_size,
            lr=args.lr,
            channels=args.channels,
            blocks=args.blocks,
            seed=args.seed,
            overwrite=args.overwrite,
            progress=not args.quiet,
            resume=args.resume,
            checkpoint_every=args.checkpoint_every,
            names=LIGHT_DECODER_FLAGS,
        )
    except SettingError as error:  # the rule's own words, under this command's flag
        raise renamed(error, LIGHT_DECODER_FLAGS) from None
    print(
        f"wrote {report['light_decoder']} ({report['parameters'] / 1e6:.2f} M parameters): "
        f"{report['psnr_vs_vae_decode']:.2f} dB PSNR against the VAE's decode on a held batch"
    )


def run(args) -> int | None:
    import sys
    from pathlib import Path

    from ..config import SettingError, load_config
    from ..distributed import Launch
    from ..training.config import TrainConfig
    from ..training.loop import TrainingStopped, train
    from .flags import renamed

    resume, overrides = args.resume, list(args.overrides)
    if resume not in (None, "auto") and "=" in resume and not Path(resume).exists():
        # "--resume key=value ...": argparse gave the first override to --resume; it meant the latest checkpoint
        resume, overrides = "auto", [resume, *overrides]
    config = load_config(TrainConfig, args.config, [*overrides, f"stage={args.stage.removeprefix('stage')}"])
    if args.estimate_memory:
        return print_memory_estimate(config, args.estimate_memory, args.json)
    if args.json:
        raise ValueError("--json goes with --estimate-memory")
    launch = Launch.from_env()  # under torchrun / accelerate launch: this process's place (accelerate joins them)
    try:
        result = train(
            config, resume=resume, progress=not args.quiet, overwrite=args.overwrite, launch=launch, names=FLAGS
        )
    except TrainingStopped as stopped:
        if launch.main:
            print(f"animate-anyone train {args.stage}: {stopped}", file=sys.stderr)
        return 128 + stopped.signum  # 143 after SIGTERM, 130 after Ctrl-C: a scheduler sees it did not finish
    except SettingError as error:  # the rule's own words, under this command's flag
        raise renamed(error, FLAGS) from None

    if launch.main:  # under a launcher the main process alone says it
        print(f"wrote {result}")


def print_memory_estimate(config, size: str, json_path: str | None) -> None:
    import json

    from ..atomic import write_text
    from ..training.memory import GIB, estimate_training_memory

    estimate = estimate_training_memory(config, size)
    width, height = config.data.resolution
    print(
        f"stage {config.stage}, {size} networks, batch {config.batch_size} x {config.data.frames} frames at "
        f"{width}x{height}, mixed_precision {config.mixed_precision}, gradient_checkpointing "
        f"{str(config.gradient_checkpointing).lower()} ({estimate['trained_parameters'] / 1e6:.0f} M trained "
        "parameters), one process:"
    )
    for part, size_bytes in estimate["bytes"].items():
        print(f"  {part:<42} {size_bytes / GIB:8.2f} GiB")
    print(f"  {'total (add 10-20 % headroom)':<42} {estimate['total_bytes'] / GIB:8.2f} GiB")
    if json_path:
        write_text(json_path, json.dumps(estimate, indent=2) + "\n")
        print(f"wrote {json_path}")
