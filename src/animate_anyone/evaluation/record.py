"""The record of how a prediction folder was made: ``OUT/predict.json``, which ``evaluate`` copies into its results.

``synthetic predict`` (``animate_anyone_lab.benchmark.predict_split``, the benchmark lab) writes it before the
first clip and checks it on every rerun, so a folder never mixes clips made with different settings. It holds the
model directory (path and ``ModelDirectory.fingerprint``) or the baseline, the sampling settings as the pipeline
resolves them (``pipelines.settings``: the resolved step fields, and the scheduler class that runs), the window
settings, the seed rule, dtype, device, the clips' size, frames and count, and the package version::

    {"written_by": "animate-anyone synthetic predict", "version": "0.1.0", "model": {"path", "fingerprint"},
     "baseline": null, "sampling": {"preset", "overrides", "steps", "guidance", "scheduler", "scheduler_class",
     "guidance_interval", "cache_interval", "cache_depth"}, "window": {...}, "seed": 0, "seed_rule": "...", ...}

Two records describe the same predictions when they agree on every key but the :data:`INFORMATIONAL` ones (where
the model and data live, when and by which version it was written, the thread count, the preset's name and the
overrides that led to the resolved settings).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

PathLike = str | os.PathLike[str]

RECORD_FILE = "predict.json"
REDO = "`animate-anyone synthetic predict ... --overwrite`"  # the command that (re)writes a prediction folder
WRITTEN_BY = "animate-anyone synthetic predict"
SEED_RULE = "clip k of the manifest (0-based) is sampled with torch.Generator().manual_seed(seed + k)"
INFORMATIONAL = (
    "written",
    "version",
    "data",
    "model.path",
    "torch_threads",
    "sampling.preset",
    "sampling.overrides",
)
_MISSING = object()


def sampling_record(pipe, request, settings) -> dict[str, Any]:
    """What ``pipe`` samples with under ``settings`` (resolved from ``request``, a ``SamplingRequest``): the preset,
    the fields the request set, the step fields of the settings and the class of the scheduler that runs (the
    windows are recorded apart, under ``"window"``)."""
    from ..pipelines.settings import STEP_FIELDS, make_scheduler

    scheduler_class = type(make_scheduler(pipe.scheduler, settings.scheduler)).__name__
    preset = request.preset or pipe.model_defaults.preset
    given = {k: v for k, v in request.given().items() if k in STEP_FIELDS}
    return _plain(
        {"preset": preset, "overrides": given, **settings.part(STEP_FIELDS), "scheduler_class": scheduler_class}
    )


def check_ran(record: dict[str, Any], stats: dict[str, Any]) -> None:
    """RuntimeError when the settings the pipeline ran (its output's ``stats["sampling"]``) are not the recorded
    ones."""
    from ..pipelines.settings import STEP_FIELDS, WINDOW_FIELDS

    ran = {
        "sampling": _plain(stats["sampling"].part(STEP_FIELDS)),
        "window": _plain(stats["sampling"].part(WINDOW_FIELDS)),
    }
    recorded = {part: {k: record[part].get(k) for k in ran[part]} for part in ran}
    if ran != recorded:
        keys = ", ".join(k for part in ran for k in ran[part] if ran[part][k] != recorded[part][k])
        raise RuntimeError(f"the pipeline sampled with other settings than {RECORD_FILE} records ({keys}): a bug")


def prediction_record(
    split_dir: PathLike,
    clips: list,
    *,
    model_dir: PathLike | None,
    sampling: dict[str, Any] | None = None,
    window: dict[str, Any] | None = None,
    seed: int | None = None,
    device: str | None = None,
    dtype: str | None = None,
    baseline: str | None = None,
) -> dict[str, Any]:
    """The record of predicting ``clips`` (the split's manifest) with ``model_dir`` (None: copy-reference);
    ``baseline`` names what was written when it is not the model's animation (e.g. its VAE's round trip)."""
    import torch

    from .. import __version__

    model = None
    if model_dir is not None:
        from ..model_dir import ModelDirectory

        model = {"path": str(model_dir), "fingerprint": ModelDirectory(model_dir).fingerprint()}
    return _plain(
        {
            "written_by": WRITTEN_BY,
            "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "version": __version__,
            "data": str(split_dir),
            "model": model,
            "baseline": baseline
            or (None if model_dir is not None else "copy_reference (the reference image as every frame)"),
            "sampling": sampling,
            "window": window,
            "seed": seed,
            "seed_rule": SEED_RULE if model_dir is not None else None,
            "dtype": dtype,
            "device": device,
            "output": {
                "clips": len(clips),
                "width": _one([c.width for c in clips]),
                "height": _one([c.height for c in clips]),
                "frames": _one([c.num_frames for c in clips]),
                "fps": _one([c.fps for c in clips]),
                "format": "a folder of PNG frames per clip",
            },
            "torch_threads": torch.get_num_threads() if model_dir is not None else None,
        }
    )


def read_record(folder: PathLike) -> dict[str, Any] | None:
    """The record of a prediction folder, None when it has none (e.g. ground-truth videos)."""
    path = Path(folder) / RECORD_FILE
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc}); redo its predictions with overwrite ({REDO})") from None
    if not isinstance(value, dict):
        raise ValueError(
            f"{path}: expected a JSON object, got {type(value).__name__}; redo its predictions with overwrite ({REDO})"
        )
    return value


def differing_keys(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The dotted keys (``sampling.steps``) whose values differ, informational ones left out."""
    a, b = _flat(old), _flat(new)
    keys = sorted(a.keys() | b.keys())
    return [k for k in keys if not _informational(k) and a.get(k, _MISSING) != b.get(k, _MISSING)]


def claim(
    out: PathLike, record: dict[str, Any], clip_ids: list[str], overwrite: bool, names: Mapping[str, str] | None = None
) -> None:
    """Make ``out`` a folder of predictions made as ``record`` says, before any clip is written.

    A folder whose record differs (or that holds clips of the manifest but no record) is refused unless
    ``overwrite``, which deletes those clips (so an interrupted redo never mixes settings) and writes ``record``.
    ``names``: the caller's names for ``out`` and ``overwrite`` in messages (a command's flags).
    """
    import shutil

    from ..atomic import write_text

    out, names = Path(out), names or {}
    overwrite_name, out_name = names.get("overwrite", "overwrite"), names.get("out", "out")
    existing = [out / i for i in clip_ids if (out / i).exists()]
    old = read_record(out) if out.is_dir() else None
    if old is not None:
        keys = differing_keys(old, record)
        if not keys and not overwrite:
            return
        if keys and not overwrite:
            a, b = _flat(old), _flat(record)
            changes = "; ".join(f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in keys)
            raise ValueError(
                f"{out} holds predictions made with other settings ({changes}); pass {overwrite_name} to redo every "
                f"clip, or choose another {out_name}"
            )
    elif existing and not overwrite:
        raise ValueError(
            f"{out} holds {len(existing)} predicted clip(s) but no {RECORD_FILE} (their settings are unknown); "
            f"pass {overwrite_name} to redo them, or choose another {out_name}"
        )
    if old is None or differing_keys(old, record):
        for folder in existing:
            if folder.is_dir():
                shutil.rmtree(folder)
            else:
                folder.unlink()
    write_text(out / RECORD_FILE, json.dumps(record, indent=2) + "\n")


def _informational(key: str) -> bool:
    return any(key == k or key.startswith(f"{k}.") for k in INFORMATIONAL)


def _one(values: list) -> Any:
    """The value all clips share, else the sorted distinct values."""
    distinct = sorted(set(values))
    return distinct[0] if len(distinct) == 1 else distinct


def _plain(value: Any) -> Any:
    """As JSON reads it back (tuples -> lists), so that a fresh record compares equal to a stored one."""
    return json.loads(json.dumps(value))


def _flat(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, dict) and value:
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
