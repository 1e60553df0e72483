"""Scoring video pairs: every requested metric of each video, and the aggregate over videos.

Each pair is streamed in chunks (:func:`.pairing.chunks`); what is computed for each metric follows its kind in
the registry: ``PIXEL`` and ``TEMPORAL`` metrics by their per-frame function, ``LEARNED`` and ``DISTRIBUTION``
ones through :class:`.learned.LearnedMetrics`, ``KEYPOINT`` ones (PCK) on poses re-extracted from the
prediction and compared with the driving pose (from a keypoint file, or extracted from the ground truth).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import metrics as M
from .learned import LearnedMetrics
from .pairing import VideoPair, chunks
from .registry import METRICS, Kind, Metric, of_kind

# ----------------------------------------------------------------------------------------------- poses


@dataclass(frozen=True)
class PoseSource:
    """The pose extractor PCK re-extracts keypoints with: a ``pose.extract`` backend and, for ``regressor``,
    its model folder (None: the packaged one)."""

    backend: str = "mediapipe"
    model: str | None = None

    def open(self):
        from ..pose.extract import open_backend

        return open_backend(self.backend, static_image_mode=False, pose_model=self.model)

    def describe(self) -> str:
        return self.backend if self.model is None else f"{self.backend} ({self.model})"


def usable_keypoint_metrics(names, source: PoseSource, skipped: dict[str, str]) -> list[str]:
    """The requested ``KEYPOINT`` metrics, once the pose backend is known to open (else they go to ``skipped``;
    a model folder given explicitly that fails to open is an error)."""
    wanted = [n for n in names if METRICS[n].kind is Kind.KEYPOINT]
    if not wanted:
        return []
    try:
        source.open().close()
    except (ImportError, OSError, ValueError) as exc:  # not installed; DWPose without its model files
        if source.model is not None:  # a model given explicitly that does not load is an error
            raise
        for n in wanted:
            skipped[n] = f"pose backend {source.describe()!r} unavailable: {exc}"
    return [n for n in wanted if n not in skipped]


def pose_files(pose_dir, names) -> dict[str, Path]:
    """``{video name: its driving keypoint file}`` in ``pose_dir`` (``<name>.npz`` or ``<name>.json``); ``{}``
    without a folder. A video without a file is an error."""
    if pose_dir is None:
        return {}
    folder = Path(pose_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"pose folder not found: {folder}")
    files = {}
    for name in names:
        found = [folder / f"{name}{s}" for s in (".npz", ".json") if (folder / f"{name}{s}").is_file()]
        if not found:
            raise FileNotFoundError(f"{folder}: no driving keypoints for video {name!r} ({name}.npz or {name}.json)")
        files[name] = found[0]
    return files


def _reference_keypoints(path: Path, pair: VideoPair) -> np.ndarray:
    """Body keypoints ``(frames, 18, 3)`` of the first person slot of a keypoint file, scaled to the video's size."""
    from ..pose.keypoints import load_pose

    pose = load_pose(path)
    if pose.num_frames != pair.num_frames:
        raise ValueError(
            f"video {pair.name!r}: {path} has {pose.num_frames} frames of keypoints, the video {pair.num_frames}"
        )
    body = pose.body[:, 0].astype(np.float64) if pose.num_people else np.zeros((pair.num_frames, 18, 3))
    body[..., 0] *= pair.width / pose.width
    body[..., 1] *= pair.height / pose.height
    return body


class _PoseTracker:
    """First-person body keypoints ``(18, 3)`` of each frame, in order (tracking mode; no gap filling)."""

    def __init__(self, source: PoseSource) -> None:
        self._extract = source.open()

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        body = self._extract(frame)[0]
        return body[0].astype(np.float64) if len(body) else np.zeros((18, 3))

    def close(self) -> None:
        self._extract.close()


class _Keypoints:
    """The keypoints PCK compares for one video: re-extracted from the prediction, and the driving pose (read
    from ``pose_file``, or without one extracted from the ground truth). Close it when done."""

    def __init__(self, pair: VideoPair, pose_file: Path | None, source: PoseSource) -> None:
        self.reference = _reference_keypoints(pose_file, pair) if pose_file else None
        self.pred: list[np.ndarray] = []
        self.gt: list[np.ndarray] = []
        self.trackers: list[_PoseTracker] = []
        try:
            for _ in range(1 if pose_file else 2):
                self.trackers.append(_PoseTracker(source))
        except BaseException:
            self.close()
            raise

    def add(self, a: np.ndarray, b: np.ndarray) -> None:
        """Extract the poses of a chunk of frames (of the ground truth too when there is no keypoint file)."""
        self.pred.extend(self.trackers[0](f) for f in a)
        if len(self.trackers) > 1:
            self.gt.extend(self.trackers[1](f) for f in b)

    def counts(self, alpha: float) -> tuple[int, int]:
        """``(correct, counted)`` keypoints of the whole video at ``alpha``."""
        reference = self.reference if self.reference is not None else np.stack(self.gt)
        return M.pck_counts(np.stack(self.pred), reference, alpha)

    def close(self) -> None:
        for tracker in self.trackers:
            tracker.close()


# ----------------------------------------------------------------------------------------------- videos


def score_videos(
    pairs: list[VideoPair],
    names: list[str],
    learned: LearnedMetrics,
    keypoint_names: list[str],
    poses: dict[str, Path],
    pose_source: PoseSource,
    device,
    progress: bool,
) -> tuple[dict, dict]:
    """``(per_video, pooled)``: the row of every video, and for every metric the per-video pieces (per-frame
    values, or PCK counts) that the pooled aggregate is computed from."""
    from tqdm import tqdm

    per_video: dict[str, dict] = {}
    pooled: dict[str, list] = {}
    with tqdm(total=sum(p.num_frames for p in pairs), desc="evaluate", unit="frame", disable=not progress) as bar:
        for pair in pairs:
            bar.set_postfix_str(pair.name)
            pose_file = poses.get(pair.name)
            row, parts = score_video(pair, names, learned, keypoint_names, pose_file, pose_source, device, bar)
            per_video[pair.name] = row
            for key, value in parts.items():
                pooled.setdefault(key, []).append(value)
    return per_video, pooled


def score_video(
    pair: VideoPair,
    names: list[str],
    learned: LearnedMetrics,
    keypoint_names: list[str],
    pose_file: Path | None,
    pose_source: PoseSource,
    device,
    bar,
) -> tuple[dict, dict]:
    """The row of one video (size and the value of every metric computed per video), and the per-frame pieces
    (or PCK counts) for the pooled aggregate."""
    frame_metrics = of_kind(Kind.PIXEL, names=names) + of_kind(Kind.TEMPORAL, names=names)
    per_frame: dict[str, list[np.ndarray]] = {m.name: [] for m in frame_metrics + learned.per_frame}
    keypoints = None
    learned.start_video()
    try:
        if keypoint_names:
            keypoints = _Keypoints(pair, pose_file, pose_source)
        previous = None  # the last frames of the previous chunk, for the temporal pair across chunks
        for a, b in chunks(pair):
            _frame_values(frame_metrics, a, b, previous, per_frame, device)
            previous = (a[-1:], b[-1:])
            for name, distances in learned.add(a, b).items():
                per_frame[name].append(distances)
            if keypoints is not None:
                keypoints.add(a, b)
            bar.update(len(a))
        learned.end_video()
    finally:
        if keypoints is not None:
            keypoints.close()

    row: dict = {"num_frames": pair.num_frames, "width": pair.width, "height": pair.height}
    parts: dict = {}
    for metric in frame_metrics + learned.per_frame:
        values = np.concatenate(per_frame[metric.name]) if per_frame[metric.name] else np.zeros(0)
        row[metric.name], parts[metric.name] = metric.reduce(values), values
    for metric in of_kind(Kind.KEYPOINT):
        if metric.name in keypoint_names:
            correct, counted = keypoints.counts(metric.alpha)
            row[metric.name], parts[metric.name] = (correct / counted if counted else math.nan), (correct, counted)
    return row, parts


def _frame_values(metrics: list[Metric], a, b, previous, per_frame: dict[str, list], device) -> None:
    """Append the values of a chunk for each ``PIXEL`` metric (per frame) and ``TEMPORAL`` metric (per pair of
    consecutive frames, the first pair joining the last frame of the previous chunk)."""
    joined = (a, b)
    if previous is not None and any(metric.kind is Kind.TEMPORAL for metric in metrics):
        joined = (np.concatenate([previous[0], a]), np.concatenate([previous[1], b]))
    for metric in metrics:
        pred, gt = joined if metric.kind is Kind.TEMPORAL else (a, b)
        options = {"device": device} if metric.uses_device else {}
        per_frame[metric.name].append(metric.per_frame(pred, gt, **options))


def aggregate(metric: Metric, per_video: dict, pieces: list) -> dict:
    """``{"mean", "std", "pooled", "n"}`` of ``metric`` over the videos: mean and population std of the video
    values, and the value pooled over every frame (or keypoint) of every video."""
    values = np.array([row[metric.name] for row in per_video.values()], dtype=np.float64)
    if metric.kind is Kind.KEYPOINT:
        correct, counted = (sum(p[i] for p in pieces) for i in (0, 1))
        pooled = correct / counted if counted else math.nan
    else:
        pooled = metric.reduce(np.concatenate(pieces))
    with np.errstate(invalid="ignore"):
        mean, std = float(values.mean()), float(values.std())
    return {"mean": mean, "std": std, "pooled": float(pooled), "n": len(values)}
