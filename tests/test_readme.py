"""The README's examples run as written (in a scratch directory with a tiny model)."""

from __future__ import annotations

import re
from pathlib import Path

from animate_anyone.cli.main import main

README = Path(__file__).parents[1] / "README.md"


def test_readme_python_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    init = re.search(r"animate-anyone (init-model [^\n]+)", README.read_text()).group(1)
    assert main(init.split()) == 0
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no python example"
    scope: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), scope)
    assert scope["video"].shape == (8, 128, 96, 3)


def test_readme_commands_parse():
    """Every `animate-anyone ...` command the README shows is accepted by the CLI's parser as written."""
    import shlex

    from animate_anyone.cli.main import build_parser

    text = re.sub(r"\\\n\s*", " ", README.read_text())
    commands = re.findall(r"^\.venv/bin/animate-anyone (.+)$", text, flags=re.M)
    assert {c.split()[0] for c in commands} >= {"convert", "animate", "init-model"}
    for command in commands:
        build_parser().parse_args(shlex.split(command))


def test_readme_pose_commands_run_as_written(tmp_path, monkeypatch):
    """The README's pose tool lines, word for word, on a video of a person (scikit-image's astronaut, moving)."""
    import shlex

    import numpy as np
    import PIL.Image
    import pytest

    from animate_anyone.media import probe_frames, write_video

    skimage_data = pytest.importorskip("skimage.data")
    monkeypatch.chdir(tmp_path)
    photo = skimage_data.astronaut()
    PIL.Image.fromarray(photo[::2, ::2]).save("ref.png")
    write_video("dance.mp4", [np.roll(photo, shift, axis=1) for shift in (0, 24, 48)], fps=8)
    text = re.sub(r"\\\n\s*", " ", README.read_text())
    commands = re.findall(r"^\.venv/bin/animate-anyone (pose .+)$", text, flags=re.M)
    assert [c.split()[1] for c in commands] == ["extract", "align", "render"]
    for command in commands:
        assert main(shlex.split(command)) == 0, command
    assert probe_frames("pose.mp4").num_frames == 3 and probe_frames("check.mp4").num_frames == 3


def test_readme_window_modes_are_the_schedules():
    """The README's `--window-mode a|b|c` names exactly pipelines.context.WINDOW_MODES."""
    from animate_anyone.pipelines.context import WINDOW_MODES

    listed = re.findall(r"`--window-mode ([a-z|]+)`", README.read_text())
    assert listed and all(sorted(modes.split("|")) == sorted(WINDOW_MODES) for modes in listed), listed
