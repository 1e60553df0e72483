"""One grammar at the front door: the same sampling flags wherever a command samples, and ``--size`` is the output
resolution in every command (read from the real parser, every leaf command)."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from animate_anyone.cli import flags
from animate_anyone.cli.main import build_parser, main, parse
from animate_anyone.pipelines.settings import SamplingRequest

SAMPLERS = ("animate", "batch", "synthetic predict", "bench", "demo")


def _leaves(parser: argparse.ArgumentParser, words=()):
    """(command words, parser) of every leaf command."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield " ".join(words), parser
        return
    for name, sub in subs[0].choices.items():
        yield from _leaves(sub, (*words, name))


LEAVES = dict(_leaves(build_parser()))


def _sampling_actions(parser):
    """What a user sees and what the parse produces for each sampling option: flags, destination, type, help."""
    return sorted(
        (tuple(a.option_strings), a.dest, a.type, a.metavar, a.help, a.default)
        for a in parser._actions
        if a.dest in flags.SAMPLING_FIELDS and a.help != argparse.SUPPRESS  # a retired spelling shows no help
    )


def test_every_sampling_command_takes_the_same_sampling_flags_and_key_value_words():
    first = _sampling_actions(LEAVES[SAMPLERS[0]])
    assert [a[0] for a in first] == sorted((flags.flag(f.name),) for f in dataclasses.fields(SamplingRequest))
    for command in SAMPLERS[1:]:
        assert _sampling_actions(LEAVES[command]) == first, command
        assert any(a.dest == "overrides" for a in LEAVES[command]._actions), f"{command} takes no key=value"
    others = {c for c, p in LEAVES.items() if _sampling_actions(p)} - set(SAMPLERS)
    assert not others, f"sampling flags outside the sampling commands: {others}"


@pytest.mark.parametrize("command", SAMPLERS)
def test_the_flags_and_key_value_words_parse_to_the_same_request(command):
    """Each sampling command, fed the same words, asks for the same settings (field by field)."""
    needs = {
        "animate": ["--reference", "r.png", "--pose", "p", "-o", "o.mp4"],
        "batch": ["jobs.jsonl", "-o", "out"],
        "synthetic predict": ["--model", "m", "--data", "d", "-o", "o"],
        "bench": [],
        "demo": [],
    }
    words = ["--preset", "fast", "--steps", "7", "--guidance-interval", "0,0.5", "--window-mode", "anchored"]
    args = parse([*command.split(), *needs[command], *words, "cache_interval=1"])
    assert flags.sampling_values(args) == {
        "preset": "fast",
        "steps": 7,
        "guidance_interval": (0.0, 0.5),
        "window_mode": "anchored",
    }
    assert args.overrides == ["cache_interval=1"]
    assert flags.sampling_request(args) == SamplingRequest(
        preset="fast", steps=7, guidance_interval=(0, 0.5), window_mode="anchored", cache_interval=1
    )


def test_size_is_the_output_resolution_in_every_command():
    sized = {
        c: a
        for c, p in LEAVES.items()
        for a in p._actions
        if "--size" in a.option_strings and a.help != argparse.SUPPRESS  # a retired spelling shows no help
    }
    assert {"animate", "bench", "pose render", "data preview", "synthetic make", "train light-decoder"} <= set(sized)
    for command, action in sized.items():
        assert action.choices is None and action.type in (flags._size, flags._square), command
        assert action.help.startswith("output size: "), command
        square = action.type is flags._square
        assert ("(a square)" in action.help) == square and action.metavar == ("N" if square else "WIDTHxHEIGHT")
    shapes = {c for c, p in LEAVES.items() for a in p._actions if "--architecture" in a.option_strings}
    assert shapes == {"bench", "init-model"}


@pytest.mark.parametrize(
    "argv, said",
    [
        (["init-model", "--size", "tiny", "-o", "m"], "--size was retired: a model's shape is --architecture"),
        (["bench", "--size", "sd15"], "take it as --architecture sd15"),
        (["bench", "--width", "64"], "--width was retired: give the output size as --size WIDTHxHEIGHT"),
        (["bench", "--no-guidance"], "--no-guidance was retired: give --guidance 1"),
        (["synthetic", "predict", "--model", "m", "--data", "d", "-o", "o", "--sampling", "steps=3"], "key=value"),
        (["train", "light-decoder", "--model", "m", "--size", "64x32"], "must be a square"),
        (["bench", "--work", "--compare"], "not allowed with argument"),
    ],
)
def test_old_spellings_and_bad_sizes_answer_in_one_line(argv, said, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and said in err[-1], err


def test_sizes_parse_to_width_and_height():
    assert flags._size("512x768") == (512, 768) and flags._size("64") == (64, 64)
    assert flags._square("64") == 64 and flags._square("64X64") == 64
    for bad in ("abc", "0x64", "1x2x3"):
        with pytest.raises(argparse.ArgumentTypeError):
            flags._size(bad)


def test_a_library_setting_error_is_renamed_to_the_flag_in_one_place():
    from animate_anyone.config import SettingError

    error = SettingError("context_frames", 0, "must be a whole number >= 1")
    assert str(flags.renamed(error)) == "--context-frames 0: must be a whole number >= 1"
    assert str(flags.renamed(SettingError("fit", "x", "no"))) == "fit= x: no"  # a key without a flag
    assert str(flags.renamed(SettingError("index", 1, "no"), {"index": "--character"})) == "--character 1: no"


def test_the_pose_command_renames_every_setting_its_jobs_name():
    """The pose jobs (``pose/sequences.py``, ``pose/track.py``) name their settings (``SettingError("fps", ...)``); the
    ``pose`` command renames each to one of its own flags in its one table (``cli/pose.py`` ``FLAGS``)."""
    import ast
    import inspect

    from animate_anyone.cli import pose as command
    from animate_anyone.pose import sequences, track

    named = {
        node.args[0].value
        for module in (sequences, track)
        for node in ast.walk(ast.parse(inspect.getsource(module)))
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "SettingError"
    }
    assert {"fps", "size", "smoothing", "video", "person"} <= named
    assert named <= set(command.FLAGS), named - set(command.FLAGS)
    spelled = {o for words, leaf in LEAVES.items() if words.startswith("pose ") for o in leaf._option_string_actions}
    assert set(command.FLAGS.values()) <= spelled, set(command.FLAGS.values()) - spelled
