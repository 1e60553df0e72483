"""``animate-anyone init-model``: write a randomly initialised model directory."""

from __future__ import annotations


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
    from ..devices import DTYPES
    from ..jobs.init_model import init_model

    path = init_model(
        args.architecture, args.out, seed=args.seed, dtype=DTYPES[args.dtype], overwrite=args.overwrite, vae=args.vae
    )
    print(f"wrote {args.architecture} model to {path}")
