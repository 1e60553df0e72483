"""The frames of a dataset as one image pool, for the image trainers (the light decoder, the lab's autoencoder)."""

from __future__ import annotations

from pathlib import Path

import torch


def random_frames(pool: torch.Tensor, batch_size: int, generator: torch.Generator) -> torch.Tensor:
    """``batch_size`` random frames of ``pool`` (N, 3, H, W) uint8, each flipped left-right with probability 1/2:
    (b, 3, H, W) in [-1, 1]."""
    images = pool[torch.randint(len(pool), (batch_size,), generator=generator)].float() / 127.5 - 1
    flip = torch.rand(batch_size, generator=generator) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)


def load_frames(data_dirs: list[str | Path], size: int) -> torch.Tensor:
    """Every frame of every clip in the datasets' manifests, resized to size x size: (N, 3, size, size) uint8."""
    import numpy as np

    from ..media import iter_frames
    from .manifest import read_manifest

    frames = [
        frame for d in data_dirs for clip in read_manifest(d) for frame in iter_frames(clip.video, size=(size, size))
    ]
    if not frames:
        raise ValueError(f"no frames found in {', '.join(map(str, data_dirs))}")
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous()
