"""JSON lines: one object per line. The one reader (its error and comment rules) and the one atomic writer."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .atomic import atomic_path


def read_jsonl(path: str | os.PathLike[str], error: type[Exception] = ValueError) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each line of ``path``; blank lines and lines starting with ``#`` are skipped. A
    line that is not a JSON object raises ``error`` naming the file and the line."""
    for number, entry in jsonl_lines(path):
        if isinstance(entry, str):
            raise error(f"{path} line {number}: {entry}")
        yield number, entry


def jsonl_lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict | str]]:
    """(line number, object) for each line of ``path``, or (line number, why it is no JSON object) for a bad line,
    reading on past it (a checker that lists every bad line); blank lines and ``#`` comments are skipped."""
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, f"not a JSON object ({exc.msg} at column {exc.colno})"
            continue
        yield number, entry if isinstance(entry, dict) else f"expected a JSON object, got {type(entry).__name__}"


def write_jsonl(path: str | os.PathLike[str], rows: Iterable[dict[str, Any]]) -> Path:
    """One JSON object per line, written to a temporary sibling and renamed onto ``path``."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path
