"""``animate-anyone demo``: the packaged miniature model animates a held-out synthetic character, offline on CPU."""

from __future__ import annotations

from animate_anyone.cli.flags import SAMPLING_FLAGS, add_overrides_argument, add_sampling_arguments
from animate_anyone.devices import DEVICE_HELP, DTYPE_HELP

# run_demo's parameters (named in its messages) -> this command's flags, the sampling ones among them
FLAGS = {
    **SAMPLING_FLAGS,
    "frames": "--frames",
    "scale": "--scale",
    "index": "--character",
    "out": "--out",
    "device": "--device",
    "dtype": "--dtype",
}


def register(subparsers) -> None:
    from . import benchmark_defaults

    p = subparsers.add_parser(
        "demo",
        help="animate a held-out synthetic character with the packaged miniature model",
        description="Offline, CPU by default: renders a held-out character, motion and ground truth "
        "with the synthetic generator, animates it with the miniature model shipped in the package "
        "(docs/benchmark.md) and writes reference | pose | result | ground truth side by side.",
    )
    p.add_argument(
        "--out", "-o", default="demo.mp4", help="output video (.mp4, .gif, or a folder of PNG frames); default demo.mp4"
    )
    p.add_argument("--model", help="a model directory to use instead of the packaged one")
    p.add_argument("--character", type=int, default=0, help="held-out character / motion index (default 0)")
    p.add_argument("--frames", type=int, default=24, help="frames (default 24, two seconds)")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial noise (default 0)")
    p.add_argument(
        "--scale", type=int, default=4, help="panel upscaling for viewing, nearest neighbour (default 4: 256 px panels)"
    )
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--dtype", default="auto", help=DTYPE_HELP)
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_sampling_arguments(p, benchmark_defaults())
    add_overrides_argument(p, "sampling settings (without a preset: the benchmark's, 20 steps at guidance 2)")
    p.set_defaults(run=run)


def run(args) -> None:
    from animate_anyone.cli.flags import renamed, sampling_request
    from animate_anyone.media import check_video_output
    from animate_anyone.pipelines.settings import SettingError
    from animate_anyone_lab.demo import run_demo

    check_video_output(args.out, FLAGS["out"], args.overwrite)  # in this command's words, before run_demo's own check
    try:
        result = run_demo(
            args.out,
            model=args.model,
            index=args.character,
            frames=args.frames,
            sampling=sampling_request(args),
            seed=args.seed,
            scale=args.scale,
            device=args.device,
            dtype=args.dtype,
            progress=not args.quiet,
            overwrite=args.overwrite,
        )
    except SettingError as error:  # the rule's own words, under this command's flag
        raise renamed(error, FLAGS) from None
    print(
        f"wrote {result.path} (reference | pose | result | ground truth, {result.frames} frames) in "
        f"{result.seconds:.1f} s; PSNR of the result against the ground truth: {result.psnr:.2f} dB "
        f"(repeating the reference image: {result.copy_psnr:.2f} dB)"
    )
