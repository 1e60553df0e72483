"""``animate-anyone bench``: speed, memory and FLOPs of a randomly initialised model; optimisation ratios."""

from __future__ import annotations

import argparse

from ..devices import DEVICE_HELP, DTYPE_HELP

# CLI flag -> switch name; --FLAG switches an optimisation on, --no-FLAG off (default: the pipeline's default).
SWITCH_FLAGS = {
    "--ref-kv-cache": "ref_kv_cache",
    "--sdpa": "sdpa",
    "--fused-qkv": "fused_qkv",
    "--channels-last": "channels_last",
    "--chunked-decode": "chunked_decode",
}


def register(subparsers) -> None:
    from ..pipelines.optimisations import SWITCHES, Optimisations
    from .flags import (
        add_architecture_argument,
        add_overrides_argument,
        add_sampling_arguments,
        add_size_argument,
        retire,
    )

    p = subparsers.add_parser(
        "bench",
        help="benchmark inference (random weights): s/step, s/frame by stage, memory, FLOPs, MFU",
        description="Build a model of the given architecture with random weights and time the whole pipeline. "
        "The optimisations are the pipeline's defaults unless switched; --compare also runs each one toggled. "
        "Without a preset or --steps, the steps are the architecture's benchmark workload (tiny 4, mini 20, sd15 20).",
    )
    add_architecture_argument(p)
    add_size_argument(p, note="multiples of 8 (default: the architecture's, tiny 128x128, mini 64x64, sd15 512x768)")
    p.add_argument("--json", metavar="PATH", help="write the full result as JSON")
    p.add_argument("--frames", type=int, help="video length in frames (tiny 16, mini 24, sd15 24)")
    runs = p.add_mutually_exclusive_group()
    runs.add_argument(
        "--compare", action="store_true", help="run the default and each optimisation toggled; report speed ratios"
    )
    runs.add_argument(
        "--compare-presets",
        action="store_true",
        help="run quality and each speed preset round-robin; report seconds per video and speed-ups",
    )
    runs.add_argument(
        "--work",
        action="store_true",
        help="count the per-video work of each preset (or --preset) on the meta device, by stage; nothing runs",
    )
    retire(p, "--width", "give the output size as --size WIDTHxHEIGHT")
    retire(p, "--height", "give the output size as --size WIDTHxHEIGHT")
    retire(p, "--no-guidance", "give --guidance 1")
    p.add_argument("--window-batch", type=int, default=1, help="windows per UNet call (default 1)")
    p.add_argument("--decode-chunk-size", type=int, default=8, help="frames per VAE decode call (default 8)")
    p.add_argument(
        "--decoder",
        choices=["vae", "light"],
        default="vae",
        help="what decodes the final latents: vae (default) or light, a light decoder of TAESD's size (random "
        "weights, as the rest); timed and counted as the stage vae_decode (--work, --compare-presets: quality, the "
        "reference, keeps the VAE's)",
    )
    p.add_argument("--dtype", default="auto", help=DTYPE_HELP)
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument(
        "--compile", action="store_true", help="torch.compile the denoising UNet (compile time reported separately)"
    )
    p.add_argument("--threads", type=int, help="torch CPU threads (default: PyTorch's choice)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs first (default 1)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs (default 3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the inputs and the initial noise (default 0)")
    defaults = Optimisations().switches()
    for flag, name in SWITCH_FLAGS.items():
        state = "on" if defaults[name] else "off"
        p.add_argument(
            flag, dest=name, action=argparse.BooleanOptionalAction, help=f"{SWITCHES[name]} (default {state})"
        )
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    add_sampling_arguments(p, "without --preset or --steps: the architecture's steps (tiny 4, mini 20, sd15 20)")
    add_overrides_argument(p, "sampling settings")
    p.set_defaults(run=run, memory_advice="out of memory; use a smaller --size, fewer --frames or --architecture tiny")


# the smallest value of each numeric flag that is not a sampling setting (None: the architecture's default)
BOUNDS = {
    "--frames": 1,
    "--window-batch": 1,
    "--decode-chunk-size": 1,
    "--threads": 1,
    "--warmup": 0,
    "--repeats": 1,
    "--seed": 0,
}


def check_at_least(flag: str, value: int | float | None, low: int | float) -> None:
    """ValueError naming the flag when a given numeric value is below ``low`` or not a number (NaN, inf)."""
    import math

    if value is not None and not (math.isfinite(value) and value >= low):
        raise ValueError(f"{flag} {value}: must be a number >= {low}")


def switches_from_args(args) -> dict[str, bool]:
    """The switches given on the command line (the others keep the pipeline's defaults)."""
    return {name: getattr(args, name) for name in SWITCH_FLAGS.values() if getattr(args, name) is not None}


def run(args) -> None:
    from ..config import SettingError
    from .flags import SAMPLING_FLAGS, renamed

    try:
        _run(args)
    except SettingError as error:  # the rule's own words, under this command's flag
        words = {"size": "--size", "frames": "--frames", "device": "--device", "dtype": "--dtype"}
        raise renamed(error, {**SAMPLING_FLAGS, **words}) from None


def _run(args) -> None:
    import dataclasses
    import json
    import sys

    from ..pipelines.optimisations import Optimisations
    from ..speed import format_comparison, format_result, run_benchmark, run_comparison
    from .flags import sampling_request

    for flag, low in BOUNDS.items():
        check_at_least(flag, getattr(args, flag[2:].replace("-", "_")), low)
    if args.json:
        from ..atomic import refuse_existing

        if not args.json.lower().endswith(".json"):
            raise ValueError(f"--json {args.json}: use a .json name")
        refuse_existing(args.json, args.overwrite, "--json")
    log = None if args.quiet else (lambda msg: print(f"[bench] {msg}", file=sys.stderr, flush=True))
    options = Optimisations(window_batch=args.window_batch, decode_chunk_size=args.decode_chunk_size)
    request = sampling_request(args)
    width, height = args.size or (None, None)
    kwargs = dict(
        width=width,
        height=height,
        frames=args.frames,
        sampling=request,
        optimisations=dataclasses.replace(options, compile=args.compile).with_switches(switches_from_args(args)),
        dtype=args.dtype,
        device=args.device,
        warmup=args.warmup,
        repeats=args.repeats,
        seed=args.seed,
        decoder=args.decoder,
    )
    if args.work:
        from ..speed.compare import count_presets_work
        from ..speed.report import format_work
        from .flags import SAMPLING_FLAGS

        for name in ("steps", "guidance", "scheduler", "guidance_interval", "cache_interval", "cache_depth"):
            if getattr(request, name) is not None and (not request.preset or name not in ("steps", "guidance")):
                raise ValueError(
                    f"--work counts each preset with its own settings; drop {SAMPLING_FLAGS[name]} (with --preset, "
                    "only --steps and --guidance may change that preset's)"
                )
        result = count_presets_work(
            args.architecture,
            width,
            height,
            args.frames,
            [request.preset] if request.preset else None,
            request.context_frames,
            request.context_overlap,
            request.window_mode,
            ref_kv_cache=switches_from_args(args).get("ref_kv_cache", True),
            steps=request.steps,
            guidance=request.guidance,
            decoder=args.decoder,
        )
        text = format_work(result)
    elif args.compare_presets:
        from ..speed.compare import run_preset_comparison
        from ..speed.report import format_preset_comparison

        result = run_preset_comparison(args.architecture, log=log, threads=args.threads, **kwargs)
        text = format_preset_comparison(result)
    elif args.compare:
        result = run_comparison(args.architecture, log=log, threads=args.threads, **kwargs)
        text = format_comparison(result)
    else:
        result = run_benchmark(args.architecture, threads=args.threads, log=log, **kwargs)
        text = format_result(result)
    print(text)
    if args.json:
        from ..atomic import write_text

        write_text(args.json, json.dumps(result, indent=2, default=str) + "\n")
        print(f"wrote {args.json}")
