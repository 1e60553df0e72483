"""The one list of evaluation metrics: what each one is, which way is better, its exact convention, how it is computed.

``evaluate`` (the metric names, the per-frame functions, the conventions written to the results, which networks
to load) and ``synthetic report`` (the arrow of each column) read :data:`METRICS`. Adding a metric of an existing
kind is one :class:`Metric` entry below.

The kind (:class:`Kind`) says how ``evaluate`` computes a metric:

* ``PIXEL``: ``per_frame(pred, gt) -> (n,)`` on each chunk of ``n`` frames (``(n, H, W, 3)`` uint8);
  ``reduce`` turns the values of a video into its value, and those of all videos into the pooled value.
* ``TEMPORAL``: the same on the consecutive pairs of frames (``n - 1`` values; pairs across chunks included).
* ``LEARNED``: one value per frame from a feature network, reduced like ``PIXEL``.
* ``KEYPOINT``: PCK at ``alpha`` of the poses re-extracted from the prediction against the driving pose.
* ``DISTRIBUTION``: one Fréchet distance between the network features of all predictions and of all ground
  truths, a feature per frame or per clip (``samples``).
* ``WORLD``: ``compute(**inputs) -> float`` per video from inputs only a world with exact truth has (masks,
  window seams, fresh short clips, both bodies). None is registered here: the benchmark lab
  (``animate_anyone_lab.world_metrics.WORLD_METRICS``) declares its own with this type, and ``evaluate`` leaves
  the kind out.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import numpy as np

from . import metrics as M

CLIP_LENGTH = 16  # frames per clip of FVD and FID-VID, by default
FVD_SAMPLING = {
    "video": "one sample per video (mean over its clips, last clip padded)",
    "clip": "one sample per whole clip (partial clips dropped)",
}


class Kind(Enum):
    """How a metric is computed (see the module doc)."""

    PIXEL = "per-frame pixel metric"
    TEMPORAL = "pair-of-frames temporal metric"
    LEARNED = "learned per-frame metric"
    KEYPOINT = "keypoint metric"
    DISTRIBUTION = "distribution over the set"
    WORLD = "synthetic-world metric"


@dataclass(frozen=True)
class Settings:
    """The settings of one evaluation run that conventions, network loaders and feature functions depend on."""

    lpips_net: str = "alex"
    clip_length: int = CLIP_LENGTH
    fvd_samples: str = "video"

    def placeholders(self) -> dict[str, object]:
        """What ``{lpips_net}``, ``{clip_length}`` and ``{fvd_sampling}`` stand for in conventions and names."""
        return {
            "lpips_net": self.lpips_net,
            "clip_length": self.clip_length,
            "fvd_sampling": FVD_SAMPLING[self.fvd_samples],
        }


@dataclass(frozen=True)
class Network:
    """The feature network of a ``LEARNED`` or ``DISTRIBUTION`` metric; its functions live in :mod:`.features`.

    ``loader(weights, **load_options)`` builds the network (``weights`` a path, or None for the features module's
    default weights when ``has_default``). ``features``: ``LEARNED`` ``f(model, pred, gt) -> (n,)`` distances of
    ``(n, 3, H, W)`` batches in [0, 1]; ``DISTRIBUTION`` ``f(model, x, **feature_options) -> (n, D)`` features of
    frames ``(n, 3, H, W)`` or clips ``(n, 3, T, H, W)``. The options map a keyword of the function to a
    :class:`Settings` field. ``weights``: ``evaluate()``'s keyword for the weight file; the CLI flag is the same
    with dashes.
    """

    what: str
    loader: str
    features: str
    weights: str
    has_default: bool = False
    load_options: tuple[tuple[str, str], ...] = ()
    feature_options: tuple[tuple[str, str], ...] = ()

    def describe(self, settings: Settings) -> str:
        """The network in words, for messages: ``LPIPS (alex)``."""
        return self.what.format_map(settings.placeholders())

    def load(self, features, weights, settings: Settings):
        """The network from ``weights`` (None: the default weights), through the loader of ``features``."""
        return getattr(features, self.loader)(weights, **_options(self.load_options, settings))

    def apply(self, features, model, *inputs, settings: Settings):
        """The feature function of ``features`` on ``inputs`` (a tensor, or pred and gt for ``LEARNED``)."""
        return getattr(features, self.features)(model, *inputs, **_options(self.feature_options, settings))


def _options(options: tuple[tuple[str, str], ...], settings: Settings) -> dict[str, object]:
    return {keyword: getattr(settings, field) for keyword, field in options}


def mean(values: np.ndarray) -> float:
    """The mean of the per-frame values; NaN when there are none."""
    return float(values.mean()) if len(values) else math.nan


def psnr_of_mean_mse(values: np.ndarray) -> float:
    """One PSNR of the mean of per-frame MSE values (``psnr_video``); NaN when there are none."""
    return float(M._psnr_from_mse(values.mean())) if len(values) else math.nan


@dataclass(frozen=True)
class Metric:
    """One metric, as it is named in the output files. See the module doc for what each field means per kind.

    ``convention``: the line written to the results' ``conventions``, with :meth:`Settings.placeholders` filled
    in. ``per_frame`` (``PIXEL``, ``TEMPORAL``) takes ``device=`` when ``uses_device``. ``samples``
    (``DISTRIBUTION``): ``"frame"`` or ``"clip"`` (clips of ``clip_length`` frames; one sample per video, the
    mean over its clips, unless ``follows_fvd_samples`` and the run asks for one sample per clip); ``min_clip``:
    the shortest clip the network takes (0: any).
    """

    name: str
    kind: Kind
    higher_is_better: bool
    convention: str
    per_frame: Callable[..., np.ndarray] | None = None
    uses_device: bool = False
    reduce: Callable[[np.ndarray], float] = mean
    alpha: float | None = None
    network: Network | None = None
    samples: str | None = None
    follows_fvd_samples: bool = False
    min_clip: int = 0
    compute: Callable[..., float] | None = None
    inputs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Refuse an entry that lacks what its kind is computed from."""
        needs = {
            Kind.PIXEL: self.per_frame is not None,
            Kind.TEMPORAL: self.per_frame is not None,
            Kind.LEARNED: self.network is not None,
            Kind.KEYPOINT: self.alpha is not None,
            Kind.DISTRIBUTION: self.network is not None and self.samples in ("frame", "clip"),
            Kind.WORLD: self.compute is not None and bool(self.inputs),
        }
        if not needs[self.kind]:
            raise ValueError(f"metric {self.name!r}: incomplete {self.kind.name} entry")

    def describe(self, settings: Settings) -> str:
        """The convention line of this run."""
        return self.convention.format_map(settings.placeholders())

    def score(self, pred, gt, **options) -> float:
        """The video value of two frame arrays (``PIXEL`` / ``TEMPORAL``): ``reduce(per_frame(pred, gt))``."""
        if self.per_frame is None:
            raise TypeError(f"{self.name} is a {self.kind.value}, not computed from two frame arrays")
        return self.reduce(self.per_frame(pred, gt, **options))

    def per_clip(self, settings: Settings) -> bool:
        """Whether every whole clip (not every video) is one sample in this run."""
        return self.follows_fvd_samples and settings.fvd_samples == "clip"


_ENTRIES = (
    Metric(
        "l1",
        Kind.PIXEL,
        higher_is_better=False,
        convention="mean |pred - gt| on [0,1], per frame, mean over frames",
        per_frame=M.l1_frames,
    ),
    Metric(
        "psnr",
        Kind.PIXEL,
        higher_is_better=True,
        convention="per-frame MSE on [0,1] (float64) -> 10log10(1/MSE) -> mean over frames; "
        "inf if a frame is identical",
        per_frame=M.psnr_frames,
    ),
    Metric(
        "psnr_video",
        Kind.PIXEL,
        higher_is_better=True,
        convention="10log10(1/MSE) with one MSE over all frames of the video, [0,1], float64",
        per_frame=M.mse_frames,
        reduce=psnr_of_mean_mse,
    ),
    Metric(
        "psnr_legacy_uint8",
        Kind.PIXEL,
        higher_is_better=True,
        convention="LEGACY DisCo 8-bit PSNR: mean((a-b)**2) on uint8 (wraps mod 256), 20log10(255/sqrt), 100 if 0",
        per_frame=M.psnr_legacy_uint8_frames,
    ),
    Metric(
        "ssim",
        Kind.PIXEL,
        higher_is_better=True,
        convention="SSIM per RGB channel, 7x7 uniform window, sample covariance, K1=.01 K2=.03, data range 1; "
        "mean over channels and frames",
        per_frame=M.ssim_frames,
        uses_device=True,
    ),
    Metric(
        "ssim_gray",
        Kind.PIXEL,
        higher_is_better=True,
        convention="SSIM of BT.601 luma (8-bit rounded), same window settings (DisCo's convention)",
        per_frame=M.ssim_gray_frames,
        uses_device=True,
    ),
    Metric(
        "flicker",
        Kind.TEMPORAL,
        higher_is_better=False,
        convention="mean over consecutive pairs of mean |(pred_t - pred_t-1) - (gt_t - gt_t-1)| on [0,1]",
        per_frame=M.flicker_pairs,
    ),
    Metric(
        "lpips",
        Kind.LEARNED,
        higher_is_better=False,
        convention="LPIPS distance per frame (inputs [0,1]), mean over frames",
        network=Network(
            "LPIPS ({lpips_net})",
            loader="load_lpips",
            features="lpips_distance",
            weights="lpips_weights",
            has_default=True,
            load_options=(("net", "lpips_net"),),
        ),
    ),
    Metric(
        "pck@0.05",
        Kind.KEYPOINT,
        higher_is_better=True,
        convention="PCK of poses re-extracted from pred vs driving pose, threshold 0.05 * max bbox side, "
        "visible driving keypoints only",
        alpha=0.05,
    ),
    Metric(
        "pck@0.1",
        Kind.KEYPOINT,
        higher_is_better=True,
        convention="PCK of poses re-extracted from pred vs driving pose, threshold 0.1 * max bbox side, "
        "visible driving keypoints only",
        alpha=0.1,
    ),
    Metric(
        "fid",
        Kind.DISTRIBUTION,
        higher_is_better=False,
        convention="Frechet distance of Inception features of all pred frames vs all gt frames",
        network=Network(
            "Inception-v3 (pytorch-fid)",
            loader="load_inception",
            features="inception_features",
            weights="inception_weights",
        ),
        samples="frame",
    ),
    Metric(
        "fid_vid",
        Kind.DISTRIBUTION,
        higher_is_better=False,
        convention="Frechet distance of Kinetics 3D-ResNet-50 features (DisCo's FID-VID), 112px, one sample per video "
        "(mean over its {clip_length}-frame clips, last clip padded)",
        network=Network(
            "3D ResNet-50 (Kinetics)",
            loader="load_resnet3d",
            features="resnet3d_features",
            weights="resnet3d_weights",
            feature_options=(("clip_len", "clip_length"),),
        ),
        samples="clip",
    ),
    Metric(
        "fvd",
        Kind.DISTRIBUTION,
        higher_is_better=False,
        convention="Frechet distance of Kinetics I3D logits of {clip_length}-frame clips, 224px, {fvd_sampling}",
        network=Network(
            "I3D (Kinetics-400)",
            loader="load_i3d",
            features="i3d_features",
            weights="i3d_weights",
            has_default=True,
        ),
        samples="clip",
        follows_fvd_samples=True,
        min_clip=9,  # the I3D head's temporal pooling (features.I3D_MIN_FRAMES)
    ),
)

METRICS: dict[str, Metric] = {metric.name: metric for metric in _ENTRIES}
"""Every metric by its name in the output files, in the order of ``evaluate``'s output."""


def of_kind(*kinds: Kind, names=None) -> list[Metric]:
    """The metrics of ``kinds``, in registry order, or in the order of ``names`` (keeping only those) if given."""
    chosen = METRICS.values() if names is None else (METRICS[n] for n in names)
    return [metric for metric in chosen if metric.kind in kinds]
