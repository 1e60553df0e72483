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
    path = Path(path)
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{path} line {number}"
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise error(f"{where}: not a JSON object ({exc.msg} at column {exc.colno})") from None
        if not isinstance(entry, dict):
            raise error(f"{where}: expected a JSON object, got {type(entry).__name__}")
        yield number, entry


def write_jsonl(path: str | os.PathLike[str], rows: Iterable[dict[str, Any]]) -> Path:
    """One JSON object per line, written to a temporary sibling and renamed onto ``path``."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path
