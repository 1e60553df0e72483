"""The keypoint format every pose tool reads and writes.

Per frame and person: 18 OpenPose body keypoints, two hands of 21 (left, right) and 68 face points, each as
(x, y, confidence) with x, y in pixels of an image of ``width`` x ``height`` and confidence in [0, 1].
A keypoint that is missing has confidence 0 and x = y = 0 (never NaN), so arrays stay finite everywhere.
A sequence has a fixed number of person slots; a frame with fewer people has all-zero slots.

Body layout (OpenPose COCO-18): 0 nose, 1 neck, 2 right shoulder, 3 right elbow, 4 right wrist,
5 left shoulder, 6 left elbow, 7 left wrist, 8 right hip, 9 right knee, 10 right ankle, 11 left hip,
12 left knee, 13 left ankle, 14 right eye, 15 left eye, 16 right ear, 17 left ear.

Files: ``.npz`` (arrays ``body``, ``hands``, ``face``, scalars ``width``, ``height``, ``fps``, ``version``) or
``.json`` (the same names; arrays as nested lists).
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_path

FORMAT_VERSION = 1
BODY_POINTS, HAND_POINTS, FACE_POINTS = 18, 21, 68
BODY_NAMES = (
    "nose",
    "neck",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "right_hip",
    "right_knee",
    "right_ankle",
    "left_hip",
    "left_knee",
    "left_ankle",
    "right_eye",
    "left_eye",
    "right_ear",
    "left_ear",
)
SUFFIXES = (".npz", ".json")


class PoseFileError(ValueError):
    """A keypoint file or array that does not follow the format; the message names the file and the problem."""


@dataclass
class PoseSequence:
    body: np.ndarray  # (frames, people, 18, 3) float32
    hands: np.ndarray  # (frames, people, 2, 21, 3) float32, [left, right]
    face: np.ndarray  # (frames, people, 68, 3) float32
    width: int
    height: int
    fps: float = 30.0

    def __post_init__(self) -> None:
        self.body, self.hands, self.face = (np.asarray(a, dtype=np.float32) for a in (self.body, self.hands, self.face))
        self.width, self.height, self.fps = int(self.width), int(self.height), float(self.fps)
        validate(self)

    @property
    def num_frames(self) -> int:
        return self.body.shape[0]

    @property
    def num_people(self) -> int:
        return self.body.shape[1]

    @classmethod
    def empty(cls, frames: int, people: int, width: int, height: int, fps: float = 30.0) -> PoseSequence:
        """All keypoints missing."""
        zeros = np.zeros
        return cls(
            zeros((frames, people, BODY_POINTS, 3)),
            zeros((frames, people, 2, HAND_POINTS, 3)),
            zeros((frames, people, FACE_POINTS, 3)),
            width,
            height,
            fps,
        )

    def select(self, frames) -> PoseSequence:
        """A sequence of the given frame indices (a slice, list or array)."""
        return PoseSequence(self.body[frames], self.hands[frames], self.face[frames], self.width, self.height, self.fps)

    def save(self, path: str | Path) -> Path:
        """Write ``.npz`` or ``.json`` atomically (temporary sibling, then rename)."""
        path = Path(path)
        suffix = _suffix(path)
        with atomic_path(path, suffix=suffix) as tmp:
            if suffix == ".npz":
                write_npz(tmp, self._arrays())
            else:
                tmp.write_text(json.dumps({k: np.asarray(v).tolist() for k, v in self._arrays().items()}))
        return path

    def _arrays(self) -> dict:
        return dict(
            body=self.body,
            hands=self.hands,
            face=self.face,
            width=self.width,
            height=self.height,
            fps=self.fps,
            version=FORMAT_VERSION,
        )


def write_npz(path: Path, arrays: dict) -> None:
    """``np.savez_compressed`` with a fixed timestamp on every member, so the same arrays give the same bytes
    (numpy stamps the current time, which made regenerated datasets differ)."""
    import io
    import zipfile

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, value in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asanyarray(value), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue())


def _reason(exc: Exception) -> str:
    """Why a keypoint file could not be read, in words that never suggest loading pickled data."""
    text = str(exc)
    if "allow_pickle" in text:
        return "it holds Python objects instead of plain arrays; keypoint files hold arrays only"
    if isinstance(exc, EOFError) or not text:
        return "the file is empty or truncated"
    return text


def load_pose(path: str | Path) -> PoseSequence:
    """Read and validate a keypoint file; every problem is a PoseFileError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"keypoint file not found: {path}")
    suffix = _suffix(path)
    try:
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                fields = {k: data[k] for k in data.files}
        else:
            fields = json.loads(path.read_text())
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise PoseFileError(f"{path}: not a readable keypoint file ({_reason(exc)})") from None
    missing = {"body", "hands", "face", "width", "height"} - set(fields)
    if missing:
        raise PoseFileError(
            f"{path}: missing {sorted(missing)}; a keypoint file has body, hands, face, width, height, fps"
        )
    version = int(np.asarray(fields.get("version", FORMAT_VERSION)))
    if version > FORMAT_VERSION:
        raise PoseFileError(
            f"{path}: format version {version} is newer than this package's ({FORMAT_VERSION}); upgrade animate-anyone"
        )
    try:
        return PoseSequence(
            fields["body"],
            fields["hands"],
            fields["face"],
            int(np.asarray(fields["width"])),
            int(np.asarray(fields["height"])),
            float(np.asarray(fields.get("fps", 30.0))),
        )
    except PoseFileError as exc:
        raise PoseFileError(f"{path}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise PoseFileError(f"{path}: malformed keypoint arrays ({exc})") from None


def validate(pose: PoseSequence) -> None:
    """Raise PoseFileError unless shapes agree, values are finite and confidences lie in [0, 1]."""
    if pose.body.ndim != 4 or pose.body.shape[2:] != (BODY_POINTS, 3):
        raise PoseFileError(f"body has shape {pose.body.shape}; expected (frames, people, {BODY_POINTS}, 3)")
    f, p = pose.body.shape[:2]
    expected = {"hands": (f, p, 2, HAND_POINTS, 3), "face": (f, p, FACE_POINTS, 3)}
    for name, shape in expected.items():
        if getattr(pose, name).shape != shape:
            raise PoseFileError(f"{name} has shape {getattr(pose, name).shape}; expected {shape} to match body")
    for name in ("body", "hands", "face"):
        array = getattr(pose, name)
        if not np.isfinite(array).all():
            raise PoseFileError(f"{name} holds NaN or infinite values; missing keypoints are (0, 0, confidence 0)")
        conf = array[..., 2]
        if conf.size and (conf.min() < 0 or conf.max() > 1):
            raise PoseFileError(f"{name} confidences outside [0, 1] (min {conf.min():.3g}, max {conf.max():.3g})")
    if pose.width <= 0 or pose.height <= 0:
        raise PoseFileError(f"image size must be positive, got {pose.width}x{pose.height}")
    if not pose.fps > 0:
        raise PoseFileError(f"fps must be positive, got {pose.fps}")


def is_pose_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in SUFFIXES


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise PoseFileError(f"{path}: keypoint files are {' or '.join(SUFFIXES)}, got {suffix or 'no suffix'!r}")
    return suffix
