"""``animate-anyone``: one command, one small module per subcommand."""

from __future__ import annotations

import argparse
import sys

from . import animate, app, bench, convert, data, demo, evaluate, init_model, pose, synthetic, train

SUBCOMMANDS = (demo, animate, app, pose, data, train, evaluate, synthetic, bench, init_model, convert)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="animate-anyone", description="Animate Anyone: character animation from one image."
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module in SUBCOMMANDS:
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except (FileNotFoundError, FileExistsError, ValueError) as exc:
        print(f"animate-anyone {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
