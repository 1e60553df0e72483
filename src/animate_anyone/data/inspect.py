"""Looking at a dataset directory: a one-line summary (``data check``) and a picture of samples (``data preview``)."""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..config import SettingError
from .manifest import manifest_path, read_manifest, read_quarantine


def summarize(data_dir: str | Path, frames: int = 1, stride: int = 1) -> str:
    """Clips, frames, pose kinds, clips usable with ``frames`` frames at ``stride``, and quarantined videos."""
    for name, value in (("frames", frames), ("stride", stride)):
        if value < 1:
            raise SettingError(name, value, "must be at least 1")
    clips = read_manifest(data_dir)
    span = (frames - 1) * stride + 1
    usable = sum(c.num_frames >= span for c in clips)
    kinds = Counter("keypoints" if c.pose_is_keypoints else "rendered" for c in clips)
    total = sum(c.num_frames for c in clips)
    quarantine = Counter(q.get("reason", "?") for q in read_quarantine(Path(manifest_path(data_dir)).parent))
    kinds_text = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "none"
    reasons = f" ({', '.join(f'{n} {r}' for r, n in sorted(quarantine.items()))})" if quarantine else ""
    return (
        f"{manifest_path(data_dir)}: {len(clips)} clips, {total} frames ({kinds_text}); usable with {frames} frames "
        f"at stride {stride}: {usable}; quarantined: {sum(quarantine.values())}{reasons}"
    )


def preview(
    data_dir: str | Path,
    out: str | Path,
    count: int = 4,
    size: tuple[int, int] = (256, 384),
    seed: int = 0,
    augment: bool = True,
) -> Path:
    """An image of ``count`` training samples as the loader produces them, one row each:
    frame | pose | overlay | reference. Written atomically; returns its path."""
    from PIL import Image

    from ..pose.draw import overlay
    from .dataset import VideoPoseDataset, epoch_keys

    if count < 1:
        raise SettingError("count", count, "must be at least 1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = VideoPoseDataset(data_dir, frames=1, resolution=size, augment=augment)
    if len(dataset) == 0:
        raise ValueError(f"{data_dir}: no usable clips")
    rows = []
    for i in range(count):
        index, sample_seed = epoch_keys(len(dataset), i // len(dataset), seed)[i % len(dataset)]
        s = dataset.sample(index, sample_seed)
        frame = np.rint((s.pixels[:, 0].permute(1, 2, 0).numpy() + 1) * 127.5).astype(np.uint8)
        pose = np.rint(s.pose[:, 0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        rows.append(np.concatenate([frame, pose, overlay(frame, pose), s.reference_image], axis=1))
    out = Path(out)
    with atomic_path(out, suffix=out.suffix) as tmp:
        Image.fromarray(np.concatenate(rows, axis=0)).save(tmp)
    return out
