"""``animate-anyone``: one command, one small module per subcommand."""

from __future__ import annotations

import argparse
import sys

from . import animate, app, batch, bench, convert, data, demo, evaluate, init_model, pose, synthetic, train

SUBCOMMANDS = (demo, animate, batch, app, pose, data, train, evaluate, synthetic, bench, init_model, convert)


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
        code = args.run(args)  # None, or an exit status (batch: 1 when a job failed)
    except (FileNotFoundError, FileExistsError, ValueError) as exc:
        print(f"animate-anyone {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
