"""``prepare_dataset``: a folder of raw videos -> a dataset directory (see :mod:`.manifest`).

For every video under ``video_dir`` (recursive, sorted by path; suffixes ``DATASET_VIDEO_SUFFIXES``, hidden files
and folders skipped, as is anything inside the output directory):

1. probe it (``media.probe_frames``); a ``MediaError`` -> quarantined ``unreadable``;
2. fewer than ``min_frames`` frames -> ``too_short``; shorter side below ``min_size`` -> ``low_resolution``;
   frame rate outside ``fps_range`` (inclusive) -> ``bad_fps``;
3. extract keypoints (``pose.extract.extract_poses``) into ``DATA_DIR/poses/<key>.npz``; nobody in any frame
   -> ``no_person``; a decoding failure part way -> ``unreadable``; decoding yielding fewer than
   ``min_frames`` frames -> ``too_short``; frames that change size -> ``unreadable``; the followed person
   changes part way (``pose.track``) -> ``person_switch``; several people in a frame -> ``several_people``
   (each kept when allowed; who was seen is saved beside the keypoints, ``poses/<key>.people.jsonl``).

Quarantine lines are ``{"video", "reason", "detail"}`` (``reason`` one of ``REASONS``). Videos are not copied:
the manifest points at them, by a path relative to ``DATA_DIR`` (default) or absolute (``absolute_paths``).

Clip ids are the video's path under ``video_dir`` without suffix (``dance/take_01``); pose files are named by
the id with ``/`` -> ``__`` and other unsafe characters -> ``_`` (``poses/dance__take_01.npz``). Two videos
that would get one name (``a.mp4`` and ``a.mov``) keep their suffix in the id (``a.mp4``, ``a.mov``).

Resuming: a pose file that already exists, loads, matches the probed video (size, fps, at most its frame
count) and is not older than the video file is reused instead of extracted again; likewise a
``poses/<key>.noperson`` marker (written when extraction found nobody) quarantines the video again without
re-running the detector. ``overwrite=True`` re-extracts everything. The manifest and quarantine are rewritten
from scratch on every run (pose files of videos that have since disappeared are left alone).
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..config import SettingError
from ..jsonl import write_jsonl
from ..media import VIDEO_SUFFIXES, MediaError, probe_frames
from ..pose.keypoints import PoseSequence, load_pose
from .manifest import MANIFEST_NAME, POSES_DIR, QUARANTINE_NAME, Clip, write_manifest

# Training footage: every video media reads but GIFs (256 dithered colours a frame, frame times in 1/100 s, and in
# a folder of clips more often a preview than a take).
DATASET_VIDEO_SUFFIXES = tuple(s for s in VIDEO_SUFFIXES if s != ".gif")
REASONS = ("unreadable", "too_short", "low_resolution", "bad_fps", "no_person", "person_switch", "several_people")
NO_PERSON_SUFFIX = ".noperson"
PEOPLE_SUFFIX = ".people.jsonl"  # beside poses/<key>.npz: the followed person's switches and the most people seen

PathLike = str | os.PathLike[str]


@dataclass
class PrepareReport:
    """What ``prepare_dataset`` did. ``quarantined``: the ``{"video", "reason", "detail"}`` lines written."""

    data_dir: Path
    clips: list[Clip] = field(default_factory=list)
    quarantined: list[dict] = field(default_factory=list)
    extracted: list[str] = field(default_factory=list)  # clip ids whose keypoints were extracted in this run
    reused: list[str] = field(default_factory=list)  # clip ids whose existing pose file was kept
    reused_no_person: list[str] = field(default_factory=list)  # videos quarantined from a .noperson marker

    @property
    def manifest(self) -> Path:
        return self.data_dir / MANIFEST_NAME

    @property
    def quarantine(self) -> Path:
        return self.data_dir / QUARANTINE_NAME

    @property
    def by_reason(self) -> dict[str, int]:
        counts = Counter(q["reason"] for q in self.quarantined)
        return {reason: counts[reason] for reason in REASONS if counts[reason]}

    def summary(self) -> str:
        reasons = ", ".join(f"{n} {reason}" for reason, n in self.by_reason.items())
        text = (
            f"kept {len(self.clips)}, quarantined {len(self.quarantined)}"
            + (f" ({reasons})" if reasons else "")
            + f"; keypoints extracted for {len(self.extracted)}, reused for {len(self.reused)}"
            + (f" (+{len(self.reused_no_person)} known without a person)" if self.reused_no_person else "")
            + f"; wrote {self.manifest} and {self.quarantine}"
        )
        return text

    __str__ = summary


def find_videos(video_dir: PathLike, exclude: PathLike | None = None) -> list[Path]:
    """Video files under ``video_dir`` (recursive, sorted by relative path, hidden entries and ``exclude`` skipped)."""
    root = Path(video_dir)
    skip = Path(exclude).resolve() if exclude is not None else None
    found = []
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = [d for d in dirs if not d.startswith(".") and (skip is None or (here / d).resolve() != skip)]
        found += [here / f for f in files if not f.startswith(".") and Path(f).suffix.lower() in DATASET_VIDEO_SUFFIXES]
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def clip_ids(videos: list[Path], root: PathLike) -> list[str]:
    """Unique ids: the path under ``root`` without suffix, or with it where two videos would share one."""
    rel = [v.relative_to(root).as_posix() for v in videos]
    stems = [r[: -len(Path(r).suffix)] if Path(r).suffix else r for r in rel]
    stem_counts = Counter(stems)
    ids = [s if stem_counts[s] == 1 else r for s, r in zip(stems, rel)]
    keys = Counter(pose_key(i) for i in ids)
    return [i if keys[pose_key(i)] == 1 else f"{i}#{n}" for n, i in enumerate(ids)]  # pathological names only


def pose_key(clip_id: str) -> str:
    """The file name (without suffix) of a clip's keypoints: ``dance/take_01`` -> ``dance__take_01``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", clip_id.replace("/", "__")).lstrip(".") or "_"


def prepare_dataset(
    video_dir: PathLike,
    out: PathLike,
    *,
    min_frames: int = 16,
    min_size: int = 256,
    fps_range: tuple[float, float] = (10.0, 60.0),
    backend: str = "mediapipe",
    overwrite: bool = False,
    absolute_paths: bool = False,
    det_model=None,
    pose_model=None,
    max_gap: int = 8,
    person: str | int | None = None,
    allow_switches: bool = False,
    allow_several: bool = False,
    progress: bool = True,
) -> PrepareReport:
    """Probe, filter and extract keypoints for every video under ``video_dir``; write ``out/manifest.jsonl``
    and ``out/quarantine.jsonl``. See the module doc. Returns a ``PrepareReport``.

    ``person``: whom to follow (``pose.track``); a clip where the followed person changes is quarantined
    (``person_switch``) unless ``allow_switches``, and one with several people in a frame (``several_people``)
    unless ``allow_several``.

    Raises ``FileNotFoundError`` for a missing ``video_dir``, ``ValueError`` for bad options or a folder
    without videos; a missing pose backend (``ImportError``) stops the run (pose files written so far stay).
    """
    from tqdm.auto import tqdm

    root, out = Path(video_dir), Path(out)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder of videos")
    for name, value in (("min_frames", min_frames), ("min_size", min_size)):
        if value < 1:
            raise SettingError(name, value, "must be at least 1")
    if max_gap < 0:
        raise SettingError("max_gap", max_gap, "must be 0 or more frames")
    if backend not in ("mediapipe", "dwpose"):
        raise ValueError(f"unknown pose backend {backend!r}; choose mediapipe or dwpose")
    low, high = (float(v) for v in fps_range)
    if not 0 <= low <= high:
        raise SettingError("fps_range", f"{low:g},{high:g}", "must be LOW,HIGH with 0 <= LOW <= HIGH")
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out}: exists and is not a folder")
    videos = find_videos(root, exclude=out)
    if not videos:
        raise ValueError(f"{root}: no videos ({', '.join(DATASET_VIDEO_SUFFIXES)}) in it or its subfolders")
    poses = out / POSES_DIR
    poses.mkdir(parents=True, exist_ok=True)
    report = PrepareReport(out)

    def quarantine(video: Path, reason: str, detail: str) -> None:
        report.quarantined.append({"video": _shown(video, out, absolute_paths), "reason": reason, "detail": detail})

    bar = tqdm(
        zip(videos, clip_ids(videos, root)), total=len(videos), desc="preparing", unit="video", disable=not progress
    )
    for video, clip_id in bar:
        bar.set_postfix_str(clip_id[-40:], refresh=False)
        try:
            info = probe_frames(video)
        except MediaError as exc:
            quarantine(video, "unreadable", str(exc))
            continue
        problem = _filter(info, min_frames, min_size, low, high)
        if problem:
            quarantine(video, *problem)
            continue
        pose_file, marker = poses / f"{pose_key(clip_id)}.npz", poses / f"{pose_key(clip_id)}{NO_PERSON_SUFFIX}"
        pose = None if overwrite else _reusable(pose_file, video, info)
        if pose is not None:
            report.reused.append(clip_id)
        elif not overwrite and _marker_matches(marker, info, backend):
            report.reused_no_person.append(clip_id)
            quarantine(
                video,
                "no_person",
                f"no person found in any of its {info.num_frames} frames "
                f"(pose backend '{backend}'; remembered from an earlier run: {marker.name})",
            )
            continue
        else:
            from ..pose.extract import extract_poses

            try:
                pose, extraction = extract_poses(
                    video,
                    backend,
                    det_model=det_model,
                    pose_model=pose_model,
                    max_gap=max_gap,
                    person=person,
                    progress=False,
                )
            except MediaError as exc:
                quarantine(video, "unreadable", str(exc))
                continue
            except ValueError as exc:
                if not str(exc).startswith(f"{video}:"):  # not about this video: a backend or model problem, fatal
                    raise
                if "no person" not in str(exc):  # frames that change size
                    quarantine(video, "unreadable", str(exc))
                    continue
                write_jsonl(
                    marker,
                    [
                        {
                            "num_frames": info.num_frames,
                            "width": info.width,
                            "height": info.height,
                            "fps": info.fps,
                            "backend": backend,
                        }
                    ],
                )
                quarantine(video, "no_person", str(exc))
                continue
            pose.save(pose_file)
            people = {"switches": extraction.switches, "most_people": extraction.most_people}
            write_jsonl(pose_file.with_suffix(PEOPLE_SUFFIX), [people])
            marker.unlink(missing_ok=True)
            report.extracted.append(clip_id)
        people = _people(pose_file)
        if people["switches"] and not allow_switches:
            frames = ", ".join(map(str, people["switches"]))
            quarantine(video, "person_switch", f"the followed person changed at frame(s) {frames}")
            continue
        if people["most_people"] > 1 and not allow_several:
            quarantine(video, "several_people", f"up to {people['most_people']} people in a frame")
            continue
        if pose.num_frames < min_frames:
            quarantine(
                video,
                "too_short",
                f"only {pose.num_frames} frames decode (the file says {info.num_frames}); need at least {min_frames}",
            )
            continue
        report.clips.append(
            Clip(clip_id, video.resolve(), pose_file.resolve(), pose.num_frames, info.fps, info.width, info.height)
        )
    bar.close()
    write_manifest(out, report.clips, absolute_video=absolute_paths)
    write_jsonl(out / QUARANTINE_NAME, report.quarantined)
    return report


def _filter(info, min_frames: int, min_size: int, low: float, high: float) -> tuple[str, str] | None:
    if info.num_frames < min_frames:
        return "too_short", f"{info.num_frames} frames; need at least {min_frames}"
    if min(info.width, info.height) < min_size:
        return "low_resolution", f"{info.width}x{info.height}; the shorter side must be at least {min_size}"
    if not low <= info.fps <= high:
        return "bad_fps", f"{info.fps:g} fps; allowed {low:g} to {high:g}"
    return None


def _people(pose_file: Path) -> dict:
    """Who extraction saw in the clip (switches, most people in a frame), saved beside its keypoints."""
    sidecar = pose_file.with_suffix(PEOPLE_SUFFIX)
    if not sidecar.is_file():  # keypoints from before this record existed: one person assumed
        return {"switches": [], "most_people": 1}
    return json.loads(sidecar.read_text().splitlines()[0])


def _reusable(pose_file: Path, video: Path, info) -> PoseSequence | None:
    """The existing keypoints of this video, or None when missing, unreadable or made from another video.

    Valid: loads, same size and fps as the probe, at most the probed frame count (decoding can yield fewer
    frames than a header says; not fewer than 1) and not older than the video file.
    """
    if not pose_file.is_file():
        return None
    try:
        pose = load_pose(pose_file)
        newer = pose_file.stat().st_mtime_ns >= video.stat().st_mtime_ns
    except (OSError, ValueError):
        return None
    same = (pose.width, pose.height, pose.fps) == (info.width, info.height, float(info.fps))
    return pose if same and newer and 1 <= pose.num_frames <= info.num_frames and pose.num_people >= 1 else None


def _marker_matches(marker: Path, info, backend: str) -> bool:
    try:
        saved = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return saved == {
        "num_frames": info.num_frames,
        "width": info.width,
        "height": info.height,
        "fps": info.fps,
        "backend": backend,
    }


def _shown(video: Path, out: Path, absolute: bool) -> str:
    if absolute:
        return str(video.resolve())
    try:
        return Path(os.path.relpath(video.resolve(), out.resolve())).as_posix()
    except ValueError:
        return str(video.resolve())
