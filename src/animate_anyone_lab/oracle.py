"""The pose oracle of the synthetic benchmark: a keypoint regressor (``pose.regressor``) trained on the
generator's exact keypoints, and its ceiling (PCK on the true frames of held-out data), as
``synthetic oracle`` prints them. ``evaluate --pose-backend regressor`` then scores predictions with it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from animate_anyone.pose.regressor import FLIP_ORDER, KeypointRegressor, keypoint_loss
from animate_anyone.training.small_loop import CHECKPOINT_EVERY, SmallLoop


def regressor_pck(extractor, frames, points, alpha: float = 0.1) -> float:
    """PCK at ``alpha`` of a ``RegressorExtractor`` on frames (N, 3, s, s) uint8 against exact keypoints
    (N, K, 2) in pixels of ``s``."""
    from animate_anyone.evaluation.metrics import pck

    found = np.concatenate(
        [extractor.batch(frames[i : i + 256].permute(0, 2, 3, 1).numpy())[0][:, 0] for i in range(0, len(frames), 256)]
    )
    truth = np.concatenate([points.numpy().astype(np.float64), np.ones((*points.shape[:2], 1))], -1)
    return pck(found, truth, alpha)


def train_and_report(
    data_dirs: list[str | Path], out: str | Path, heldout_dirs: list[str | Path] = (), **kwargs
) -> tuple[Path, str]:
    """``train_regressor`` (same keywords), then its cost and PCK@0.05 / @0.1 on the true
    frames of ``heldout_dirs`` (the ceiling of the measure) as one line."""
    from animate_anyone.pose.regressor import RegressorExtractor

    start = time.perf_counter()
    out = train_regressor(data_dirs, out, **kwargs)
    line = f"{kwargs.get('steps', 3000)} steps in {time.perf_counter() - start:.0f} s"
    extractor = RegressorExtractor(out)
    for d in heldout_dirs:
        frames, points = load_keypoint_data([d], extractor.model.config.size)
        scores = ", ".join(f"PCK@{a} {regressor_pck(extractor, frames, points, a):.3f}" for a in (0.05, 0.1))
        line += f"; {Path(d).name} true frames: {scores}"
    return out, line


def load_keypoint_data(data_dirs: list[str | Path], size: int) -> tuple[Tensor, Tensor]:
    """Every frame of every clip of the datasets with its first person's body keypoints: frames
    (N, 3, size, size) uint8, keypoints (N, 18, 2) in pixels of ``size``. Clips without a pose file are an error."""
    from animate_anyone.data.manifest import read_manifest
    from animate_anyone.media import iter_frames
    from animate_anyone.pose.keypoints import load_pose

    frames, points = [], []
    for d in data_dirs:
        for clip in read_manifest(d):
            if clip.pose is None:
                raise ValueError(f"{d}: clip {clip.id!r} has no pose file; the regressor trains on exact keypoints")
            pose = load_pose(clip.pose)
            video = list(iter_frames(clip.video, size=(size, size)))
            if len(video) != pose.num_frames:
                raise ValueError(f"{clip.video}: {len(video)} frames but {pose.num_frames} of keypoints")
            xy = pose.body[:, 0, :, :2] * np.array([size / pose.width, size / pose.height], np.float32)
            frames.extend(video)
            points.extend(xy)
    if not frames:
        raise ValueError(f"no frames found in {', '.join(map(str, data_dirs))}")
    return (
        torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous(),
        torch.from_numpy(np.stack(points).astype(np.float32)),
    )


def augment(images: Tensor, points: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Random horizontal flips (left and right keypoints swap) and, on half the samples, a blur by down- and
    up-sampling plus pixel noise, so that soft or noisy renderings of a pose are still read. images (b, 3, s, s)
    in [0, 1]; points (b, K, 2) in pixels."""
    b, _, _, s = images.shape
    flip = torch.rand(b, generator=generator) < 0.5
    flipped_points = points[:, list(FLIP_ORDER)].clone()
    flipped_points[..., 0] = s - flipped_points[..., 0]
    images = torch.where(flip.view(b, 1, 1, 1), images.flip(-1), images)
    points = torch.where(flip.view(b, 1, 1), flipped_points, points)
    degrade = (torch.rand(b, generator=generator) < 0.5).view(b, 1, 1, 1)
    factor = int(torch.randint(2, 5, (), generator=generator))
    soft = F.interpolate(F.avg_pool2d(images, factor, ceil_mode=True), size=(s, s), mode="bilinear")
    noise = torch.randn(images.shape, generator=generator) * 0.05
    images = torch.where(degrade, (soft + noise).clamp(0, 1), images)
    return images, points


def train_regressor(
    data_dirs: list[str | Path],
    out: str | Path,
    *,
    size: int = 64,
    steps: int = 3000,
    batch_size: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = True,
    resume: bool = False,
    checkpoint_every: int = CHECKPOINT_EVERY,
    names: Mapping[str, str] | None = None,
) -> Path:
    """Train a ``KeypointRegressor`` on the frames and exact keypoints of ``data_dirs``; save it at ``out``.
    ``resume``: continue from the checkpoint in ``OUT.checkpoints`` (written every ``checkpoint_every`` steps,
    ``animate_anyone.training.small_loop``). ``names``: the caller's names for ``out``, ``resume`` and ``overwrite``
    in messages (a command's flags)."""
    from animate_anyone.atomic import atomic_directory, refuse_existing

    data = [str(Path(d).resolve()) for d in data_dirs]
    settings = dict(data=data, size=size, batch_size=batch_size, lr=lr, seed=seed)
    names = names or {}
    loop = SmallLoop(out, settings, steps, every=checkpoint_every, resume=resume, overwrite=overwrite, names=names)
    refuse_existing(out, overwrite, names.get("out", "out"), names.get("overwrite"))
    torch.manual_seed(seed)
    frames, points = load_keypoint_data(data_dirs, size)
    generator = torch.Generator().manual_seed(seed)
    model = KeypointRegressor(size=size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=steps, pct_start=0.05)

    def step(_: int) -> Tensor:
        index = torch.randint(len(frames), (batch_size,), generator=generator)
        images, target = augment(frames[index].float() / 255, points[index], generator)
        return keypoint_loss(model(images), target, size)

    updates, modules, generators = [(optimizer, schedule)], {"model": model}, {"batches": generator}
    loop.run(step, updates, modules, generators, desc="keypoint regressor", progress=progress)
    model.eval()
    with atomic_directory(out, overwrite=overwrite) as tmp:
        model.save_pretrained(tmp)
    loop.finish()
    return Path(out)
