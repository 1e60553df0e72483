"""Body keypoints with MediaPipe Pose, the offline default extractor (the ``pose`` extra: :data:`INSTALL_HINT`).

MediaPipe Pose (``model_complexity=1``, whose models ship inside the wheel, so nothing is downloaded) finds one
person and gives 33 landmarks in coordinates normalised to the image, with a visibility in [0, 1]. They are
mapped onto the 18-point OpenPose body of :mod:`animate_anyone.pose.keypoints`:

* nose, shoulders, elbows, wrists, hips, knees, ankles, eyes (MediaPipe's eye centres) and ears come from the
  landmark of the same name. MediaPipe's "left" is the person's left, as in OpenPose: no swap.
* neck (which MediaPipe lacks) is the midpoint of the shoulders; its confidence is the smaller of the two.
* confidence = visibility clipped to [0, 1]. A point whose confidence is not above ``min_confidence``, or which
  lies outside the image, is missing (x = y = confidence = 0), as OpenPose reports points it does not see.

MediaPipe Pose has no hand or face keypoints: ``hands`` and ``face`` are all missing (zeros). Use the DWPose
backend (:mod:`animate_anyone.pose.dwpose`) for those.
"""

from __future__ import annotations

import numpy as np

from ..extras import install_hint
from ..quiet import native_logs_silenced
from .keypoints import BODY_POINTS, FACE_POINTS, HAND_POINTS

INSTALL_HINT = install_hint("pose")

# OpenPose body index -> MediaPipe landmark index (None: computed). MediaPipe: 0 nose, 2 left eye, 5 right eye,
# 7 left ear, 8 right ear, 11/12 left/right shoulder, 13/14 elbows, 15/16 wrists, 23/24 hips, 25/26 knees,
# 27/28 ankles.
OPENPOSE_FROM_MEDIAPIPE: tuple[int | None, ...] = (
    0,
    None,
    12,
    14,
    16,
    11,
    13,
    15,
    24,
    26,
    28,
    23,
    25,
    27,
    5,
    2,
    8,
    7,
)
NUM_LANDMARKS = 33
NECK = 1


def import_mediapipe():
    """The ``mediapipe`` module with its legacy Pose solution, or an ImportError that says what to install."""
    try:
        import mediapipe
    except ImportError as exc:
        raise ImportError(
            f"the 'mediapipe' pose backend needs MediaPipe, which is not installed: {INSTALL_HINT}"
        ) from exc
    try:
        mediapipe.solutions.pose.Pose  # noqa: B018 -- removed from newer MediaPipe releases
    except AttributeError:
        raise ImportError(
            f"mediapipe {getattr(mediapipe, '__version__', '?')} has no mediapipe.solutions.pose; the 'mediapipe' "
            f"pose backend is tested with 0.10.21: {INSTALL_HINT}"
        ) from None
    return mediapipe


def landmarks_to_openpose(landmarks: np.ndarray, width: int, height: int, min_confidence: float = 0.3) -> np.ndarray:
    """(33, 3) MediaPipe landmarks (x, y normalised to the image, visibility) -> (18, 3) OpenPose body in pixels."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.shape != (NUM_LANDMARKS, 3):
        raise ValueError(f"expected ({NUM_LANDMARKS}, 3) landmarks (x, y, visibility), got {landmarks.shape}")
    points = np.zeros((BODY_POINTS, 3))
    for target, source in enumerate(OPENPOSE_FROM_MEDIAPIPE):
        if source is not None:
            x, y, visibility = landmarks[source]
            points[target] = (x * width, y * height, visibility)
    points[:, 2] = np.clip(np.nan_to_num(points[:, 2]), 0.0, 1.0)
    right, left = points[2], points[5]
    points[NECK] = ((right[0] + left[0]) / 2, (right[1] + left[1]) / 2, min(right[2], left[2]))
    inside = (points[:, 0] >= 0) & (points[:, 0] < width) & (points[:, 1] >= 0) & (points[:, 1] < height)
    keep = inside & (points[:, 2] > max(min_confidence, 0.0)) & np.isfinite(points[:, :2]).all(axis=1)
    if not (keep[2] and keep[5]):  # the neck needs both shoulders
        keep[NECK] = False
    points[~keep] = 0.0
    return points.astype(np.float32)


class MediaPipeBody:
    """One-person body extractor: ``extractor(rgb) -> (body (P, 18, 3), hands (P, 2, 21, 3), face (P, 68, 3))``.

    P is 1 when a person is found, else 0. ``static_image_mode=False`` tracks the person from frame to frame
    (for videos, in order); True detects afresh in every image. Use as a context manager or call ``close()``.
    """

    name = "mediapipe"

    def __init__(
        self, *, static_image_mode: bool = False, min_detection_confidence: float = 0.5, min_confidence: float = 0.3
    ) -> None:
        self.min_confidence = float(min_confidence)
        with native_logs_silenced():
            self._pose = self._make(import_mediapipe(), static_image_mode, min_detection_confidence)

    @staticmethod
    def _make(mediapipe, static_image_mode: bool, min_detection_confidence: float):
        return mediapipe.solutions.pose.Pose(
            static_image_mode=static_image_mode,
            model_complexity=1,  # the only complexity whose model ships in the wheel (0 and 2 are downloaded)
            smooth_landmarks=True,
            enable_segmentation=False,
            min_detection_confidence=min_detection_confidence,
        )

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rgb = np.ascontiguousarray(rgb)
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"frames must be HxWx3 uint8 RGB, got {rgb.dtype} {rgb.shape}")
        height, width = rgb.shape[:2]
        with native_logs_silenced():
            result = self._pose.process(rgb)
        people = 0 if result.pose_landmarks is None else 1
        body = np.zeros((people, BODY_POINTS, 3), np.float32)
        if people:
            marks = np.array([(m.x, m.y, m.visibility) for m in result.pose_landmarks.landmark], dtype=np.float64)
            body[0] = landmarks_to_openpose(marks, width, height, self.min_confidence)
            if not body[0, :, 2].any():  # found, but nothing usable in the image: no person
                body = body[:0]
        people = len(body)
        return body, np.zeros((people, 2, HAND_POINTS, 3), np.float32), np.zeros((people, FACE_POINTS, 3), np.float32)

    def close(self) -> None:
        if self._pose is not None:
            self._pose.close()
            self._pose = None

    def __enter__(self) -> MediaPipeBody:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
