"""A small keypoint regressor: the pose extractor of a world whose exact keypoints are known (the synthetic one).

MediaPipe is trained on photographs of people and finds no body in most 64 px frames of 2D characters, so
PCK through it measures MediaPipe, not the animation. This network is trained on a dataset's own frames and
exact keypoints (``pose/*.npz``, e.g. ``synthetic make``'s train split), so its score on the true frames of
held-out characters is the ceiling of the measure and a prediction is judged by whether it shows the pose.

Architecture: a small U-Net (three stride-2 stages down to 1/8, two up with skips) that ends in one heatmap per
keypoint at 1/2 of the input size; the position is the soft-argmax (the heatmap's expectation), so training is
plain L1 regression of coordinates (integral regression). Input: RGB resized to ``config.size``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import Tensor, nn
from torch.nn import functional as F

from .keypoints import BODY_NAMES, BODY_POINTS

# Horizontal flip: a left keypoint becomes the right one (COCO-18 order).
FLIP_ORDER = tuple(
    BODY_NAMES.index(n.replace("left", "#").replace("right", "left").replace("#", "right")) for n in BODY_NAMES
)


def _block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1),
        nn.GroupNorm(8, cout),
        nn.SiLU(),
        nn.Conv2d(cout, cout, 3, 1, 1),
        nn.GroupNorm(8, cout),
        nn.SiLU(),
    )


class KeypointRegressor(ModelMixin, ConfigMixin):
    @register_to_config
    def __init__(self, size: int = 64, channels: tuple[int, int, int] = (32, 64, 128), keypoints: int = BODY_POINTS):
        super().__init__()
        c1, c2, c3 = channels
        self.down1 = _block(3, c1, 2)  # 1/2
        self.down2 = _block(c1, c2, 2)  # 1/4
        self.down3 = _block(c2, c3, 2)  # 1/8
        self.up2 = _block(c3 + c2, c2)  # 1/4
        self.up1 = _block(c2 + c1, c1)  # 1/2
        self.heatmaps = nn.Conv2d(c1, keypoints, 1)

    def forward(self, images: Tensor) -> Tensor:
        """images (n, 3, size, size) in [0, 1] -> keypoints (n, K, 2) as (x, y) in pixels of that size."""
        # 1. Encoder.
        x = images * 2 - 1
        h1 = self.down1(x)  # (n, c1, s/2, s/2)
        h2 = self.down2(h1)  # (n, c2, s/4, s/4)
        h3 = self.down3(h2)  # (n, c3, s/8, s/8)
        # 2. Decoder with skips back to 1/2.
        u2 = self.up2(torch.cat([F.interpolate(h3, scale_factor=2.0), h2], 1))  # (n, c2, s/4, s/4)
        u1 = self.up1(torch.cat([F.interpolate(u2, scale_factor=2.0), h1], 1))  # (n, c1, s/2, s/2)
        # 3. Soft-argmax of each heatmap: the expected cell centre, in input pixels.
        logits = self.heatmaps(u1)  # (n, K, s/2, s/2)
        n, k, h, w = logits.shape
        prob = logits.flatten(2).softmax(-1).view(n, k, h, w)
        xs = (torch.arange(w, device=x.device, dtype=prob.dtype) + 0.5) * (images.shape[-1] / w)
        ys = (torch.arange(h, device=x.device, dtype=prob.dtype) + 0.5) * (images.shape[-2] / h)
        return torch.stack([(prob.sum(2) * xs).sum(-1), (prob.sum(3) * ys).sum(-1)], -1)  # (n, K, 2)


def keypoint_loss(pred: Tensor, target: Tensor, size: int) -> Tensor:
    """Mean L1 distance of (x, y) in units of the image size; pred and target (n, K, 2) in pixels."""
    return (pred - target).abs().mean() / size


class RegressorExtractor:
    """The pose-backend interface over a trained regressor: ``(rgb (H, W, 3) uint8) -> (body (1, 18, 3),
    hands (1, 2, 21, 3), face (1, 68, 3))``, one person per frame, every keypoint with confidence 1."""

    def __init__(self, model: str | Path | None = None, device: str = "cpu"):
        if model is None:
            from ..assets import packaged_pose_oracle

            model = packaged_pose_oracle()
        path = Path(model)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"keypoint regressor not found at {path} (a folder with config.json; "
                "train one on a synthetic dataset's train split with `animate-anyone synthetic oracle`)"
            )
        self.model = KeypointRegressor.from_pretrained(path).eval().to(device)
        self.device = device

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return tuple(a[0] for a in self.batch(rgb[None]))

    @torch.no_grad()
    def batch(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The same for frames (n, H, W, 3) uint8: body (n, 1, 18, 3), hands (n, 1, 2, 21, 3), face (n, 1, 68, 3)."""
        n, height, width, _ = frames.shape
        size = self.model.config.size
        images = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div(255)
        if (height, width) != (size, size):
            images = F.interpolate(images, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)
        xy = self.model(images.to(self.device)).cpu().numpy().astype(np.float64)  # (n, K, 2) in model pixels
        xy *= np.array([width / size, height / size])
        body = np.concatenate([xy, np.ones((*xy.shape[:2], 1))], -1)[:, None]
        return body, np.zeros((n, 1, 2, 21, 3)), np.zeros((n, 1, 68, 3))

    def close(self) -> None:
        pass
