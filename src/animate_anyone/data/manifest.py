"""The dataset directory: what a training set is on disk.

Layout of ``DATA_DIR/``::

    manifest.jsonl     one JSON object per usable clip (below)
    quarantine.jsonl   one JSON object per rejected video: {"video", "reason", "detail"}
    poses/<id>.npz     keypoints of each clip (``PoseSequence`` files), written by ``data prepare``

A manifest line::

    {"id": "dance/take_01", "video": "../videos/dance/take_01.mp4", "pose": "poses/dance__take_01.npz",
     "num_frames": 240, "fps": 30.0, "width": 720, "height": 1280}

* ``id``: unique, any non-empty string (``data prepare`` uses the video's path under the video folder,
  without suffix).
* ``video``: a video file, an image folder or anything else :func:`animate_anyone.media.iter_frames` reads.
* ``pose``: either a keypoint file (``.npz`` / ``.json``, drawn by the loader at the training size, exact) or an
  already rendered pose video / image folder. A rendered one is assumed to show the whole video frame, possibly
  at another size or even another aspect ratio (stretched): the loader crops it with the same *normalised*
  box as the video.
* Relative paths are relative to the directory holding the manifest; absolute paths are used as they are.
  ``data prepare`` writes the video paths relative (so the video tree and the dataset directory can move
  together) unless asked for absolute ones, and the pose paths always relative (``poses/...``).
* ``num_frames``, ``fps``, ``width``, ``height``: the video's, as ``media.probe_frames`` reports them
  (``num_frames`` is the number of frames that have keypoints, which is the decoded count).

Both files are written atomically (a temporary sibling renamed into place).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..jsonl import read_jsonl, write_jsonl
from ..pose.keypoints import is_pose_file

MANIFEST_NAME = "manifest.jsonl"
QUARANTINE_NAME = "quarantine.jsonl"
POSES_DIR = "poses"
FIELDS = ("id", "video", "pose", "num_frames", "fps", "width", "height")

PathLike = str | os.PathLike[str]


class ManifestError(ValueError):
    """A manifest line that cannot be used; the message names the file, the line number and the clip id."""


@dataclass(frozen=True)
class Clip:
    """One manifest entry, with ``video`` and ``pose`` resolved to absolute paths."""

    id: str
    video: Path
    pose: Path
    num_frames: int
    fps: float
    width: int
    height: int

    @property
    def pose_is_keypoints(self) -> bool:
        """True for a keypoint file (.npz/.json), False for a rendered pose video or image folder."""
        return is_pose_file(self.pose)

    def to_json(self, base: PathLike, absolute_video: bool = False) -> dict[str, Any]:
        """The manifest object, paths relative to ``base`` (the video's absolute when ``absolute_video``)."""
        return {
            "id": self.id,
            "video": str(self.video) if absolute_video else _relative(self.video, base),
            "pose": _relative(self.pose, base),
            "num_frames": int(self.num_frames),
            "fps": float(self.fps),
            "width": int(self.width),
            "height": int(self.height),
        }


def manifest_path(data_dir_or_manifest: PathLike) -> Path:
    """``DATA_DIR/manifest.jsonl`` for a directory, the path itself for a file."""
    path = Path(data_dir_or_manifest)
    return path / MANIFEST_NAME if path.is_dir() else path


def read_manifest(data_dir_or_manifest: PathLike, *, check_files: bool = True) -> list[Clip]:
    """The clips of a dataset directory (or of a manifest file given directly), validated.

    Blank lines are skipped. A malformed line (bad JSON, a missing or mistyped field, a repeated id) is a
    ``ManifestError`` (a ValueError); with ``check_files`` a video or pose path that does not exist is a
    ``FileNotFoundError``; both name the manifest, the line number and the clip id.
    """
    path = manifest_path(data_dir_or_manifest)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no such manifest; a dataset directory holds {MANIFEST_NAME} "
            "(make one from a folder of videos with `animate-anyone data prepare` or data.prepare_dataset)"
        )
    base = path.parent.resolve()
    clips: list[Clip] = []
    seen: dict[str, int] = {}
    for number, entry in read_jsonl(path, ManifestError):
        where = f"{path} line {number}"
        clip_id = entry.get("id")
        if isinstance(clip_id, str) and clip_id:
            where += f" (id {clip_id!r})"
        clip = _clip(entry, base, where)
        if clip.id in seen:
            raise ManifestError(f"{where}: id {clip.id!r} already used on line {seen[clip.id]}; ids must be unique")
        seen[clip.id] = number
        if check_files:
            for name in ("video", "pose"):
                target = getattr(clip, name)
                if not target.exists():
                    raise FileNotFoundError(f"{where}: {name} not found: {target} (manifest says {entry[name]!r})")
        clips.append(clip)
    return clips


def _clip(entry: dict[str, Any], base: Path, where: str) -> Clip:
    missing = [name for name in FIELDS if name not in entry]
    if missing:
        raise ManifestError(f"{where}: missing {', '.join(missing)}; a manifest line has {', '.join(FIELDS)}")
    for name in ("id", "video", "pose"):
        if not isinstance(entry[name], str) or not entry[name]:
            raise ManifestError(f"{where}: {name} must be a non-empty string, got {entry[name]!r}")
    for name in ("num_frames", "width", "height"):
        value = entry[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ManifestError(f"{where}: {name} must be a positive integer, got {value!r}")
    fps = entry["fps"]
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not fps > 0 or fps == float("inf"):
        raise ManifestError(f"{where}: fps must be a positive number, got {fps!r}")
    return Clip(
        id=entry["id"],
        video=_resolve(entry["video"], base),
        pose=_resolve(entry["pose"], base),
        num_frames=entry["num_frames"],
        fps=float(fps),
        width=entry["width"],
        height=entry["height"],
    )


def write_manifest(data_dir: PathLike, clips: Iterable[Clip], *, absolute_video: bool = False) -> Path:
    """Write ``DATA_DIR/manifest.jsonl`` atomically; paths relative to ``data_dir`` (see the module doc)."""
    data_dir = Path(data_dir)
    base = data_dir.resolve()
    return write_jsonl(data_dir / MANIFEST_NAME, [c.to_json(base, absolute_video) for c in clips])


def read_quarantine(data_dir: PathLike) -> list[dict[str, Any]]:
    """The ``{"video", "reason", "detail"}`` objects of ``DATA_DIR/quarantine.jsonl`` ([] when there is none)."""
    path = Path(data_dir) / QUARANTINE_NAME
    if not path.is_file():
        return []
    return [entry for _, entry in read_jsonl(path)]


def _resolve(value: str, base: Path) -> Path:
    path = Path(value).expanduser()
    return Path(os.path.normpath(path if path.is_absolute() else base / path))  # "a/../b" -> "b", lexically


def _relative(path: Path, base: PathLike) -> str:
    try:
        return Path(os.path.relpath(Path(path).resolve(), Path(base).resolve())).as_posix()
    except ValueError:  # another drive (Windows): no relative path exists
        return str(path)
