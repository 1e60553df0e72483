"""``synthetic measure``: the world metrics (registry kind ``WORLD``) of a prediction folder on a world split.

Per clip it gathers what the metrics read (``evaluation.registry.Metric.inputs``):

* ``pred``, ``gt``: the predicted frames (``OUT/<id>/``, or videos) and the ground truth (``videos/<id>``);
* ``fresh``: the same clip from ``--fresh`` (made by ``synthetic predict --chunk N``: fresh short clips), if given;
* ``window``: the windows' length from the prediction's ``predict.json`` (default 24);
* ``seams``: frames where the set of windows covering a frame changes at the final denoising step, from the
  window settings, steps and guidance that ``predict.json`` records (``pipelines.context.window_seams``);
* ``character_mask``, ``static_mask``: ``masks/<id>.npz`` of the world splits;
* ``copied``: ``copied/<id>.mp4`` (or a PNG folder) of the cross-body splits: the reference character with the
  driver's proportions.

A metric lacking an input for a clip gets NaN there. The JSON written holds every metric's per-clip values and
mean (over the clips where it is finite), the per-frame PSNR of the prediction and of the fresh clips (for
plots), the seams, and the prediction's record.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from animate_anyone.config import SettingError

from .world_metrics import WORLD_METRICS

PathLike = str | os.PathLike[str]


def world_metrics() -> list:
    """The world's metrics (``WORLD_METRICS``), in order."""
    return list(WORLD_METRICS.values())


def final_seams(record: dict | None, num_frames: int) -> list[int] | None:
    """The seams of the final denoising step for the settings a ``predict.json`` records (None without one)."""
    from animate_anyone.pipelines.context import window_seams
    from animate_anyone.pipelines.settings import STEP_FIELDS, WINDOW_FIELDS, SamplingSettings

    if record is None or record.get("sampling") is None or record.get("window") is None:
        return None
    s, w = record["sampling"], record["window"]
    if (record.get("driving") or {}).get("chunk"):
        return None  # fresh clips: no windows over the whole clip
    settings = SamplingSettings(**{k: s[k] for k in STEP_FIELDS if k in s}, **{k: w[k] for k in WINDOW_FIELDS})
    mode, size, overlap = settings.window_mode, settings.context_frames, settings.context_overlap
    return window_seams(mode, num_frames, size, overlap, settings.plan[-1].grid)


def measure_split(
    split_dir: PathLike,
    pred_dir: PathLike,
    *,
    fresh_dir: PathLike | None = None,
    progress: bool = False,
) -> dict:
    """The world metrics of the predictions in ``pred_dir`` on ``split_dir`` (see the module doc)."""
    from tqdm.auto import tqdm

    from animate_anyone.data.manifest import read_manifest
    from animate_anyone.evaluation.pairing import find_videos
    from animate_anyone.evaluation.record import read_record

    split_dir, pred_dir = Path(split_dir), Path(pred_dir)
    record = read_record(pred_dir)
    if fresh_dir is not None:
        check_fresh(record, read_record(fresh_dir), fresh_dir)
    window = int(((record or {}).get("window") or {}).get("context_frames", 24))  # copy-reference: no windows
    metrics = world_metrics()
    per_clip: dict[str, dict[str, float]] = {m.name: {} for m in metrics}
    curves, seams_of = {}, {}
    folders = {"pred": pred_dir, "fresh": fresh_dir, "copied": split_dir / "copied"}
    folders = {k: Path(v) for k, v in folders.items() if v is not None and (k != "copied" or Path(v).is_dir())}
    videos = {k: find_videos(v) for k, v in folders.items()}  # name -> file or frame folder, listed once
    for clip in tqdm(read_manifest(split_dir), desc=f"measure {pred_dir.name}", disable=not progress):
        gt = _frames(clip.video)
        pred = _frames(_clip(videos, folders, "pred", clip.id))
        if pred.shape != gt.shape:
            raise ValueError(f"{pred_dir / clip.id}: {pred.shape} frames, the truth {gt.shape}")
        inputs = {"pred": pred, "gt": gt, "window": min(window, len(gt))}
        seams = final_seams(record, len(gt))
        if seams is not None:
            inputs["seams"] = seams_of[clip.id] = seams
        if fresh_dir is not None:
            inputs["fresh"] = _frames(_clip(videos, folders, "fresh", clip.id))
            if inputs["fresh"].shape != gt.shape:
                raise SettingError(
                    "fresh_dir", fresh_dir, f"{clip.id} has {inputs['fresh'].shape} frames, the truth {gt.shape}"
                )
        masks = split_dir / "masks" / f"{clip.id}.npz"
        if masks.is_file():
            with np.load(masks) as m:
                inputs["character_mask"], inputs["static_mask"] = m["character"], m["static"]
        if "copied" in videos:
            inputs["copied"] = _frames(_clip(videos, folders, "copied", clip.id))
        for m in metrics:
            have = all(k in inputs for k in m.inputs)
            per_clip[m.name][clip.id] = m.compute(**{k: inputs[k] for k in m.inputs}) if have else math.nan
        curves[clip.id] = _curves(inputs)
    result = {
        "written_by": "animate-anyone synthetic measure",
        "data": str(split_dir),
        "pred": str(pred_dir),
        "fresh": None if fresh_dir is None else str(fresh_dir),
        "metrics": {
            m.name: {
                "mean": _mean(per_clip[m.name].values()),
                "higher_is_better": m.higher_is_better,
                "convention": m.convention,
                "per_clip": per_clip[m.name],
            }
            for m in metrics
        },
        "seams": seams_of,
        "curves": curves,
        "predictions": record,
    }
    return _clean(result)


def check_fresh(record: dict | None, fresh: dict | None, fresh_dir: PathLike) -> None:
    """``SettingError`` (``fresh_dir``) unless ``fresh`` (its record) is the prediction's model, sampling and seed cut
    into pieces of its window length (``synthetic predict --chunk``)."""
    if record is None or fresh is None:
        raise SettingError("fresh_dir", fresh_dir, "both folders need the predict.json that synthetic predict writes")
    wanted = {
        "model": record.get("model"),
        "sampling": record.get("sampling"),
        "seed": record.get("seed"),
        "chunk": (record.get("window") or {}).get("context_frames"),
    }
    given = {
        **{k: fresh.get(k) for k in ("model", "sampling", "seed")},
        "chunk": (fresh.get("driving") or {}).get("chunk"),
    }
    for key in ("model", "sampling"):  # where the files live and the thread count do not matter
        for entry in (wanted, given):
            entry[key] = {k: v for k, v in (entry[key] or {}).items() if k not in ("path", "preset", "overrides")}
    differ = [k for k in wanted if wanted[k] != given[k]]
    if differ:
        raise SettingError(
            "fresh_dir",
            fresh_dir,
            f"not made as fresh clips of this prediction ({', '.join(differ)} differ: "
            f"{', '.join(f'{k} {given[k]!r} instead of {wanted[k]!r}' for k in differ)}); predict it with chunk "
            "set to the context frames and the same model, settings and seed (`synthetic predict --chunk N`)",
        )


def _frames(path: Path) -> np.ndarray:
    from animate_anyone.media import iter_frames

    return np.stack(list(iter_frames(path)))


def _clip(videos: dict[str, dict[str, Path]], folders: dict[str, Path], kind: str, clip_id: str) -> Path:
    """The video of ``clip_id`` among ``videos[kind]`` (``evaluation.pairing.find_videos`` of ``folders[kind]``)."""
    if clip_id not in videos[kind]:
        raise FileNotFoundError(f"{folders[kind]} has no video of {clip_id} (a {clip_id}/ frame folder or video file)")
    return videos[kind][clip_id]


def _curves(inputs: dict) -> dict:
    from .world_metrics import _capped_psnr

    out = {"psnr": _capped_psnr(inputs["pred"], inputs["gt"]).round(3).tolist()}
    if "fresh" in inputs:
        out["fresh_psnr"] = _capped_psnr(inputs["fresh"], inputs["gt"]).round(3).tolist()
    return out


def _mean(values) -> float:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def _clean(value):
    """JSON-ready: numpy scalars and arrays as Python values, NaN and infinities as None."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
