"""Metrics that need what only the synthetic world knows exactly: masks, the windows' seams, both bodies.

Pure functions of frame arrays (``(T, H, W, 3)`` uint8, or float in [0, 1]) and the world's exact extras; the
entries of :data:`WORLD_METRICS` (the product's ``Metric`` type, kind ``WORLD``) name them, give their direction and
the inputs each one reads, and ``synthetic measure`` (:mod:`animate_anyone_lab.measure`) feeds them per clip.

* long videos: ``window_gap`` (PSNR of a window of the long video minus that of the same frames generated as a
  fresh short clip: what windowing costs, free of the poses' own difficulty), ``drift_slope`` (the trend of that
  difference over the whole clip), ``seam_ratio`` (frame-to-frame error where windows meet over that inside
  windows), ``color_drift`` (how much more the mean colour of a region moves from the first to the last window
  than the truth's does);
* background: ``region_change_pairs`` (mean absolute frame-to-frame change inside a mask) and
  ``region_psnr_frames`` (PSNR inside a mask);
* body shape: ``leakage`` (0 = the reference's proportions kept, 1 = the driver's copied), a projection in pixel
  space between the truth and the render of the reference character with the driver's proportions. (Limb lengths
  read by the pose oracle were tried first: at 64 px its readings of the truth and of that render disagree in sign
  with the exact limb-length gap on a third of the limbs, so it cannot measure a leak of 1-4 px.)
"""

from __future__ import annotations

import math

import numpy as np

from animate_anyone.evaluation.metrics import _as_float, _pair, flicker_pairs, psnr_frames
from animate_anyone.evaluation.registry import Kind, Metric

PSNR_CAP = 100.0  # dB: an identical frame counts as this, so differences stay finite


def _capped_psnr(pred, gt) -> np.ndarray:
    return np.minimum(psnr_frames(pred, gt), PSNR_CAP)


def window_gap(pred, gt, fresh, frames: slice) -> float:
    """Mean PSNR of ``pred[frames]`` against the truth minus that of ``fresh[frames]`` (the same frames generated as
    a fresh short clip), dB: 0 = windowing costs nothing there, negative = the long video is worse."""
    return float(_capped_psnr(pred[frames], gt[frames]).mean() - _capped_psnr(fresh[frames], gt[frames]).mean())


def drift_slope(pred, gt, fresh) -> float:
    """Least-squares slope of ``psnr(pred_t) - psnr(fresh_t)`` over the frame index, dB per 100 frames: negative =
    the long video falls behind the fresh clips as it goes on (drift)."""
    gap = _capped_psnr(pred, gt) - _capped_psnr(fresh, gt)
    if len(gap) < 2:
        return math.nan
    return float(np.polyfit(np.arange(len(gap)), gap, 1)[0] * 100)


def seam_ratio(pred, gt, seams) -> float:
    """Mean of ``flicker_pairs`` over the pairs (t - 1, t) with t in ``seams`` (frames where the windows covering a
    frame change) over its mean over the other pairs: 1 = seams invisible; NaN without seams or inside pairs."""
    pairs = flicker_pairs(pred, gt)  # pair t - 1 holds frames (t - 1, t)
    at = np.zeros(len(pairs), bool)
    at[[t - 1 for t in seams if 1 <= t <= len(pairs)]] = True
    if not at.any() or at.all():
        return math.nan
    return float(pairs[at].mean() / max(pairs[~at].mean(), 1e-12))


def _region_mean(frames: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean RGB over the pixels of ``mask`` ((T, H, W) or (H, W)) in all ``frames`` (T, H, W, 3) -> (3,)."""
    mask = np.broadcast_to(mask, frames.shape[:3])
    return frames[mask].mean(axis=0)


def color_drift(pred, gt, mask, window: int) -> float:
    """How much more the mean colour of a region moves between the first and the last ``window`` frames in
    ``pred`` than in the truth, on 0..255: ``max_c |(pred_last - pred_first) - (gt_last - gt_first)|``. ``mask``:
    (T, H, W) (the character, per frame) or (H, W) (the static background). NaN for fewer than 2 windows of frames."""
    a, b = _pair(pred, gt)
    mask = np.asarray(mask, bool)
    if len(a) < 2 * window:
        return math.nan  # the first and the last window overlap
    first, last = slice(0, window), slice(len(a) - window, len(a))
    m_first, m_last = (mask[first], mask[last]) if mask.ndim == 3 else (mask, mask)
    moved_pred = _region_mean(a[last], m_last) - _region_mean(a[first], m_first)
    moved_gt = _region_mean(b[last], m_last) - _region_mean(b[first], m_first)
    return float(np.abs(moved_pred - moved_gt).max() * 255)


def region_change_pairs(frames, mask) -> np.ndarray:
    """For t = 1..T-1: mean ``|f_t - f_{t-1}|`` over the pixels of ``mask`` (H, W) and the channels, [0, 1]."""
    x = _as_float(frames)
    return np.abs(np.diff(x, axis=0))[:, np.asarray(mask, bool)].mean(axis=(1, 2))


def region_psnr_frames(pred, gt, mask) -> np.ndarray:
    """Per frame: ``10 log10(1 / MSE)`` over the pixels of ``mask`` (H, W) only, capped at ``PSNR_CAP``."""
    a, b = _pair(pred, gt)
    mse = np.square(a - b)[:, np.asarray(mask, bool)].mean(axis=(1, 2))
    with np.errstate(divide="ignore"):
        return np.minimum(10 * np.log10(1 / mse), PSNR_CAP)


def leakage(pred, gt, copied, threshold: float = 2 / 255) -> float:
    """How far the prediction moved from the truth (the reference character with its own proportions) towards
    ``copied`` (the same character rendered with the driver's proportions, size and place: a full copy of the
    driver's skeleton), as the least-squares coefficient ``l`` of ``pred ~ (1 - l) gt + l copied`` over the pixels
    where the two renders differ by more than ``threshold``: 0 = the reference's proportions kept, 1 = the
    driver's copied; NaN when the renders never differ."""
    a, b = _pair(pred, gt)
    c = _as_float(copied)
    direction = c - b
    where = np.abs(direction).max(axis=-1, keepdims=True) > threshold
    norm = np.square(direction * where).sum()
    if norm == 0:
        return math.nan
    return float(((a - b) * direction * where).sum() / norm)


# ------------------------------------------------------------------ the registry's entry points (one video each)


def last_window_gap(pred, gt, fresh, window: int) -> float:
    """``window_gap`` over the last ``window`` frames."""
    return window_gap(pred, gt, fresh, slice(len(pred) - window, len(pred)))


def character_color_drift(pred, gt, character_mask, window: int) -> float:
    """``color_drift`` inside the character's per-frame mask."""
    return color_drift(pred, gt, character_mask, window)


def background_color_drift(pred, gt, static_mask, window: int) -> float:
    """``color_drift`` inside the static-background mask."""
    return color_drift(pred, gt, static_mask, window)


def background_change(pred, static_mask) -> float:
    """Mean ``region_change_pairs`` inside the static-background mask, on 0..255."""
    pairs = region_change_pairs(pred, static_mask)
    return float(pairs.mean() * 255) if len(pairs) else math.nan


def background_psnr(pred, gt, static_mask) -> float:
    """Mean ``region_psnr_frames`` inside the static-background mask."""
    return float(region_psnr_frames(pred, gt, static_mask).mean())


_ENTRIES = (
    Metric(
        "window_gap",
        Kind.WORLD,
        higher_is_better=True,
        convention="mean PSNR (per frame, capped at 100 dB) of the long video's last window minus that of the same "
        "frames generated as a fresh short clip (same reference, poses, seed), dB; 0 = windowing costs nothing",
        compute=last_window_gap,
        inputs=("pred", "gt", "fresh", "window"),
    ),
    Metric(
        "drift_slope",
        Kind.WORLD,
        higher_is_better=True,
        convention="least-squares slope over the frame index of per-frame PSNR(long) - PSNR(fresh short clips), "
        "dB per 100 frames; negative = drifting",
        compute=drift_slope,
        inputs=("pred", "gt", "fresh"),
    ),
    Metric(
        "seam_ratio",
        Kind.WORLD,
        higher_is_better=False,
        convention="mean flicker (|Δpred - Δgt|, [0,1]) of the frame pairs where the final step's windows meet over "
        "that of the other pairs; 1 = seams invisible",
        compute=seam_ratio,
        inputs=("pred", "gt", "seams"),
    ),
    Metric(
        "char_color_drift",
        Kind.WORLD,
        higher_is_better=False,
        convention="max over RGB of |(pred last - first window) - (gt last - first window)| of the mean colour inside "
        "the character's exact per-frame mask, 0..255",
        compute=character_color_drift,
        inputs=("pred", "gt", "character_mask", "window"),
    ),
    Metric(
        "bg_color_drift",
        Kind.WORLD,
        higher_is_better=False,
        convention="the same inside the static-background mask, 0..255",
        compute=background_color_drift,
        inputs=("pred", "gt", "static_mask", "window"),
    ),
    Metric(
        "bg_change",
        Kind.WORLD,
        higher_is_better=False,
        convention="mean over consecutive pairs of mean |pred_t - pred_t-1| inside the static-background mask, "
        "0..255 (the truth's own value is its encoding noise)",
        compute=background_change,
        inputs=("pred", "static_mask"),
    ),
    Metric(
        "bg_psnr",
        Kind.WORLD,
        higher_is_better=True,
        convention="per-frame PSNR inside the static-background mask ([0,1], capped at 100 dB), mean over frames",
        compute=background_psnr,
        inputs=("pred", "gt", "static_mask"),
    ),
    Metric(
        "leakage",
        Kind.WORLD,
        higher_is_better=False,
        convention="least-squares l of pred ~ (1 - l) gt + l copied over the pixels where gt and copied (the reference "
        "character with the driver's proportions, size and place) differ by > 2/255; 0 = the reference's "
        "proportions kept, 1 = the driver's copied",
        compute=leakage,
        inputs=("pred", "gt", "copied"),
    ),
)

WORLD_METRICS: dict[str, Metric] = {metric.name: metric for metric in _ENTRIES}
"""The world's metrics by name, in the order of ``synthetic measure``'s output."""
