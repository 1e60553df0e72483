"""``animate-anyone animate``: reference image + pose video -> video of the character.

The settings are an ``AnimateConfig`` (``--config FILE`` and ``key=value`` overrides); the flags below are
shortcuts for its most common keys.
"""

from __future__ import annotations

from ..devices import DEVICE_HELP, DTYPE_HELP
from .flags import SAMPLING_FLAGS

# flag destination -> AnimateConfig key (flags left out keep the config's value); the sampling flags are
# generated from the settings' fields (cli/flags.py) and --size is the output size of every command
SHORTCUTS = {
    "model": "model",
    "revision": "revision",
    "seed": "seed",
    "frames": "frames",
    "device": "device",
    "dtype": "dtype",
    "fps": "fps",
    "decoder": "decoder",
    "offload": "optimisations.offload",
    "pose_backend": "pose.backend",
    "dwpose_det": "pose.det_model",
    "dwpose_pose": "pose.pose_model",
    "person": "pose.person",
    "fit": "pose.fit",
}
# The library's names (AnimateConfig keys, animate()'s parameters, the pose library's person and fit) -> this
# command's flags, for messages: the one place the command renames (keys without a flag are named "key=")
FLAGS = {key: "--" + dest.replace("_", "-") for dest, key in SHORTCUTS.items()} | SAMPLING_FLAGS
FLAGS |= {name: "--" + name.replace("_", "-") for name in ("size", "person", "fit", "out", "side_by_side")}
FLAGS |= {name: "--" + name for name in ("overwrite", "pose", "driver", "offload")}
MEMORY_ADVICE = (
    "out of memory; use --offload model (or sequential), a smaller --size, fewer --frames or a shorter "
    "--context-frames (--estimate-memory counts each before the run)"
)


def register(subparsers) -> None:
    from ..media import FIT_HELP, FITS
    from ..pose.track import PERSON_HELP
    from .flags import add_overrides_argument, add_sampling_arguments, add_size_argument

    p = subparsers.add_parser(
        "animate",
        help="animate a reference image with a pose sequence",
        description="Settings come from --config (configs/animate/default.yaml lists every key), "
        "then the flags, then key=value overrides (e.g. optimisations.window_batch=4).",
    )
    p.add_argument(
        "--model", help="model directory (from `convert` or `init-model`), or the Hugging Face Hub id org/name of one"
    )
    p.add_argument("--revision", help="with a Hub id: its branch, tag or commit (default: its main branch)")
    p.add_argument("--reference", help="reference image of the character (any size or mode)")
    motion = p.add_mutually_exclusive_group()
    motion.add_argument(
        "--pose", help="rendered skeletons (a video, a folder of images, one image) or a keypoint file (.npz/.json)"
    )
    motion.add_argument("--driver", help="an ordinary video of a person: its pose is extracted, aligned and rendered")
    p.add_argument("--out", "-o", help="output: .mp4 (h264), .gif, or a folder for PNG frames")
    p.add_argument(
        "--estimate-memory",
        action="store_true",
        help="print the peak device memory this call would need (counted on the meta device from the model's "
        "configs for --size, --frames, the preset and --dtype, with optimisations.offload and the decode chunk) "
        "and stop; --reference/--pose stand in for --size/--frames",
    )
    p.add_argument("--json", help="with --estimate-memory: also write the estimate to this JSON file")
    p.add_argument("--config", help="YAML instance of AnimateConfig (e.g. configs/animate/default.yaml)")
    p.add_argument(
        "--seed", type=int, help="random seed of the initial noise (default 0); the same seed, the same video"
    )
    p.add_argument("--frames", type=int, help="number of frames (default: all pose frames)")
    add_size_argument(p, note="multiples of 8 (default: the reference's aspect ratio at the model's resolution)")
    p.add_argument("--device", help=DEVICE_HELP)
    p.add_argument("--dtype", help=DTYPE_HELP)
    p.add_argument("--side-by-side", metavar="PATH", help="also write reference | pose | result to PATH")
    p.add_argument("--fps", type=float, help="output frame rate (default: the pose video's)")
    p.add_argument(
        "--decoder",
        help="vae (default) or light: the model's light decoder (TAESD converted with `convert light-decoder`, or "
        "trained), a fraction of the decode's work (not exact)",
    )
    p.add_argument(
        "--offload",
        help="with a GPU of little memory: model (diffusers' model CPU offload: one network on the GPU at a time) or "
        "sequential (one layer at a time, much slower); default none. --estimate-memory says what each saves",
    )
    p.add_argument("--no-align", action="store_true", help="keypoint/driver input: keep the driver's proportions")
    p.add_argument(
        "--pose-backend", choices=["mediapipe", "dwpose"], help="pose extractor (default mediapipe, offline)"
    )
    p.add_argument("--dwpose-det", help="DWPose detector ONNX (default $ANIMATE_ANYONE_DWPOSE_DET)")
    p.add_argument("--dwpose-pose", help="DWPose pose ONNX (default $ANIMATE_ANYONE_DWPOSE_POSE)")
    p.add_argument("--person", help="--driver: " + PERSON_HELP)
    p.add_argument("--fit", choices=FITS, help="rendered skeletons (--pose video or images) of " + FIT_HELP)
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out / --side-by-side")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_sampling_arguments(p)
    add_overrides_argument(p, "AnimateConfig keys")
    p.set_defaults(run=run, memory_advice=MEMORY_ADVICE)


def run(args) -> None:
    from ..config import load_config
    from ..distributed import Launch
    from ..jobs.animate import animate
    from ..jobs.animate_config import AnimateConfig
    from ..pipelines.settings import SettingError
    from .flags import renamed, sampling_values

    values = {key: getattr(args, dest) for dest, key in SHORTCUTS.items() if getattr(args, dest) is not None}
    values |= sampling_values(args)
    if args.size is not None:
        values["size"] = "{}x{}".format(*args.size)
    if args.no_align:
        values["pose.align"] = False
    missing = [flag for flag, given in (("--reference", args.reference), ("--out", args.out)) if not given]
    missing += [] if args.pose or args.driver else ["--pose or --driver"]
    if not args.estimate_memory and missing:
        raise ValueError(f"the following arguments are required: {', '.join(missing)}")
    if args.json and not args.estimate_memory:
        raise ValueError("--json goes with --estimate-memory")
    launch = Launch.from_env()  # under torchrun the processes share the video
    try:  # the rule's own words, under this command's name for the value
        config = load_config(AnimateConfig, args.config, args.overrides, values)
        if args.estimate_memory:
            return print_estimate(config, args)
        out = animate(
            config,
            args.reference,
            args.pose,
            args.out,
            driver=args.driver,
            side_by_side=args.side_by_side,
            progress=not args.quiet,
            overwrite=args.overwrite,
            launch=launch,
            names=FLAGS,
        )
    except SettingError as error:
        raise renamed(error, FLAGS) from None
    if launch.main:  # under torchrun the main process alone writes, and says so
        print(f"wrote {out}")


def print_estimate(config, args) -> None:
    import json

    from ..atomic import write_text
    from ..jobs.animate import estimate_memory
    from ..pipelines.peak_memory import format_estimate

    estimate = estimate_memory(config, args.reference, args.pose, args.driver, names=FLAGS)
    print(format_estimate(estimate))
    if args.json:
        write_text(args.json, json.dumps(estimate, indent=2) + "\n")
        print(f"wrote {args.json}")
