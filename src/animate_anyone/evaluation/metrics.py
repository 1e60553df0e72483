"""Reconstruction metrics between a generated video and its ground truth: pure functions on frame arrays.

Inputs: one frame ``HxWx3`` or a video ``TxHxWx3``, ``uint8`` (0..255) or floating point in [0, 1]; ``uint8`` is
divided by 255. Everything is computed in float64. The two inputs must have the same shape: nothing is cropped
or resized here.

Each ``*_frames`` function returns one value per frame (shape ``(T,)``); the function of the plain name reduces a
video to one number (the mean over frames unless its docstring says otherwise). The names used by
:mod:`animate_anyone.evaluation.evaluate` (and in the output files), with the per-frame function of each, are
the entries of :data:`animate_anyone.evaluation.registry.METRICS`.

Conventions (details in each docstring and in ``docs/evaluation.md``):

* ``l1``: mean absolute difference on [0, 1].
* ``psnr`` (default): per-frame MSE on [0, 1] -> per-frame PSNR -> mean over frames. ``psnr_video``: one MSE
  over the whole video. ``psnr_legacy_uint8``: the overflowing 8-bit computation of DisCo's evaluation code,
  kept only to compare with numbers produced by that code.
* ``ssim``: Wang et al.'s SSIM with scikit-image's default settings (7x7 uniform window, sample covariance,
  K1 = 0.01, K2 = 0.03) on the three RGB channels, averaged. ``ssim_gray``: the same on BT.601 luma, as
  DisCo's evaluation code computes it.
* ``flicker``: mean absolute difference between the frame-to-frame changes of the two videos.
* ``pck@0.05`` / ``pck@0.1``: keypoint accuracy of re-extracted poses (takes keypoint arrays, not frames).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
import torch.nn.functional as F

# Luma weights of ITU-R BT.601 in OpenCV's 14-bit fixed point (cvtColor RGB->GRAY on 8-bit images).
_LUMA_FIXED = (4899, 9617, 1868)
_LUMA = (0.299, 0.587, 0.114)
LEGACY_PSNR_IDENTICAL = 100.0  # what the legacy code returns when its (wrapped) MSE is 0


# ----------------------------------------------------------------------------------------------- helpers


def _pair(pred, gt) -> tuple[np.ndarray, np.ndarray]:
    """Both inputs as float64 ``(T, H, W, C)`` arrays in [0, 1] (a single frame becomes T = 1)."""
    a, b = _as_float(pred), _as_float(gt)
    if a.shape != b.shape:
        raise ValueError(f"prediction and ground truth differ in shape: {a.shape} vs {b.shape}")
    return a, b


def _as_float(x) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise ValueError(f"expected HxWx3 or TxHxWx3 frames, got shape {x.shape}")
    if x.dtype == np.uint8:
        return x.astype(np.float64) / 255.0
    if np.issubdtype(x.dtype, np.floating):
        return x.astype(np.float64, copy=False)
    raise ValueError(f"frames must be uint8 (0..255) or float in [0, 1], got {x.dtype}")


def _as_uint8(x) -> np.ndarray:
    """``(T, H, W, C)`` uint8; float input in [0, 1] is scaled by 255 and rounded."""
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        raise ValueError(f"expected HxWx3 or TxHxWx3 frames, got shape {x.shape}")
    if x.dtype == np.uint8:
        return x
    if np.issubdtype(x.dtype, np.floating):
        return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)
    raise ValueError(f"frames must be uint8 (0..255) or float in [0, 1], got {x.dtype}")


def _psnr_from_mse(mse: np.ndarray, peak: float = 1.0) -> np.ndarray:
    """10 log10(peak^2 / mse); +inf where mse is 0."""
    mse = np.asarray(mse, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(peak * peak / mse)


# ----------------------------------------------------------------------------------------------- L1 / PSNR


def l1_frames(pred, gt) -> np.ndarray:
    """Per frame: mean over pixels and channels of ``|pred - gt|``, both on [0, 1] (uint8 / 255)."""
    a, b = _pair(pred, gt)
    return np.abs(a - b).mean(axis=(1, 2, 3))


def l1(pred, gt) -> float:
    """Mean absolute difference on [0, 1], averaged over frames. 0 for identical inputs.

    Not DisCo's "L1" (its code divides the 0..255 absolute difference by H x W once more, which is why its
    tables show values around 1e-4); convert with ``l1_disco = 255 * l1 / (H * W)``.
    """
    return float(l1_frames(pred, gt).mean())


def mse_frames(pred, gt) -> np.ndarray:
    """Per frame: mean squared difference on [0, 1] over pixels and channels, float64."""
    a, b = _pair(pred, gt)
    return np.square(a - b).mean(axis=(1, 2, 3))


def psnr_frames(pred, gt) -> np.ndarray:
    """Per frame: ``10 log10(1 / MSE)`` with the MSE on [0, 1] in float64; +inf for an identical frame."""
    return _psnr_from_mse(mse_frames(pred, gt))


def psnr(pred, gt) -> float:
    """PSNR in dB, the default convention: per-frame PSNR (MSE on [0, 1], float64), then the mean over frames.

    This is how the image-based evaluation code of the pose-to-video literature scores a video (each frame is
    an image, the scores are averaged), so it is the one comparable with published tables, apart from their
    8-bit overflow (see :func:`psnr_legacy_uint8`). Averaging dB also keeps one bad frame from dominating,
    which a single MSE over the video (:func:`psnr_video`) would let happen. +inf when any frame is identical
    to its ground truth (0 error): evaluate writes that as the string ``"inf"`` in JSON.
    """
    return float(psnr_frames(pred, gt).mean())


def psnr_video(pred, gt) -> float:
    """PSNR in dB of one MSE over every pixel of every frame (on [0, 1], float64): ``10 log10(1 / mean MSE)``.

    Never larger than :func:`psnr` (Jensen); +inf only when the whole video is identical.
    """
    return float(_psnr_from_mse(mse_frames(pred, gt).mean()))


def uint8_wrapped_difference(pred, gt) -> np.ndarray:
    """``pred - gt`` computed in uint8, as NumPy does for two uint8 arrays: negative results wrap (0 - 1 = 255)."""
    a, b = _as_uint8(pred), _as_uint8(gt)
    if a.shape != b.shape:
        raise ValueError(f"prediction and ground truth differ in shape: {a.shape} vs {b.shape}")
    return a - b  # uint8 arithmetic, modulo 256


def psnr_legacy_uint8_frames(pred, gt) -> np.ndarray:
    """Per frame, the LEGACY 8-bit PSNR: ``mse = mean((a - b) ** 2)`` evaluated on uint8 arrays.

    Both the difference and its square stay uint8, so both wrap modulo 256: a pixel off by d contributes
    ``d^2 mod 256`` instead of ``d^2`` (d = 16 contributes 0, d = 20 contributes 144). Then
    ``20 log10(255 / sqrt(mse))``, or 100 when the wrapped MSE is 0. Because every wrapped term is below
    256, this "PSNR" is never below 20 log10(255 / 16) = 24.05 dB. Float input is first rounded to uint8.
    """
    squared = np.square(uint8_wrapped_difference(pred, gt))  # uint8 ** 2 stays uint8: wraps again
    mse = squared.reshape(len(squared), -1).mean(axis=1, dtype=np.float64)
    with np.errstate(divide="ignore"):
        out = 20.0 * np.log10(255.0 / np.sqrt(mse))
    return np.where(mse == 0, LEGACY_PSNR_IDENTICAL, out)


def psnr_legacy_uint8(pred, gt) -> float:
    """LEGACY, for comparison with old tables only: DisCo's 8-bit PSNR, averaged over frames.

    Reproduces ``np.mean((original - compressed) ** 2)`` on uint8 images (DisCo's
    ``tool/metrics/ssim_l1_lpips_psnr.py``, used by later papers that evaluate on TikTok), including the
    wrap-around and the 100 dB returned for a zero MSE. It is not a PSNR: it is bounded below by 24.05 dB
    and is not monotonic in the error. See :func:`psnr_legacy_uint8_frames`.
    """
    return float(psnr_legacy_uint8_frames(pred, gt).mean())


# ----------------------------------------------------------------------------------------------- SSIM


def _window_mean(x: torch.Tensor, gaussian_weights: bool, win_size: int, sigma: float) -> torch.Tensor:
    """Windowed mean of ``(N, 1, H, W)`` over the positions where the window lies inside the image."""
    if not gaussian_weights:
        return F.avg_pool2d(x, win_size, stride=1)
    radius = (win_size - 1) // 2
    taps = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    kernel = kernel / kernel.sum()
    x = F.conv2d(x, kernel.view(1, 1, 1, -1))
    return F.conv2d(x, kernel.view(1, 1, -1, 1))


def _ssim_planes(
    a: np.ndarray,
    b: np.ndarray,
    data_range: float,
    win_size: int | None,
    gaussian_weights: bool,
    sigma: float,
    use_sample_covariance: bool,
    k1: float,
    k2: float,
    device=None,
) -> np.ndarray:
    """Mean SSIM of each ``(H, W)`` plane of ``(N, H, W)`` float64 arrays -> ``(N,)``."""
    if win_size is None:
        win_size = 2 * int(3.5 * sigma + 0.5) + 1 if gaussian_weights else 7  # as scikit-image picks it
    if win_size % 2 != 1 or win_size < 3:
        raise ValueError(f"win_size must be odd and >= 3, got {win_size}")
    height, width = a.shape[-2:]
    if min(height, width) < win_size:
        raise ValueError(f"SSIM needs frames of at least {win_size}x{win_size} pixels, got {width}x{height}")
    n = win_size * win_size
    cov_norm = n / (n - 1) if use_sample_covariance else 1.0
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    x = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))[:, None].to(device or "cpu")
    y = torch.from_numpy(np.ascontiguousarray(b, dtype=np.float64))[:, None].to(device or "cpu")
    n_planes = len(x)
    means = _window_mean(torch.cat([x, y, x * x, y * y, x * y]), gaussian_weights, win_size, sigma)
    ux, uy, uxx, uyy, uxy = means.split(n_planes)
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.mean(dim=(1, 2, 3)).cpu().numpy()


def ssim_frames(
    pred,
    gt,
    *,
    win_size: int | None = None,
    gaussian_weights: bool = False,
    sigma: float = 1.5,
    use_sample_covariance: bool = True,
    k1: float = 0.01,
    k2: float = 0.03,
    device=None,
) -> np.ndarray:
    """Per frame SSIM on [0, 1] (``data_range = 1``), computed per RGB channel and averaged over channels.

    Equals ``skimage.metrics.structural_similarity(pred_t, gt_t, channel_axis=-1, data_range=1.0, ...)`` with
    the same keyword settings (defaults: ``win_size=7`` uniform window, ``use_sample_covariance=True``,
    ``K1=0.01``, ``K2=0.03``; Wang et al.'s original is ``gaussian_weights=True`` (11x11 Gaussian, sigma 1.5)
    with ``use_sample_covariance=False``). The mean runs over the positions where the whole window
    lies inside the frame, as scikit-image crops its border. SSIM is unchanged by scaling both the images
    and the data range, so 8-bit input with data_range 255 gives the same value. Computed in float64 with
    torch; ``device`` (e.g. ``"cuda"``) only changes where.
    """
    a, b = _pair(pred, gt)
    t, h, w, c = a.shape
    planes_a = a.transpose(0, 3, 1, 2).reshape(t * c, h, w)
    planes_b = b.transpose(0, 3, 1, 2).reshape(t * c, h, w)
    values = _ssim_planes(
        planes_a, planes_b, 1.0, win_size, gaussian_weights, sigma, use_sample_covariance, k1, k2, device
    )
    return values.reshape(t, c).mean(axis=1)


def ssim(pred, gt, **settings) -> float:
    """SSIM averaged over frames (see :func:`ssim_frames` for the exact settings). 1 for identical inputs.

    Default = scikit-image's defaults on RGB: a 7x7 uniform window with sample covariance, not the 11x11
    Gaussian of Wang et al. Chosen because the evaluation code the TikTok / UBC-Fashion comparisons go back to
    (DisCo's, which calls scikit-image with its defaults) uses that window, so values are comparable; the
    Gaussian variant is available with ``gaussian_weights=True``.
    """
    return float(ssim_frames(pred, gt, **settings).mean())


def luma(frames) -> np.ndarray:
    """BT.601 luma ``0.299 R + 0.587 G + 0.114 B`` of ``(T, H, W, 3)`` frames -> ``(T, H, W)``.

    uint8 in -> uint8 out, rounded with 14-bit fixed-point weights (4899, 9617, 1868) / 2^14, the integer form
    OpenCV's ``cvtColor(..., COLOR_RGB2GRAY)`` uses for 8-bit images; float in -> float64 out, unrounded.
    """
    x = np.asarray(frames)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected HxWx3 or TxHxWx3 frames, got shape {np.asarray(frames).shape}")
    if x.dtype == np.uint8:
        r, g, b = (x[..., i].astype(np.int32) for i in range(3))
        y = (r * _LUMA_FIXED[0] + g * _LUMA_FIXED[1] + b * _LUMA_FIXED[2] + (1 << 13)) >> 14
        return y.astype(np.uint8)
    return x.astype(np.float64) @ np.array(_LUMA)


def ssim_gray_frames(
    pred,
    gt,
    *,
    win_size: int | None = None,
    gaussian_weights: bool = False,
    sigma: float = 1.5,
    use_sample_covariance: bool = True,
    k1: float = 0.01,
    k2: float = 0.03,
    device=None,
) -> np.ndarray:
    """Per frame SSIM of the BT.601 luma (:func:`luma`), with the settings of :func:`ssim_frames`.

    For uint8 frames the luma is rounded to 8 bits first, as DisCo's code does with
    ``structural_similarity(cvtColor(gen, BGR2GRAY), cvtColor(gt, BGR2GRAY))`` (scikit-image defaults, data
    range 255). The rounding uses the fixed-point weights of OpenCV's colour-conversion source (R2Y, G2Y, B2Y,
    ``yuv_shift`` 14); OpenCV itself is not a dependency.
    """
    a, b = _as_float(luma(pred)[..., None]), _as_float(luma(gt)[..., None])
    if a.shape != b.shape:
        raise ValueError(f"prediction and ground truth differ in shape: {a.shape} vs {b.shape}")
    return _ssim_planes(
        a[..., 0], b[..., 0], 1.0, win_size, gaussian_weights, sigma, use_sample_covariance, k1, k2, device
    )


def ssim_gray(pred, gt, **settings) -> float:
    """SSIM of the luma averaged over frames (DisCo's convention; see :func:`ssim_gray_frames`)."""
    return float(ssim_gray_frames(pred, gt, **settings).mean())


# ----------------------------------------------------------------------------------------------- temporal


def flicker_pairs(pred, gt) -> np.ndarray:
    """For t = 1..T-1: mean over pixels of ``|(pred_t - pred_{t-1}) - (gt_t - gt_{t-1})|`` on [0, 1] -> ``(T-1,)``."""
    a, b = _pair(pred, gt)
    return np.abs(np.diff(a, axis=0) - np.diff(b, axis=0)).mean(axis=(1, 2, 3))


def flicker(pred, gt) -> float:
    """Temporal consistency, lower is better: the mean over consecutive frame pairs of
    ``mean |(pred_t - pred_{t-1}) - (gt_t - gt_{t-1})|`` on [0, 1].

    It compares how each video changes from one frame to the next, so a constant error (a colour shift, a
    static misplaced detail) costs nothing while flicker, popping and jitter that the ground truth does not have
    are counted. No optical flow is involved. 0 for identical videos (and for pred = gt + a constant); NaN for a
    single frame (no pair).
    """
    pairs = flicker_pairs(pred, gt)
    return float(pairs.mean()) if len(pairs) else math.nan


# ----------------------------------------------------------------------------------------------- pose


def pck_counts(pred_keypoints, ref_keypoints, alpha: float) -> tuple[int, int]:
    """``(correct, counted)`` keypoints for PCK at ``alpha``; see :func:`pck`."""
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    pred, ref = np.asarray(pred_keypoints, np.float64), np.asarray(ref_keypoints, np.float64)
    if pred.shape != ref.shape or pred.ndim < 2 or pred.shape[-1] != 3:
        raise ValueError(f"keypoint arrays must have the same (..., K, 3) shape, got {pred.shape} and {ref.shape}")
    pred, ref = pred.reshape(-1, *pred.shape[-2:]), ref.reshape(-1, *ref.shape[-2:])
    visible = ref[..., 2] > 0
    xy = np.where(visible[..., None], ref[..., :2], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows (nothing visible) give NaN, left out below
        side = np.fmax(
            np.nanmax(xy[..., 0], 1) - np.nanmin(xy[..., 0], 1), np.nanmax(xy[..., 1], 1) - np.nanmin(xy[..., 1], 1)
        )
    usable = (visible.sum(axis=1) >= 2) & (side > 0)
    counted = visible & usable[:, None]
    distance = np.linalg.norm(pred[..., :2] - ref[..., :2], axis=-1)
    threshold = alpha * np.where(usable, side, 0.0)[:, None]
    correct = counted & (pred[..., 2] > 0) & (distance <= threshold)
    return int(correct.sum()), int(counted.sum())


def pck(pred_keypoints, ref_keypoints, alpha: float = 0.1) -> float:
    """Percentage of Correct Keypoints (a fraction in [0, 1]) of re-extracted poses against the driving pose.

    Arrays ``(..., K, 3)`` of (x, y, confidence) in pixels of the same image size, e.g. ``(frames, 18, 3)``;
    confidence 0 = missing. Only keypoints visible in the reference (driving) pose count. Per instance (frame)
    the threshold is ``alpha * max(width, height)`` of the bounding box of the visible reference keypoints; a
    counted keypoint is correct when the prediction has it (confidence > 0) within that distance. Instances
    with fewer than 2 visible reference keypoints (no box) are left out. The result pools all counted
    keypoints of all instances: correct / counted; NaN when nothing is counted. The registry has
    ``pck@0.05`` and ``pck@0.1``.
    """
    correct, counted = pck_counts(pred_keypoints, ref_keypoints, alpha)
    return correct / counted if counted else math.nan
