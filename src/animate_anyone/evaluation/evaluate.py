"""Score generated videos against their ground truth: the ``evaluate`` entry point and its results.

``evaluate(pred_dir, gt_dir)`` pairs the videos of two folders by name (file stem, or folder name for a folder of
frames), checks that every pair has the same frame count and size (a mismatch is a ``ValueError`` naming the pair
and both values: nothing is cropped or resized), streams the frames in small chunks and returns a dict:

* ``per_video``: ``{name: {"num_frames", "width", "height", metric: value, ...}}``
* ``aggregate``: ``{metric: {"mean", "std", "pooled", "n"}}`` -- mean and population std over videos, and the
  value pooled over every frame (or keypoint) of every video, as image-based evaluation code averages.
* ``dataset``: distribution distances over the whole set (``fid`` on frames, ``fvd`` / ``fid_vid`` on clips),
  with ``dataset_samples`` the number of feature vectors per side.
* ``skipped``: ``{metric: reason}`` for every requested metric that could not be computed (missing weights,
  missing pose extractor, too few samples, ...).
* ``predictions``: how ``pred_dir`` was made, copied from its ``predict.json`` (written by ``synthetic predict``:
  model and fingerprint, sampling settings, seeds; ``.record``), None when it has none.
* ``metrics``, ``conventions`` (one line per metric), ``pred_dir``, ``gt_dir``, ``pose_dir``, ``pose_backend``
  (the extractor of the PCK metrics, None without them), ``num_videos``,
  ``missing_predictions`` (ground-truth videos without a prediction; a prediction without ground truth is an
  error).

``write_results`` writes the dict as JSON and a CSV beside it, both atomically; ``format_table`` renders it as
plain text. Non-finite numbers (PSNR of identical frames is +inf) are written as the strings ``"inf"``,
``"-inf"`` and ``"nan"`` in JSON (which has no infinity) and as ``inf`` / ``nan`` in the CSV.

The parts live beside this module: the metrics in :mod:`.registry` (one entry each; the pure functions in
:mod:`.metrics`), finding and streaming videos in :mod:`.pairing`, the feature networks in :mod:`.learned`,
per-video scoring and aggregation in :mod:`.scoring`, the JSON / CSV / table output in :mod:`.output`. The
public names of all of them are importable from here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..config import SettingError
from ..devices import resolve_device
from .learned import LearnedMetrics, load_feature_networks
from .output import format_table, from_json_value, results_csv, to_json_value, write_results
from .pairing import VideoPair, find_videos, pair_videos
from .record import read_record
from .registry import CLIP_LENGTH, FVD_SAMPLING, METRICS, Kind, Settings
from .scoring import PoseSource, aggregate, pose_files, score_videos, usable_keypoint_metrics

__all__ = [
    "ALL_METRICS",
    "CLIP_LENGTH",
    "VideoPair",
    "evaluate",
    "find_videos",
    "format_table",
    "from_json_value",
    "pair_videos",
    "parse_metrics",
    "results_csv",
    "to_json_value",
    "write_results",
]

ALL_METRICS = tuple(name for name, metric in METRICS.items() if metric.kind is not Kind.WORLD)
LPIPS_NETS = ("alex", "vgg")


def parse_metrics(metrics: str | Iterable[str] | None) -> list[str]:
    """Metric names from a list or a comma-separated string (``None`` / ``"all"``: every metric), checked."""
    if metrics is None:
        return list(ALL_METRICS)
    names = [m.strip() for m in (metrics.split(",") if isinstance(metrics, str) else metrics) if m.strip()]
    if names == ["all"]:
        return list(ALL_METRICS)
    unknown = [n for n in names if n not in ALL_METRICS]
    if unknown or not names:
        raise ValueError(
            f"unknown metric(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(ALL_METRICS)} or all"
        )
    return list(dict.fromkeys(names))


def evaluate(
    pred_dir,
    gt_dir,
    metrics=None,
    *,
    pose_dir=None,
    lpips_weights=None,
    lpips_net: str = "alex",
    inception_weights=None,
    i3d_weights=None,
    resnet3d_weights=None,
    clip_length: int = CLIP_LENGTH,
    fvd_samples: str = "video",
    pose_backend: str = "mediapipe",
    pose_model=None,
    device: str = "auto",
    progress: bool = True,
    weight_names: Mapping[str, str] | None = None,
) -> dict:
    """Score every video of ``pred_dir`` against the one of the same name in ``gt_dir``; see the module doc.

    ``metrics``: names from ``ALL_METRICS`` (list or comma string; default all). Weights (paths): LPIPS and
    I3D fall back to the features module's default weights when None, and are skipped (with the reason) if it
    has none; FID needs ``inception_weights`` and FID-VID ``resnet3d_weights`` (skipped without). Weights given
    explicitly that fail to load are an error. ``clip_length``: frames per clip for FVD and FID-VID (16).
    ``fvd_samples``: ``"video"`` (default; one I3D feature per video, the mean over its clips, the last clip
    padded by repeating its last frame: DisCo's convention, also used for FID-VID) or ``"clip"`` (every whole
    clip is a sample, a trailing partial clip is dropped: Unterthiner et al.'s). ``pose_dir``: driving keypoints
    ``<name>.npz`` / ``<name>.json`` for PCK; without it the driving pose is extracted from the ground truth.
    ``pose_backend``: the extractor PCK re-extracts poses with (``mediapipe``, ``dwpose``, or ``regressor``: the
    synthetic world's keypoint regressor, from the folder ``pose_model``, default the packaged one).
    ``weight_names``: the caller's names for the weight keywords in the reasons of ``skipped`` (a command's flags);
    a bad setting is a ``SettingError``.
    """
    names = parse_metrics(metrics)
    settings = _settings(names, lpips_net, clip_length, fvd_samples)
    pairs, missing = pair_videos(pred_dir, gt_dir)
    device = resolve_device(device)
    skipped: dict[str, str] = {}
    weights = {
        "lpips_weights": lpips_weights,
        "inception_weights": inception_weights,
        "i3d_weights": i3d_weights,
        "resnet3d_weights": resnet3d_weights,
    }
    networks = load_feature_networks(names, weights, settings, device, skipped, weight_names)
    learned = LearnedMetrics(networks, settings, device)
    pose_source = PoseSource(pose_backend, None if pose_model is None else str(pose_model))
    keypoint_names = usable_keypoint_metrics(names, pose_source, skipped)
    poses = pose_files(pose_dir, [pair.name for pair in pairs]) if keypoint_names else {}
    per_video, pooled = score_videos(pairs, names, learned, keypoint_names, poses, pose_source, device, progress)
    dataset, samples = learned.distances(skipped)
    return {
        "pred_dir": str(pred_dir),
        "predictions": read_record(pred_dir),
        "gt_dir": str(gt_dir),
        "pose_dir": None if pose_dir is None else str(pose_dir),
        "pose_backend": pose_source.describe() if keypoint_names else None,
        "num_videos": len(per_video),
        "metrics": names,
        "conventions": {n: METRICS[n].describe(settings) for n in names},
        "aggregate": {n: aggregate(METRICS[n], per_video, pooled[n]) for n in names if n in pooled},
        "dataset": dataset,
        "dataset_samples": samples,
        "skipped": {n: skipped[n] for n in names if n in skipped},
        "missing_predictions": missing,
        "per_video": per_video,
    }


def _settings(names: list[str], lpips_net: str, clip_length: int, fvd_samples: str) -> Settings:
    """The run's settings, checked (also against the shortest clip each requested metric's network takes)."""
    if lpips_net not in LPIPS_NETS:
        raise ValueError(f"lpips_net must be 'alex' or 'vgg', got {lpips_net!r}")
    if fvd_samples not in FVD_SAMPLING:
        raise ValueError(f"fvd_samples must be 'video' or 'clip', got {fvd_samples!r}")
    settings = Settings(lpips_net=lpips_net, clip_length=clip_length, fvd_samples=fvd_samples)
    for metric in (METRICS[n] for n in names):
        if clip_length < metric.min_clip:
            what = metric.network.describe(settings)
            raise SettingError(
                "clip_length", clip_length, f"{metric.name} ({what}) needs clips of at least {metric.min_clip} frames"
            )
    if clip_length < 1:
        raise SettingError("clip_length", clip_length, "must be at least 1")
    return settings
