"""Pose Guider: a small conv net that maps pose images to features added after the denoising UNet's conv_in."""

from __future__ import annotations

import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import Tensor, nn


class PoseGuider(ModelMixin, ConfigMixin):
    """conv_in -> [conv(c, c), conv(c, c_next, stride)] per stage -> zero-initialised conv_out; SiLU between.

    With the defaults (as the public checkpoints) three stride-2 stages take 512x512 pose images to the
    64x64 latent grid. Parameter names match the public ``pose_guider.pth``.
    """

    @register_to_config
    def __init__(
        self,
        conditioning_embedding_channels: int = 320,
        conditioning_channels: int = 3,
        block_out_channels: tuple[int, ...] = (16, 32, 96, 256),
        block_strides: tuple[int, ...] | None = None,
    ):
        super().__init__()
        strides = tuple(block_strides) if block_strides is not None else (2,) * (len(block_out_channels) - 1)
        if len(strides) != len(block_out_channels) - 1:
            raise ValueError(
                f"block_strides has {len(strides)} entries; it needs one per stage transition "
                f"({len(block_out_channels) - 1} for block_out_channels={tuple(block_out_channels)})"
            )
        self.conv_in = nn.Conv2d(conditioning_channels, block_out_channels[0], kernel_size=3, padding=1)
        self.blocks = nn.ModuleList()
        for c_in, c_out, stride in zip(block_out_channels[:-1], block_out_channels[1:], strides):
            self.blocks.append(nn.Conv2d(c_in, c_in, kernel_size=3, padding=1))
            self.blocks.append(nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, stride=stride))
        self.conv_out = nn.Conv2d(block_out_channels[-1], conditioning_embedding_channels, kernel_size=3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, pose_images: Tensor) -> Tensor:
        """pose_images (batch, 3, frames, H, W) in [0, 1] -> features (batch, C, frames, H/8, W/8)."""
        b, c, f, h, w = pose_images.shape
        x = pose_images.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)  # (b*f, 3, H, W)
        x = F.silu(self.conv_in(x))
        for block in self.blocks:
            x = F.silu(block(x))
        x = self.conv_out(x)  # (b*f, C, h, w)
        return x.view(b, f, *x.shape[1:]).permute(0, 2, 1, 3, 4)  # (b, C, f, h, w)
