"""The command line's shared words, declared once for every command.

* The sampling flags: generated from ``SamplingRequest``'s fields (name, type and help, read from the dataclass as
  ``transformers.HfArgumentParser`` does), so ``animate``, ``batch``, ``synthetic predict``, ``bench`` and ``demo``
  take the same flags, which mean what the fields mean. They are checked by the settings' own rules when the request
  is resolved, nowhere here. ``key=value`` words after the options use the field names (``cache_interval=1``).
* ``--size``: the output resolution in every command, ``WIDTHxHEIGHT`` or ``N`` for a square; a command that needs a
  square says so in its help (``square=True``). A model's shape (``models.sizes``: tiny, mini, sd15) is
  ``--architecture`` (``add_architecture_argument``).
* The renaming of a library setting to its flag in messages (``renamed``): the library names settings (``steps``),
  the command line speaks in flags (``--steps``), in this one place.
* Retired spellings (``retire``): an old flag answers with one line naming the new one.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing

from ..pipelines.settings import SamplingRequest, SettingError
from ..shapes import parse_size, parse_square


def flag(name: str) -> str:
    """A setting's flag: ``context_frames`` -> ``--context-frames``."""
    return "--" + name.replace("_", "-")


SAMPLING_FIELDS = tuple(f.name for f in dataclasses.fields(SamplingRequest))
SAMPLING_FLAGS = {name: flag(name) for name in SAMPLING_FIELDS}  # field -> flag


def _interval(text: str) -> tuple[float, ...]:
    """``"0,0.5"`` (or ``"[0, 0.5]"``) -> (0.0, 0.5); the settings' rule checks the values."""
    try:
        return tuple(float(v) for v in text.strip("[]() ").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected START,END (e.g. 0,0.5), got {text!r}") from None


def _argument_type(hint) -> typing.Callable[[str], typing.Any]:
    """The parser of a field's value from its annotation (``int | None`` -> int)."""
    options = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    kind = options[0]
    if typing.get_origin(kind) is tuple:
        return _interval
    return kind


def add_sampling_arguments(parser: argparse.ArgumentParser, defaults: str = "") -> None:
    """The sampling flags, one per ``SamplingRequest`` field, in a group of their own (default None: the preset's);
    ``defaults``: what this command samples with when no preset is named, said once in the group's description."""
    hints = typing.get_type_hints(SamplingRequest)
    words = "the sampling settings (also as key=value after the options, e.g. cache_interval=1)"
    group = parser.add_argument_group("sampling", f"{words}; {defaults}" if defaults else words)
    for f in dataclasses.fields(SamplingRequest):
        kind = _argument_type(hints[f.name])
        metavar = {_interval: "START,END", int: "N", float: "X"}.get(kind, "NAME")
        group.add_argument(SAMPLING_FLAGS[f.name], dest=f.name, type=kind, metavar=metavar, help=f.metadata["help"])


def sampling_values(args: argparse.Namespace) -> dict[str, typing.Any]:
    """The sampling flags given on the command line, by field name."""
    return {name: getattr(args, name) for name in SAMPLING_FIELDS if getattr(args, name, None) is not None}


def add_overrides_argument(parser: argparse.ArgumentParser, what: str) -> None:
    """``key=value`` words after the options: ``what`` (a config type's keys, the sampling fields among them)."""
    parser.add_argument("overrides", nargs="*", metavar="key=value", help=f"{what}, e.g. steps=30 cache_interval=1")


def sampling_request(args: argparse.Namespace, base: SamplingRequest | None = None) -> SamplingRequest:
    """The request of a command whose settings are a ``SamplingRequest`` alone: ``base`` (the command's own starting
    point, default none), then the flags, then the ``key=value`` words (YAML values, typed by the fields)."""
    from ..config import load_config

    start = {k: v for k, v in dataclasses.asdict(base).items() if v is not None} if base else {}
    return load_config(SamplingRequest, None, getattr(args, "overrides", ()), {**start, **sampling_values(args)})


def renamed(error: SettingError, names: typing.Mapping[str, str] = SAMPLING_FLAGS) -> SettingError:
    """The library's error under the command line's name for the setting: its flag in ``names`` (the command's
    whole table, ``SAMPLING_FLAGS`` among them where the command samples; a word means one thing per command, so
    a trainer's ``steps`` is ``--max-steps``), else ``key=`` (a setting without a flag)."""
    return error.named({error.field: names.get(error.field, f"{error.field}=")})


SIZE_HELP = "WIDTHxHEIGHT in pixels, or N for N x N"


def add_size_argument(parser, default: str | None = None, square: bool = False, note: str = "") -> None:
    """``--size``: the output resolution (``WIDTHxHEIGHT``, or ``N`` for a square), parsed here into
    (width, height); ``square``: the command works on squares (``N`` or ``NxN``), parsed into the side N."""
    words = "N or NxN in pixels (a square)" if square else SIZE_HELP
    shown = f"; default {default}" if default else ""
    parser.add_argument(
        "--size",
        type=_square if square else _size,
        default=None if default is None else (_square if square else _size)(default),
        metavar="N" if square else "WIDTHxHEIGHT",
        help=f"output size: {words}{note and ', ' + note}{shown}",
    )


def _size(text: str) -> tuple[int, int]:
    from ..models.sizes import SIZES

    if text in SIZES:  # the old spelling of bench and init-model
        raise argparse.ArgumentTypeError(
            f"{text} is a model's shape, not an output size (WIDTHxHEIGHT); bench and init-model take it as "
            f"--architecture {text}"
        )
    try:
        return parse_size(text, multiple=1)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _square(text: str) -> int:
    try:
        return parse_square(text)[0]
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_architecture_argument(parser, default: str = "tiny") -> None:
    """``--architecture``: the shape of a model built from scratch (``models.sizes.SIZES``)."""
    from ..models.sizes import SIZES

    parser.add_argument(
        "--architecture",
        choices=sorted(SIZES),
        default=default,
        help=f"the model's shape: tiny (tests), mini (the synthetic benchmark's 64 px model) or sd15 "
        f"(default {default})",
    )


# The small trainers' words (training.small_loop.SmallLoop's settings) -> their flags: a trainer's steps are
# optimizer steps, --max-steps as in TrainConfig (--steps are denoising steps)
TRAINER_FLAGS = {"steps": "--max-steps", "resume": "--resume", "checkpoint_every": "--checkpoint-every"}


def add_trainer_arguments(parser, steps: int, checkpoints: str) -> None:
    """The flags every small trainer (``SmallLoop``) takes: ``--max-steps`` (default ``steps``), ``--resume`` (from the
    checkpoint in ``checkpoints``, as the help says where) and ``--checkpoint-every``."""
    parser.add_argument("--max-steps", type=int, default=steps, help=f"optimizer steps (default {steps})")
    retire(parser, "--steps", "a trainer's optimizer steps are --max-steps (--steps: denoising steps)")
    parser.add_argument(
        "--resume",
        action="store_true",
        help=f"continue the interrupted run from its checkpoint in {checkpoints} (same settings)",
    )
    parser.add_argument(
        "--checkpoint-every", type=int, default=500, metavar="N", help="steps between checkpoints (default 500; 0: off)"
    )


class _Retired(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(f"{option_string} was retired: {self.help_text}")


def retire(parser: argparse.ArgumentParser, spelling: str, advice: str) -> None:
    """An old flag kept only to say, in one line, what replaced it (hidden from ``--help``)."""
    action = parser.add_argument(spelling, nargs="*", action=_Retired, help=argparse.SUPPRESS)
    action.help_text = advice
