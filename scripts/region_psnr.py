"""PSNR of the static and moving regions of a split's predictions (docs/benchmark.md: "static" = pixels where the true
frame is within 12/255 of the reference image on every channel, the background the character covers in neither;
"moving" = the rest), per frame, averaged over the split's frames.

    python scripts/region_psnr.py bench/data/heldout_character NAME=PRED_DIR [NAME=PRED_DIR ...]
"""

import sys
from pathlib import Path

import numpy as np
from PIL import Image

from animate_anyone.data.manifest import read_manifest
from animate_anyone.media import iter_frames


def region_psnr(split: Path, folder: Path, tolerance: int = 12) -> tuple[float, float]:
    static_db, moving_db = [], []
    for clip in read_manifest(split):
        reference = np.asarray(Image.open(split / "references" / f"{clip.id}.png").convert("RGB")).astype(np.float64)
        for truth, pred in zip(iter_frames(clip.video), iter_frames(folder / clip.id)):
            truth, pred = truth.astype(np.float64), pred.astype(np.float64)
            static = (np.abs(truth - reference) <= tolerance).all(-1)  # (H, W)
            for mask, out in ((static, static_db), (~static, moving_db)):
                if mask.any():
                    mse = ((truth - pred)[mask] ** 2).mean() / 255**2
                    out.append(10 * np.log10(1 / max(mse, 1e-10)))
    return float(np.mean(static_db)), float(np.mean(moving_db))


if __name__ == "__main__":
    split = Path(sys.argv[1])
    for entry in sys.argv[2:]:
        name, _, folder = entry.partition("=")
        static, moving = region_psnr(split, Path(folder))
        print(f"{name}: static {static:.2f} dB, moving {moving:.2f} dB")
