"""``animate-anyone``: one command, one small module per subcommand.

Every expected failure ends the same way: one line on stderr, ``animate-anyone COMMAND: error: ...`` naming the
flag or file, the value and the fix, and exit status 2 (as argparse does for a bad flag). Ctrl-C prints one
line and exits 130; SIGTERM is turned into an exception, so every partial output is removed on the way out
(``atomic``), and exits 143. Training saves a checkpoint first and says how to resume.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import warnings

from animate_anyone_lab.cli import demo, synthetic

from . import animate, app, batch, bench, convert, data, evaluate, init_model, pose, train

# The front door: the product's commands and the benchmark lab's (demo, synthetic). This module is the one place the
# product names the lab (tests/test_layering.py); no library module under it imports the lab.
SUBCOMMANDS = (demo, animate, batch, app, pose, data, train, evaluate, synthetic, bench, init_model, convert)
EXPECTED = (ValueError, OSError, EOFError, MemoryError)  # bad values, files, devices; out of memory


class Terminated(BaseException):
    """SIGTERM, raised where the main thread is so that cleanup runs (a BaseException: no ``except Exception``
    swallows it)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="animate-anyone", description="Animate Anyone: character animation from one image."
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module in SUBCOMMANDS:
        module.register(subparsers)
    return parser


def _terminate(signum, frame):
    raise Terminated


def _say(command: str, message: str) -> None:
    """One line on stderr, on a line of its own (a progress bar may have left the cursor mid-line)."""
    _close_progress_bars()
    print(f"animate-anyone {command}: {message}", file=sys.stderr, flush=True)


def _close_progress_bars() -> None:
    tqdm = sys.modules.get("tqdm")
    for bar in list(getattr(getattr(tqdm, "tqdm", None), "_instances", ())):
        bar.close()  # a live bar ends its line (where it stopped) before the message


def _one_line(exc: BaseException, advice: str | None = None) -> str:
    """The error in one line; out of memory with the command's own advice (``memory_advice``) when it has one."""
    if isinstance(exc, MemoryError):
        return advice or "out of memory"
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in text:
        text = f"{exc.filename}: {text}"
    return text


def command_name(args: argparse.Namespace) -> str:
    """``pose render``, ``train stage1``, ``animate``: the words the user typed to choose the job."""
    words = [args.command] + [getattr(args, dest) for dest in ("job", "stage", "source") if getattr(args, dest, None)]
    return " ".join(words)


@contextlib.contextmanager
def _warnings_in_one_line(command: str):
    """The library's own warnings (``SettingsWarning``: settings that do not suit the model) as one line each,
    ``animate-anyone COMMAND: warning: ...``, every time they occur; other libraries' warnings as Python shows
    them."""
    from tqdm.auto import tqdm

    from ..distributed import Launch
    from ..pipelines.settings import SettingsWarning

    shown = warnings.showwarning
    try:
        main = Launch.from_env().main
    except ValueError:  # the commands launched for it say so; the others never read it
        main = True

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, SettingsWarning):  # above any live progress bar, which goes on below it
            if main:  # once under torchrun, where every process runs the same call
                tqdm.write(f"animate-anyone {command}: warning: {' '.join(str(message).split())}", file=sys.stderr)
        else:
            shown(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():
        warnings.simplefilter("always", SettingsWarning)
        warnings.showwarning = show
        yield


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; ``key=value`` overrides may also follow the options (``batch JOBS --out DIR steps=4``:
    argparse gives a positional list only the words next to the positionals before it)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and hasattr(args, "overrides") and all("=" in word and not word.startswith("-") for word in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    name = command_name(args)
    if getattr(args, "quiet", False):
        from ..quiet import silence_libraries

        silence_libraries()
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        with _warnings_in_one_line(name):
            code = args.run(args)  # None, or an exit status (batch: 1 when a job failed; train: 130/143 when stopped)
    except KeyboardInterrupt:
        _say(name, "interrupted; partial outputs were removed")
        return 130
    except Terminated:
        _say(name, "terminated (SIGTERM); partial outputs were removed")
        return 143
    except EXPECTED as exc:
        _say(name, f"error: {_one_line(exc, getattr(args, 'memory_advice', None))}")
        return 2
    finally:
        signal.signal(signal.SIGTERM, previous)
        if "torch" in sys.modules:  # a command that joined a torchrun group leaves it before the process exits
            from .. import distributed

            distributed.shutdown()
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
