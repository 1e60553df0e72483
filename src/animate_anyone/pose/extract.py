"""Keypoints from a video, an image folder or an image, in the format of :mod:`animate_anyone.pose.keypoints`.

Backends (the ``pose`` extra: ``pip install -e ".[pose]"`` in the animate-anyone checkout, not from PyPI; see
:func:`animate_anyone.extras.install_hint`):

* ``"mediapipe"`` (default, offline, nothing to download): MediaPipe Pose, body only; hands and face are
  missing. See :mod:`animate_anyone.pose.mediapipe_body`.
* ``"dwpose"``: DWPose on onnxruntime, body + hands + face, from two ONNX files given as ``det_model`` /
  ``pose_model`` or ``$ANIMATE_ANYONE_DWPOSE_DET`` / ``$ANIMATE_ANYONE_DWPOSE_POSE``. See
  :mod:`animate_anyone.pose.dwpose`.

One person per frame (the sequence has one person slot; with DWPose the largest detected box). Keypoints
whose confidence is not above ``min_confidence`` or that fall outside the image are missing.

``extract_poses(source) -> (PoseSequence, ExtractionReport)``. A frame where nobody is found gets all-missing
keypoints. A run of at most ``max_gap`` such frames between two frames with a person is filled by linear
interpolation, per keypoint, of the points present at both ends (confidence = the smaller end's x 0.9; a
point missing at either end stays missing). Longer runs, and runs at the start or end of the source (nothing
to interpolate from), stay missing and are listed in ``report.flagged``. A source in which no frame has a
person is a ``ValueError`` naming it.

``extract_image(image) -> PoseSequence`` (one frame) raises a ``ValueError`` when nobody is found.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from ..media import image_name, iter_frames, load_image, probe_frames
from .keypoints import BODY_POINTS, FACE_POINTS, HAND_POINTS, PoseSequence
from .track import PersonTracker, parse_person

BACKENDS = ("mediapipe", "dwpose", "regressor")
INTERPOLATED_CONFIDENCE = 0.9  # interpolated confidence = min(confidence at both ends) x this


@dataclass
class ExtractionReport:
    """What ``extract_poses`` found, by frame index.

    ``frames_without_person``: frames where the backend found nobody. ``interpolated``: those of them filled
    in by interpolation. ``flagged``: inclusive ``(first, last)`` runs of them left missing (longer than
    ``max_gap``, or at the start or end).
    """

    source: str
    backend: str
    num_frames: int
    max_gap: int
    frames_without_person: list[int] = field(default_factory=list)
    interpolated: list[int] = field(default_factory=list)
    flagged: list[tuple[int, int]] = field(default_factory=list)
    switches: list[int] = field(default_factory=list)  # frames where the followed person changed (pose.track)
    most_people: int = 1  # the most people seen in one frame

    @property
    def missing(self) -> list[int]:
        """Frames that still have no keypoints in the returned sequence."""
        return [i for first, last in self.flagged for i in range(first, last + 1)]

    def summary(self) -> str:
        text = (
            f"{self.source}: {self.num_frames} frames ({self.backend}), person found in "
            f"{self.num_frames - len(self.frames_without_person)}, interpolated {len(self.interpolated)}"
        )
        if self.flagged:
            runs = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in self.flagged)
            text += f", left missing {len(self.missing)} (frames {runs})"
        if self.most_people > 1:
            text += f", up to {self.most_people} people in a frame"
        if self.switches:
            text += f"; WARNING: the followed person changed at frame(s) {', '.join(map(str, self.switches))}"
        return text

    __str__ = summary  # printing a report gives the one-line summary; repr() stays the full dataclass


def open_backend(
    backend: str = "mediapipe",
    *,
    static_image_mode: bool = False,
    det_model=None,
    pose_model=None,
    min_confidence: float = 0.3,
):
    """An extractor ``(rgb) -> (body (P, 18, 3), hands (P, 2, 21, 3), face (P, 68, 3))`` with ``close()``."""
    if backend == "mediapipe":
        if det_model is not None or pose_model is not None:
            raise ValueError("det_model / pose_model are DWPose files; the 'mediapipe' backend takes none")
        from .mediapipe_body import MediaPipeBody

        return MediaPipeBody(static_image_mode=static_image_mode, min_confidence=min_confidence)
    if backend == "dwpose":
        from .dwpose import DWPose

        return DWPose(det_model, pose_model, min_confidence=min_confidence)
    if backend == "regressor":  # the synthetic world's keypoint regressor; pose_model: its folder (None: packaged)
        if det_model is not None:
            raise ValueError("det_model is a DWPose file; the 'regressor' backend takes only pose_model (a folder)")
        from .regressor import RegressorExtractor

        return RegressorExtractor(pose_model)
    raise ValueError(f"unknown pose backend {backend!r}; choose one of {', '.join(BACKENDS)}")


def extract_poses(
    source: str | os.PathLike[str],
    backend: str = "mediapipe",
    *,
    det_model=None,
    pose_model=None,
    max_gap: int = 8,
    min_confidence: float = 0.3,
    person: str | int | None = None,
    progress: bool = True,
    count: int | None = None,
) -> tuple[PoseSequence, ExtractionReport]:
    """Keypoints of every frame of a video, image folder or image (the first ``count`` when given), with gaps filled;
    see the module doc. ``person``: whom to follow (``pose.track.parse_person``: largest, center, N or a box;
    default largest).

    Returns a one-person ``PoseSequence`` (size and fps of the source; folders and images 30 fps) and an
    ``ExtractionReport``. Raises ``ValueError`` when no frame has a person, ``FileNotFoundError`` /
    ``MediaError`` for a missing or unreadable source, ``ImportError`` when the backend is not installed.
    """
    if max_gap < 0:
        raise ValueError(f"max_gap must be >= 0, got {max_gap}")
    path = Path(source)
    info = probe_frames(path)
    frames = info.num_frames if count is None else min(count, info.num_frames)
    return extract_frames(
        iter_frames(path, count=frames),
        (info.width, info.height),
        info.fps,
        backend,
        num_frames=frames,
        name=str(path),
        det_model=det_model,
        pose_model=pose_model,
        max_gap=max_gap,
        min_confidence=min_confidence,
        person=person,
        progress=progress,
    )


def extract_frames(
    frames,
    size: tuple[int, int],
    fps: float,
    backend: str = "mediapipe",
    *,
    num_frames: int | None = None,
    name: str = "<frames>",
    det_model=None,
    pose_model=None,
    max_gap: int = 8,
    min_confidence: float = 0.3,
    person: str | int | None = None,
    progress: bool = True,
    extractor=None,
) -> tuple[PoseSequence, ExtractionReport]:
    """``extract_poses`` for frames in memory: an iterable of (H, W, 3) uint8 RGB arrays, all of ``size`` =
    (width, height); ``name`` labels them in errors and the report (e.g. a ComfyUI image batch). ``extractor``:
    an open extractor to use instead of opening ``backend`` (closed here)."""

    if max_gap < 0:
        raise ValueError(f"max_gap must be >= 0, got {max_gap}")
    everyone = parse_person(person) == "all"  # every detection, one slot each (no identity over time)
    tracker = PersonTracker("largest" if everyone else parse_person(person), size)
    width, height = size
    body, hands, face, found = [], [], [], []
    extractor = extractor or open_backend(
        backend,
        static_image_mode=num_frames == 1,
        det_model=det_model,
        pose_model=pose_model,
        min_confidence=min_confidence,
    )
    try:
        with tqdm(total=num_frames, desc=f"poses ({backend})", unit="frame", disable=not progress) as bar:
            for frame in frames:
                if frame.shape[:2] != (height, width):
                    raise ValueError(
                        f"{name}: frame {len(found)} is {frame.shape[1]}x{frame.shape[0]}, "
                        f"the source is {width}x{height}"
                    )
                people = extractor(frame)
                chosen = tracker.select(people[0])
                b, h, f = people if everyone and len(people[0]) else _person(chosen, *people)
                body.append(b)
                hands.append(h)
                face.append(f)
                found.append(_has_person(b, h, f))
                bar.update(1)
    finally:
        extractor.close()
    if not any(found):
        raise ValueError(
            f"{name}: no person found in any of its {len(found)} frame(s) (pose backend '{backend}'); "
            "the source needs a clearly visible person"
        )
    if everyone:  # pad every frame to the most people seen (missing slots are all zeros)
        most = max(len(b) for b in body)
        body, hands, face = ([_pad(a, most) for a in arrays] for arrays in (body, hands, face))
    pose = PoseSequence(np.stack(body), np.stack(hands), np.stack(face), width, height, fps)
    found = np.array(found)
    if everyone:  # slots are not identities: nothing to interpolate between
        interpolated, flagged = [], [(int(i), int(i)) for i in np.flatnonzero(~found)]
    else:
        pose, interpolated, flagged = fill_gaps(pose, found, max_gap)
    report = ExtractionReport(
        name,
        backend,
        pose.num_frames,
        max_gap,
        np.flatnonzero(~found).tolist(),
        interpolated,
        flagged,
        tracker.switches,
        tracker.most_people,
    )
    return pose, report


def extract_image(
    image: Image.Image | np.ndarray | str | os.PathLike[str],
    backend: str = "mediapipe",
    *,
    det_model=None,
    pose_model=None,
    min_confidence: float = 0.3,
) -> PoseSequence:
    """A one-frame ``PoseSequence`` of an image (PIL image, HxWx3 uint8 RGB array or path): its largest person.

    Raises ``ValueError`` (naming the image) when nobody is found.
    """
    name, rgb = _image_array(image)
    extractor = open_backend(
        backend, static_image_mode=True, det_model=det_model, pose_model=pose_model, min_confidence=min_confidence
    )
    try:
        people = extractor(rgb)
        b, h, f = _person(PersonTracker("largest", (rgb.shape[1], rgb.shape[0])).select(people[0]), *people)
    finally:
        extractor.close()
    if not _has_person(b, h, f):
        raise ValueError(
            f"{name}: no person found in the image (pose backend '{backend}'); it needs a clearly visible person"
        )
    return PoseSequence(b[None], h[None], f[None], rgb.shape[1], rgb.shape[0])


def fill_gaps(
    pose: PoseSequence, found: np.ndarray, max_gap: int
) -> tuple[PoseSequence, list[int], list[tuple[int, int]]]:
    """Interpolate runs of at most ``max_gap`` frames without a person between two frames with one.

    Returns the new sequence, the interpolated frame indices and the ``(first, last)`` runs left missing.
    """
    found = np.asarray(found, bool)
    arrays = [pose.body.copy(), pose.hands.copy(), pose.face.copy()]
    interpolated, flagged = [], []
    n, start = len(found), None
    for i in range(n + 1):
        if i < n and not found[i]:
            start = i if start is None else start
            continue
        if start is None:
            continue
        first, last, start = start, i - 1, None
        before, after = first - 1, last + 1
        if before < 0 or after >= n or last - first + 1 > max_gap:
            flagged.append((first, last))
            continue
        for array in arrays:
            a, b = array[before], array[after]
            both = (a[..., 2] > 0) & (b[..., 2] > 0)
            for t in range(first, last + 1):
                w = (t - before) / (after - before)
                frame = np.zeros_like(a)
                frame[..., :2] = (1 - w) * a[..., :2] + w * b[..., :2]
                frame[..., 2] = np.minimum(a[..., 2], b[..., 2]) * INTERPOLATED_CONFIDENCE
                array[t] = np.where(both[..., None], frame, 0.0)
        interpolated.extend(range(first, last + 1))
    return PoseSequence(*arrays, pose.width, pose.height, pose.fps), interpolated, flagged


def _pad(array: np.ndarray, people: int) -> np.ndarray:
    """(P, ...) -> (people, ...) with missing (zero) slots appended."""
    return np.concatenate([array, np.zeros((people - len(array), *array.shape[1:]), array.dtype)])


def _person(index: int | None, body: np.ndarray, hands: np.ndarray, face: np.ndarray):
    """Person ``index`` as (1, ...) arrays; all missing for None."""
    if index is not None:
        return body[index : index + 1], hands[index : index + 1], face[index : index + 1]
    zeros = np.zeros
    return (
        zeros((1, BODY_POINTS, 3), np.float32),
        zeros((1, 2, HAND_POINTS, 3), np.float32),
        zeros((1, FACE_POINTS, 3), np.float32),
    )


def _has_person(*parts: np.ndarray) -> bool:
    return any(bool(part[..., 2].any()) for part in parts)


def _image_array(image) -> tuple[str, np.ndarray]:
    if isinstance(image, np.ndarray):
        array = image
        if array.ndim == 2:
            array = np.repeat(array[..., None], 3, axis=2)
        if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] not in (3, 4):
            raise ValueError(f"an image array must be HxWx3 uint8 RGB, got {image.dtype} {image.shape}")
        if array.shape[2] == 4:
            array = np.asarray(load_image(Image.fromarray(array, "RGBA")))
        return "<image array>", np.ascontiguousarray(array)
    if isinstance(image, Image.Image):
        return image_name(image), np.asarray(load_image(image))
    return str(image), np.asarray(load_image(image))
