"""Install advice names the install that works: the package is not on PyPI, so advice to install
``animate-anyone[EXTRA]`` by name would fetch whatever owns that name on the public index."""

from __future__ import annotations

from pathlib import Path

import pytest

from animate_anyone.extras import EXTRAS, install_hint

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ('pip install "animate-anyone[', "pip install 'animate-anyone[", "pip install animate-anyone[")
BINARY = {".safetensors", ".onnx", ".bin", ".pt", ".pth", ".npz", ".npy", ".png", ".jpg", ".gif", ".mp4", ".pyc"}


def test_install_hint_is_the_checkout_install_of_an_extra():
    assert install_hint("ray") == 'pip install -e ".[ray]" (in the animate-anyone checkout; the package is not on PyPI)'
    with pytest.raises(ValueError, match="unknown extra 'gpu'"):
        install_hint("gpu")


def test_extras_are_those_of_pyproject():
    tomllib = pytest.importorskip("tomllib")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert set(EXTRAS) == set(pyproject["project"]["optional-dependencies"])


def advice_by_name(root: Path = ROOT) -> list[str]:
    """``path:line`` of every line under src/ and integrations/ that advises installing an extra from PyPI by name."""
    found = []
    for top in ("src", "integrations"):
        for path in sorted((root / top).rglob("*")):
            parts = path.relative_to(root).parts
            if not path.is_file() or path.suffix in BINARY or "__pycache__" in parts:
                continue
            if any(p.endswith(".egg-info") for p in parts):  # a build output: a copy of the README
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            for number, line in enumerate(text.splitlines(), 1):
                if any(bad in line for bad in FORBIDDEN):
                    found.append(f"{path.relative_to(root).as_posix()}:{number}")
    return found


def test_no_source_advises_installing_an_extra_from_pypi():
    found = advice_by_name()
    assert not found, f"advice to install from PyPI (use animate_anyone.extras.install_hint): {', '.join(found)}"
