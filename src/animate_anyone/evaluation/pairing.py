"""Which videos are scored against which, and their frames in aligned chunks.

Videos are paired by name (file stem, or folder name for a folder of frames). Every pair must have the same
frame count and size: a mismatch is a ``ValueError`` naming the pair and both values (nothing is cropped or
resized). :func:`chunks` decodes both videos in step, a few frames at a time, so memory stays bounded for any
video length.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..media import IMAGE_SUFFIXES, VIDEO_SUFFIXES, iter_frames, probe_frames

CHUNK = 8  # frames decoded and scored at a time (bounded memory for any video length)


class VideoPair(NamedTuple):
    """A prediction and its ground truth, with the frame count and size they share."""

    name: str
    pred: Path
    gt: Path
    num_frames: int
    width: int
    height: int


def find_videos(folder: str | os.PathLike[str]) -> dict[str, Path]:
    """The videos a path holds, by name: video files (by stem) and sub-folders of frames (by folder name).

    A video file, or a folder that itself holds image files, is one video (named by its stem / name).
    Hidden entries (``.name``, e.g. partial outputs) are ignored. Two entries with one name are an error.
    """
    path = Path(folder)
    if not path.exists():
        raise FileNotFoundError(f"not found: {path}")
    if _is_single_video(path):
        return {path.stem if path.is_file() else path.name: path}
    found: dict[str, Path] = {}
    for entry in sorted(path.iterdir()):
        name = _video_name(entry)
        if name is None:
            continue
        if name in found:
            raise ValueError(f"{path}: two videos are named {name!r}: {found[name].name} and {entry.name}")
        found[name] = entry
    if not found:
        raise ValueError(f"{path}: no videos ({', '.join(VIDEO_SUFFIXES)} files or folders of frames)")
    return found


def _video_name(entry: Path) -> str | None:
    """The name of the video ``entry`` is (a folder of frames or a video file), None for anything else."""
    if entry.name.startswith("."):
        return None
    if entry.is_dir() and _is_frame_folder(entry):
        return entry.name
    if entry.is_file() and entry.suffix.lower() in VIDEO_SUFFIXES:
        return entry.stem
    return None


def _is_single_video(path: Path) -> bool:
    return path.is_file() or _is_frame_folder(path)


def _is_frame_folder(path: Path) -> bool:
    return path.is_dir() and any(
        p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file() for p in path.iterdir()
    )


def pair_videos(pred_dir, gt_dir) -> tuple[list[VideoPair], list[str]]:
    """``([VideoPair(name, pred, gt, frames, width, height), ...], missing_predictions)``, checked for equal
    frame counts and sizes. Two single videos are paired whatever their names; a prediction without a
    ground-truth video is an error, a ground-truth video without a prediction is listed in the second item."""
    preds, gts = find_videos(pred_dir), find_videos(gt_dir)
    if _is_single_video(Path(pred_dir)) and _is_single_video(Path(gt_dir)):  # two videos given: pair them by position
        (name, pred), (_, gt) = next(iter(preds.items())), next(iter(gts.items()))
        preds, gts = {name: pred}, {name: gt}
    orphans = sorted(set(preds) - set(gts))
    if orphans:
        raise ValueError(
            f"{len(orphans)} prediction(s) without a ground-truth video of the same name in {gt_dir}: "
            f"{', '.join(orphans[:10])}{' ...' if len(orphans) > 10 else ''}"
        )
    pairs = [_checked_pair(name, preds[name], gts[name]) for name in sorted(preds)]
    return pairs, sorted(set(gts) - set(preds))


def _checked_pair(name: str, pred: Path, gt: Path) -> VideoPair:
    """The pair, after checking that both videos report the same frame count and size."""
    p, g = probe_frames(pred), probe_frames(gt)
    if p.num_frames != g.num_frames:
        raise ValueError(
            f"video {name!r}: prediction has {p.num_frames} frames, ground truth {g.num_frames} "
            f"({pred} vs {gt}); generate exactly the ground truth's frames"
        )
    if (p.width, p.height) != (g.width, g.height):
        raise ValueError(
            f"video {name!r}: prediction is {p.width}x{p.height}, ground truth {g.width}x{g.height} "
            f"({pred} vs {gt}); resize one side to the other's size first"
        )
    return VideoPair(name, pred, gt, p.num_frames, p.width, p.height)


def chunks(pair: VideoPair) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Aligned ``(n, H, W, 3)`` uint8 chunks of both videos; a length mismatch found while decoding is an error."""
    name, pred, gt = pair.name, pair.pred, pair.gt
    a, b = iter_frames(pred), iter_frames(gt)
    seen = 0
    while True:
        fa, fb = _take(a, CHUNK), _take(b, CHUNK)
        if len(fa) != len(fb):
            more = "prediction" if len(fa) > len(fb) else "ground truth"
            raise ValueError(
                f"video {name!r}: the {more} has more frames than the other when decoded "
                f"(after {seen + min(len(fa), len(fb))}; {pred} vs {gt})"
            )
        if not fa:
            break
        pa, pb = np.stack(fa), np.stack(fb)
        if pa.shape != pb.shape:
            raise ValueError(
                f"video {name!r}: frame {seen} is {pa.shape[2]}x{pa.shape[1]} in the prediction, "
                f"{pb.shape[2]}x{pb.shape[1]} in the ground truth ({pred} vs {gt})"
            )
        seen += len(fa)
        yield pa, pb
    if seen != pair.num_frames:
        raise ValueError(f"video {name!r}: decoded {seen} frames, the file reported {pair.num_frames} ({pred}, {gt})")


def _take(it: Iterator[np.ndarray], n: int) -> list[np.ndarray]:
    """Up to ``n`` more frames of ``it``."""
    out = []
    for frame in it:
        out.append(frame)
        if len(out) == n:
            break
    return out
