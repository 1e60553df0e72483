"""Atomic outputs: a file or folder appears at its path only when it is complete.

Everything the project writes goes through here (``media.VideoWriter`` keeps its own writer but uses
:func:`temporary_sibling` and :func:`replace`). The temporary is a hidden sibling ``.NAME.<random>.partial``
(same folder, so the final rename is atomic); on an error it is deleted and an existing output is kept.

    with atomic_path("results.json") as tmp:   # write anything to tmp
        tmp.write_text("...")
    write_text("results.json", "...")           # the same, for text
    with atomic_directory("models/tiny") as tmp:  # a whole folder
        ...
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PathLike = str | os.PathLike[str]


def refuse_existing(path: PathLike, overwrite: bool, what: str = "out", switch: str | None = None) -> None:
    """Before any work, one wording for every caller: FileExistsError when ``path`` exists and ``overwrite`` is
    false, and an ``OSError`` when its folder cannot be written (``check_writable``). ``what``: the caller's name for
    the path (a parameter's, or a command's flag: ``--out``); ``switch``: its name for ``overwrite``, by default
    spelled as ``what`` is (``out`` -> ``overwrite``, ``--json`` -> ``--overwrite``)."""
    if switch is None:
        switch = what[: len(what) - len(what.lstrip("-"))] + "overwrite"
    if Path(path).exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; choose another {what} or pass {switch}")
    check_writable(Path(path).parent, f"{what} {path}", f"choose another {what}")


def check_writable(folder: PathLike, what: str, fix: str) -> None:
    """``folder`` is a folder this process can make files in, or one that can be made: checked by making a folder
    and removing it again in ``folder`` (or in the nearest existing folder above it), which also finds a read-only
    mount or a place only another user may write. Raises ``NotADirectoryError`` / ``PermissionError`` as one line
    "WHAT: WHY; FIX"."""
    existing = Path(folder)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise NotADirectoryError(f"{what}: {existing} is a file, not a folder; {fix}")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".write-check-", dir=existing))
    except OSError as exc:
        raise PermissionError(f"{what}: cannot write in {existing} ({exc.strerror}); {fix}") from None


def temporary_sibling(path: PathLike, suffix: str = "") -> Path:
    """A fresh hidden name beside ``path``: ``.NAME.<random>.partial<suffix>`` (nothing is created)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}.partial{suffix}")


def replace(tmp: Path, path: Path) -> None:
    """Move ``tmp`` onto ``path``; a folder already at ``path`` is swapped out first, then deleted."""
    if not path.is_dir():
        os.replace(tmp, path)  # atomic for files
        return
    old = path.with_name(f".{path.name}.old-{secrets.token_hex(4)}")
    os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; whatever the block writes there is renamed onto ``path`` when
    the block finishes, and deleted when it raises. ``suffix``: for writers that choose the format by the
    name (e.g. ``".png"``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path, suffix)
    try:
        yield tmp
        replace(tmp, path)
    finally:
        if tmp.exists() or tmp.is_symlink():
            _remove(tmp)


def write_text(path: PathLike, text: str) -> Path:
    """``text`` (UTF-8) at ``path``, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_bytes(path: PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


@contextmanager
def atomic_directory(out: PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a fresh temporary directory that replaces ``out`` only if the block finishes without error."""
    out = Path(out)
    refuse_existing(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp creates 0700; the result should look like any other directory
    try:
        yield tmp
        replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
