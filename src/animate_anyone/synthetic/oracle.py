"""The pose oracle of the synthetic benchmark: a keypoint regressor (``pose.regressor``) trained on the
generator's exact keypoints, and its ceiling (PCK on the true frames of held-out data), as
``synthetic oracle`` prints them. ``evaluate --pose-backend regressor`` then scores predictions with it.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np


def regressor_pck(extractor, frames, points, alpha: float = 0.1) -> float:
    """PCK at ``alpha`` of a ``RegressorExtractor`` on frames (N, 3, s, s) uint8 against exact keypoints
    (N, K, 2) in pixels of ``s``."""
    from ..evaluation.metrics import pck

    found = np.concatenate(
        [extractor.batch(frames[i : i + 256].permute(0, 2, 3, 1).numpy())[0][:, 0] for i in range(0, len(frames), 256)]
    )
    truth = np.concatenate([points.numpy().astype(np.float64), np.ones((*points.shape[:2], 1))], -1)
    return pck(found, truth, alpha)


def train_and_report(
    data_dirs: list[str | Path], out: str | Path, heldout_dirs: list[str | Path] = (), **kwargs
) -> tuple[Path, str]:
    """``pose.regressor.train_regressor`` (same keywords), then its cost and PCK@0.05 / @0.1 on the true
    frames of ``heldout_dirs`` (the ceiling of the measure) as one line."""
    from ..pose.regressor import RegressorExtractor, load_keypoint_data, train_regressor

    start = time.perf_counter()
    out = train_regressor(data_dirs, out, **kwargs)
    line = f"{kwargs.get('steps', 3000)} steps in {time.perf_counter() - start:.0f} s"
    extractor = RegressorExtractor(out)
    for d in heldout_dirs:
        frames, points = load_keypoint_data([d], extractor.model.config.size)
        scores = ", ".join(f"PCK@{a} {regressor_pck(extractor, frames, points, a):.3f}" for a in (0.05, 0.1))
        line += f"; {Path(d).name} true frames: {scores}"
    return out, line
