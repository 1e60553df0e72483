"""3D ResNet-50 (Hara et al., 2018, "Can Spatiotemporal 3D CNNs Retrace the History of 2D CNNs and ImageNet?"),
Kinetics-400, the backbone of FID-VID.

FID-VID as the DisCo / Animate Anyone tables report it (DisCo's ``tool/metrics``, metric ``FVD-3DRN50``) is the
Fréchet distance between 2048-d features of this network: ``resnet50(shortcut_type="B", sample_size=112,
sample_duration=16)`` with the Kinetics weights ``resnet-50-kinetics.pth`` of kenshohara/3D-ResNets-PyTorch, the
final ``fc`` skipped (``last_fc=False``). Frames are resized to 112x112, kept in 0..255 and the Kinetics mean
``(114.7748, 107.7354, 99.4750)`` subtracted (no division); a video is cut into 16-frame clips (the last one
padded by repeating the last frame) and its feature is the mean over its clips.

Module names follow that repository (``conv1``, ``bn1``, ``layerK.i.conv1``, ``layerK.0.downsample.0``/``.1``,
``fc``), so the checkpoint loads strictly (its ``{"state_dict": ...}`` wrapper and ``module.`` prefix are removed).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..weights import load_strict, read_state_dict
from ._weights import batchnorm_counter, finish

RESNET3D_SIZE = 112
KINETICS_MEAN = (114.7748, 107.7354, 99.4750)  # on the 0..255 scale


class _Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1, downsample: bool = False):
        super().__init__()
        self.conv1 = nn.Conv3d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = nn.Conv3d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm3d(planes)
        self.conv3 = nn.Conv3d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm3d(planes * 4)
        self.downsample = (
            nn.Sequential(nn.Conv3d(cin, planes * 4, 1, stride=stride, bias=False), nn.BatchNorm3d(planes * 4))
            if downsample
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet3D50(nn.Module):
    """``forward(x)``: ``(N, 3, T, 112, 112)`` (0..255 minus the Kinetics mean) -> ``(N, 2048)`` pooled features
    (global average over the last block, which for 16 frames at 112x112 is the original 1x4x4 average pool)."""

    def __init__(self, layers=(3, 4, 6, 3), num_classes: int = 400):
        super().__init__()
        self.conv1 = nn.Conv3d(3, 64, 7, stride=(1, 2, 2), padding=3, bias=False)
        self.bn1 = nn.BatchNorm3d(64)
        cin = 64
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), layers)):
            stride = 1 if i == 0 else 2
            blocks = [_Bottleneck(cin, planes, stride, downsample=True)]
            cin = planes * 4
            blocks += [_Bottleneck(cin, planes) for _ in range(n - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.fc = nn.Linear(2048, num_classes)  # in the checkpoint; not used for FID-VID features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool3d(F.relu(self.bn1(self.conv1(x))), 3, stride=2, padding=1)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.mean(dim=(2, 3, 4))


def load_resnet3d(weights: str | Path) -> ResNet3D50:
    """The Kinetics-400 3D ResNet-50 of FID-VID in eval mode with frozen weights, loaded strictly from
    ``weights`` (``resnet-50-kinetics.pth`` of 3D-ResNets-PyTorch, or its state dict as ``.safetensors``)."""
    model = ResNet3D50()
    what = "3D ResNet-50 (resnet-50-kinetics.pth layout)"
    load_strict(model, read_state_dict(weights), f"{weights} does not hold {what} weights", optional=batchnorm_counter)
    return finish(model)
