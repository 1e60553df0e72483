"""``animate-anyone init-model``: write a randomly initialised model directory."""

from __future__ import annotations

FLAGS = {"out": "--out", "vae": "--vae"}  # init_model's parameters (named in its messages) -> this command's flags


def register(subparsers) -> None:
    from .flags import add_architecture_argument, retire

    p = subparsers.add_parser("init-model", help="write a randomly initialised model directory (tiny, mini or sd15)")
    add_architecture_argument(p)
    retire(p, "--size", "a model's shape is --architecture (tiny, mini, sd15)")
    p.add_argument("--vae", help="a trained VAE folder to use instead of a random one (e.g. synthetic autoencoder's)")
    p.add_argument("--out", "-o", required=True, help="model directory to create")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights (default 0)")
    p.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default="float32", help="weights' dtype")
    p.add_argument("--overwrite", action="store_true", help="replace an existing directory")
    p.set_defaults(run=run)


def run(args) -> None:
    from ..atomic import refuse_existing
    from ..config import SettingError
    from ..devices import DTYPES
    from ..jobs.init_model import init_model
    from .flags import renamed

    refuse_existing(args.out, args.overwrite, FLAGS["out"])  # in this command's words, before init_model's own check
    dtype = DTYPES[args.dtype]
    try:
        path = init_model(
            args.architecture, args.out, seed=args.seed, dtype=dtype, overwrite=args.overwrite, vae=args.vae
        )
    except SettingError as error:  # the rule's own words, under this command's flag
        raise renamed(error, FLAGS) from None
    print(f"wrote {args.architecture} model to {path}")
