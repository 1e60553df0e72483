"""How to install one of the package's optional extras (``[project.optional-dependencies]`` of pyproject.toml).

The package is not published on PyPI, so advice to pip-install ``animate-anyone`` with an extra by name would install
whatever owns that name on the public index. A user installs from a checkout of the repository (README, Setup):
every message and docstring that advises installing an extra takes its text from :func:`install_hint`.
"""

from __future__ import annotations

EXTRAS = ("pose", "eval", "app", "integration", "ray", "train", "dev")  # pyproject.toml's optional dependencies


def install_hint(extra: str) -> str:
    """The install that brings ``extra`` (one of :data:`EXTRAS`), e.g. for ``"ray"``:
    ``pip install -e ".[ray]" (in the animate-anyone checkout; the package is not on PyPI)``."""
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r}; pyproject.toml defines {', '.join(EXTRAS)}")
    return f'pip install -e ".[{extra}]" (in the animate-anyone checkout; the package is not on PyPI)'
