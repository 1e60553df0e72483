"""Style is a checked contract: ruff's lint rules and formatter (configured in pyproject.toml) hold on the tree."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def ruff() -> list[str]:
    exe = Path(sys.executable).parent / "ruff"
    if exe.exists():
        return [str(exe)]
    if shutil.which("ruff"):
        return ["ruff"]
    pytest.fail("ruff is not installed: it is part of the dev extra (pip install -e '.[dev]')")


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_ruff(command):
    result = subprocess.run([*ruff(), *command, "--no-cache", "."], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, f"ruff {' '.join(command)}:\n{result.stdout}{result.stderr}"


def test_no_format_skips_left():
    """No formatter-skip markers: the formatter owns the layout everywhere (none is needed today)."""
    marked = [
        f"{p.relative_to(ROOT)}:{i}"
        for p in [*ROOT.glob("src/**/*.py"), *ROOT.glob("tests/**/*.py")]
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if "fmt: " + "skip" in line
    ]
    assert not marked, marked
