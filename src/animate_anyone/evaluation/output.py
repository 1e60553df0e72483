"""Writing evaluation results: JSON, CSV and a plain-text table.

JSON has no infinity (PSNR of identical frames is +inf): non-finite numbers are written as the strings
``"inf"``, ``"-inf"`` and ``"nan"`` (:func:`to_json_value`; :func:`from_json_value` turns them back), and as
``inf`` / ``nan`` in the CSV. Both files are written atomically (:func:`animate_anyone.atomic.write_text`).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path

import numpy as np

from ..atomic import write_text


def to_json_value(value):
    """A JSON-safe copy: numpy scalars/arrays -> Python, non-finite floats -> "inf" / "-inf" / "nan"."""
    if isinstance(value, dict):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_value(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_json_value(value.tolist())
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    return value


def from_json_value(value):
    """Inverse of :func:`to_json_value` for numbers: "inf" / "-inf" / "nan" strings back to floats."""
    if isinstance(value, dict):
        return {k: from_json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json_value(v) for v in value]
    if value in ("inf", "-inf", "nan"):
        return float(value)
    return value


def _columns(results: dict) -> tuple[list[str], list[str]]:
    """The metrics with per-video values and those over the set, in the order they were asked for."""
    video_metrics = [n for n in results["metrics"] if n in results["aggregate"]]
    dataset_metrics = [n for n in results["metrics"] if n in results["dataset"]]
    return video_metrics, dataset_metrics


def results_csv(results: dict) -> str:
    """CSV text: one row per video, then ``mean``, ``std`` and ``pooled`` rows; dataset metrics in mean / pooled."""
    video_metrics, dataset_metrics = _columns(results)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["video", "num_frames", *video_metrics, *dataset_metrics])
    no_dataset = [""] * len(dataset_metrics)
    for name, row in results["per_video"].items():
        writer.writerow([name, row["num_frames"], *(_cell(row.get(n)) for n in video_metrics), *no_dataset])
    frames = sum(row["num_frames"] for row in results["per_video"].values())
    for stat in ("mean", "std", "pooled"):
        dataset = [_cell(results["dataset"][n]) if stat != "std" else "" for n in dataset_metrics]
        writer.writerow([stat, frames, *(_cell(results["aggregate"][n][stat]) for n in video_metrics), *dataset])
    return out.getvalue()


def _cell(value) -> str:
    """A CSV cell: empty for None, ``repr`` of a finite float, else ``inf`` / ``-inf`` / ``nan``."""
    if value is None:
        return ""
    value = float(value)
    return repr(value) if math.isfinite(value) else ("nan" if math.isnan(value) else ("inf" if value > 0 else "-inf"))


def check_results_output(out_json: str | os.PathLike[str], overwrite: bool = False, what: str = "out") -> None:
    """Before any work: results go to a ``.json`` file (the CSV beside it), replaced only with ``overwrite``.
    ``what``: the caller's name for the path (a command's flag), in messages."""
    from ..atomic import refuse_existing

    path = Path(out_json)
    if path.suffix.lower() != ".json":
        raise ValueError(f"{what} {path}: results are written as JSON; use a .json name (the CSV goes beside it)")
    refuse_existing(path, overwrite, what)


def write_results(results: dict, out_json: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``out_json`` and the CSV beside it (same name, ``.csv``), each atomically. Returns both paths."""
    path = Path(out_json)
    csv_path = path.with_suffix(".csv") if path.suffix.lower() != ".csv" else path.with_name(path.name + ".csv")
    write_text(path, json.dumps(to_json_value(results), indent=2, allow_nan=False) + "\n")
    write_text(csv_path, results_csv(results))
    return path, csv_path


def format_table(results: dict) -> str:
    """The aggregate as a plain-text table (metric, mean, std, pooled), then dataset metrics and skipped ones."""
    video_metrics, dataset_metrics = _columns(results)
    frames = sum(row["num_frames"] for row in results["per_video"].values())
    lines = [f"{results['num_videos']} video(s), {frames} frame(s)"]
    width = max([len(n) for n in video_metrics + dataset_metrics + ["metric"]]) + 2
    if video_metrics:
        lines.append(f"{'metric':<{width}}{'mean':>12}{'std':>12}{'pooled':>12}")
        for n in video_metrics:
            agg = results["aggregate"][n]
            lines.append(f"{n:<{width}}{_fmt(agg['mean']):>12}{_fmt(agg['std']):>12}{_fmt(agg['pooled']):>12}")
    for n in dataset_metrics:
        samples = results["dataset_samples"][n]
        lines.append(f"{n:<{width}}{_fmt(results['dataset'][n]):>12}   (over the set, {samples} samples per side)")
    for n, reason in results["skipped"].items():
        lines.append(f"{n:<{width}}skipped: {reason}")
    if results["missing_predictions"]:
        missing = ", ".join(results["missing_predictions"])
        lines.append(f"ground-truth videos without a prediction (not scored): {missing}")
    return "\n".join(lines)


def _fmt(value: float) -> str:
    """A number for the table: 4 significant digits, scientific below 1e-3, ``inf`` / ``nan`` as they are."""
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3e}"
