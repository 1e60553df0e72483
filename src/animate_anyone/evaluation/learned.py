"""The feature networks of one evaluation run: loading them, feeding them frames, and the Fréchet distances.

Which networks a run needs, how each is loaded and which feature function it uses come from the registry (the
:class:`~.registry.Network` of each ``LEARNED`` and ``DISTRIBUTION`` metric); the networks and their functions
live in :mod:`.features`, imported only when a learned metric is asked for.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from .registry import METRICS, Kind, Metric, Settings, of_kind


def load_feature_networks(
    names,
    weights: dict,
    settings: Settings,
    device: torch.device,
    skipped: dict[str, str],
    weight_names: Mapping[str, str] | None = None,
) -> dict:
    """``{metric name: network}`` for the requested metrics that need one; what cannot be had goes to ``skipped``.

    ``weights``: ``evaluate()``'s weight keywords (``{"i3d_weights": path or None, ...}``). A path given that
    fails to load is an error; without a path the features module's default weights are tried when the network
    has some, else the metric is skipped with the keyword that gives them (under the caller's name for it in
    ``weight_names``: a command's flag).
    """
    wanted = [METRICS[n] for n in names if METRICS[n].network is not None]
    if not wanted:
        return {}
    try:
        from . import features
    except ImportError as exc:
        for metric in wanted:
            skipped[metric.name] = f"animate_anyone.evaluation.features is not available ({exc})"
        return {}
    models = {}
    for metric in wanted:
        keyword = metric.network.weights
        name = (weight_names or {}).get(keyword, keyword)
        model = _load(metric, features, weights.get(keyword), settings, skipped, name)
        if model is not None:
            models[metric.name] = model
    return {n: model.to(device).eval() for n, model in models.items()}


def _load(metric: Metric, features, weights, settings: Settings, skipped: dict[str, str], name: str):
    """The network of ``metric``, or None (with the reason in ``skipped``, naming its weights' keyword ``name``)."""
    network = metric.network
    what = network.describe(settings)
    if weights is not None:
        return network.load(features, weights, settings)  # given explicitly: a bad file is an error
    if not network.has_default:
        skipped[metric.name] = f"needs {what} weights ({name})"
        return None
    try:  # the features module's default weights, if it can find or convert them
        return network.load(features, None, settings)
    except (ImportError, OSError, RuntimeError, ValueError) as exc:
        skipped[metric.name] = f"no {what} weights found; pass {name} ({type(exc).__name__}: {exc})"
        return None


def to_tensor(frames: np.ndarray, device) -> torch.Tensor:
    """``(n, H, W, 3)`` uint8 -> ``(n, 3, H, W)`` float32 in [0, 1] on ``device``."""
    return torch.from_numpy(frames).to(device).permute(0, 3, 1, 2).float().div_(255.0)


def to_numpy(x) -> np.ndarray:
    """A tensor (any device, any float type) or array-like as a float numpy array."""
    return x.detach().float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


class LearnedMetrics:
    """The learned metrics of one run: distances per frame (``LEARNED``), and the feature vectors of both sides
    for the Fréchet distances (``DISTRIBUTION``), per frame or per clip of ``settings.clip_length`` frames.

    Per video: :meth:`start_video`, :meth:`add` for every chunk, :meth:`end_video`. Then :meth:`distances`.
    """

    def __init__(self, models: dict, settings: Settings, device: torch.device) -> None:
        self.models, self.settings, self.device = models, settings, device
        chosen = [METRICS[n] for n in models]
        self.per_frame = [m for m in chosen if m.kind is Kind.LEARNED]
        self.on_frames = [m for m in chosen if m.kind is Kind.DISTRIBUTION and m.samples == "frame"]
        self.on_clips = [m for m in chosen if m.kind is Kind.DISTRIBUTION and m.samples == "clip"]
        self.features: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {
            m.name: ([], []) for m in self.on_frames + self.on_clips
        }
        self.F = None
        if models:
            from . import features

            self.F = features

    def unit(self, metric: Metric) -> str:
        """What one sample of a distribution metric is, in words."""
        if metric.samples == "frame":
            return "frames"
        return f"clips of {self.settings.clip_length} frames" if metric.per_clip(self.settings) else "videos"

    def start_video(self) -> None:
        """Start collecting the clips of a new video."""
        self.buffers: tuple[list, list] = ([], [])  # frames not yet in a clip, pred and gt
        self.clip_features = {m.name: ([], []) for m in self.on_clips}

    def add(self, a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
        """Feed a chunk of frames of both sides; returns ``{name: distances of the chunk}`` of the per-frame
        learned metrics."""
        distances = {}
        if not self.models:
            return distances
        with torch.inference_mode():
            if self.per_frame or self.on_frames:
                ta, tb = to_tensor(a, self.device), to_tensor(b, self.device)
                for metric in self.per_frame:
                    distances[metric.name] = to_numpy(self._apply(metric, ta, tb))
                for metric in self.on_frames:
                    for side, t in ((0, ta), (1, tb)):
                        self.features[metric.name][side].append(to_numpy(self._apply(metric, t)))
            if self.on_clips:
                self.buffers[0].extend(a)
                self.buffers[1].extend(b)
                while len(self.buffers[0]) >= self.settings.clip_length:
                    self._clip(self.settings.clip_length)
        return distances

    def end_video(self) -> None:
        """Score the last partial clip (padded with its last frame; dropped where every clip is a sample) and add
        the video's clip features to the sets: every clip, or their mean as one sample per video."""
        if not self.on_clips:
            return
        if self.buffers[0]:
            self._clip(len(self.buffers[0]), pad=True)
        for metric in self.on_clips:
            for side in (0, 1):
                feats = self.clip_features[metric.name][side]
                if not feats:
                    continue
                if metric.per_clip(self.settings):
                    self.features[metric.name][side].extend(feats)
                else:
                    self.features[metric.name][side].append(np.concatenate(feats).mean(axis=0, keepdims=True))

    def _clip(self, count: int, pad: bool = False) -> None:
        """Take ``count`` buffered frames of each side as one clip (padded to the clip length) and embed it."""
        for side in (0, 1):
            frames = self.buffers[side][:count]
            del self.buffers[side][:count]
            if pad:
                frames = frames + [frames[-1]] * (self.settings.clip_length - len(frames))
            clip = to_tensor(np.stack(frames), self.device).permute(1, 0, 2, 3)[None]  # (1, 3, T, H, W)
            for metric in self.on_clips:
                if pad and metric.per_clip(self.settings):
                    continue
                self.clip_features[metric.name][side].append(to_numpy(self._apply(metric, clip)))

    def _apply(self, metric: Metric, *inputs: torch.Tensor):
        return metric.network.apply(self.F, self.models[metric.name], *inputs, settings=self.settings)

    def distances(self, skipped: dict[str, str]) -> tuple[dict[str, float], dict[str, int]]:
        """``({name: Fréchet distance}, {name: samples per side})`` of the distribution metrics; one with fewer
        than 2 samples on a side goes to ``skipped``."""
        dataset, samples = {}, {}
        for metric in of_kind(Kind.DISTRIBUTION):
            if metric.name not in self.models:
                continue
            pred, gt = self.features[metric.name]
            if min(sum(len(f) for f in pred), sum(len(f) for f in gt)) < 2:
                skipped[metric.name] = f"needs at least 2 {self.unit(metric)} per side, got {sum(len(f) for f in pred)}"
                continue
            a, b = np.concatenate(pred), np.concatenate(gt)
            dataset[metric.name] = float(
                self.F.frechet_distance(*self.F.feature_statistics(a), *self.F.feature_statistics(b))
            )
            samples[metric.name] = len(a)
        return dataset, samples
