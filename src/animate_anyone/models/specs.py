"""Network sizes: constructor kwargs for each component, and building them (on the meta device in seconds)."""

from __future__ import annotations

import copy
from typing import Any

import torch

from .animate_anyone import AnimateAnyone
from .denoising_unet import AnimateAnyoneUNet, zero_init_motion_modules
from .pose_guider import PoseGuider
from .reference_net import ReferenceNet

# Stable Diffusion 1.5 ``unet/config.json`` (architecture fields).
SD15_UNET = {
    "act_fn": "silu",
    "attention_head_dim": 8,
    "block_out_channels": [320, 640, 1280, 1280],
    "center_input_sample": False,
    "cross_attention_dim": 768,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "out_channels": 4,
    "sample_size": 64,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
}

# Moore-AnimateAnyone ``configs/inference/inference_v2.yaml`` -> ``unet_additional_kwargs``.
INFERENCE_V2_TEMPORAL = {
    "use_inflated_groupnorm": True,
    "unet_use_cross_frame_attention": False,
    "unet_use_temporal_attention": False,
    "use_motion_module": True,
    "motion_module_resolutions": [1, 2, 4, 8],
    "motion_module_mid_block": True,
    "motion_module_decoder_only": False,
    "motion_module_type": "Vanilla",
    "motion_module_kwargs": {
        "num_attention_heads": 8,
        "num_transformer_block": 1,
        "attention_block_types": ["Temporal_Self", "Temporal_Self"],
        "temporal_position_encoding": True,
        "temporal_position_encoding_max_len": 32,
        "temporal_attention_dim_div": 1,
    },
}

POSE_GUIDER_V2 = {"conditioning_embedding_channels": 320, "block_out_channels": (16, 32, 96, 256)}

# A tiny UNet of the same structure (three blocks, one layer each) for tests and demos.
TINY_UNET = dict(
    SD15_UNET,
    block_out_channels=[32, 32, 64],
    layers_per_block=1,
    cross_attention_dim=32,
    down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    sample_size=16,
)
TINY_POSE_GUIDER = {"conditioning_embedding_channels": 32, "block_out_channels": (16, 32, 64, 128)}

# The miniature model of the synthetic benchmark and the demo (docs/benchmark.md): the tiny networks at 64x64
# pixels with a 4x VAE (synthetic.autoencoder), so the latent grid is 16x16 and the Pose Guider downsamples 4x.
# Two attention heads (of 16 and 32 channels) instead of eight: the same weights' shapes, ~2x faster on a CPU.
MINI_UNET = dict(TINY_UNET, sample_size=16, attention_head_dim=2)
MINI_TEMPORAL = dict(INFERENCE_V2_TEMPORAL, motion_module_kwargs=dict(INFERENCE_V2_TEMPORAL["motion_module_kwargs"], num_attention_heads=2))
MINI_POSE_STRIDES = (2, 2, 1)

SIZES = ("tiny", "mini", "sd15")


def network_configs(size: str) -> dict[str, dict[str, Any]]:
    """Constructor kwargs ``{"reference_net", "denoising_unet", "pose_guider"}`` for a named size."""
    from ..convert.moore import configs_from_moore

    if size == "sd15":
        return configs_from_moore(SD15_UNET, INFERENCE_V2_TEMPORAL, POSE_GUIDER_V2)
    if size == "tiny":
        return configs_from_moore(TINY_UNET, INFERENCE_V2_TEMPORAL, TINY_POSE_GUIDER)
    if size == "mini":
        configs = configs_from_moore(MINI_UNET, MINI_TEMPORAL, TINY_POSE_GUIDER)
        configs["pose_guider"]["block_strides"] = MINI_POSE_STRIDES
        return configs
    raise ValueError(f"unknown model size {size!r}; choose one of {SIZES}")


def build_networks(configs: dict[str, dict[str, Any]], device: str | torch.device | None = None) -> AnimateAnyone:
    """Build the three networks from constructor kwargs, with the stock initialisation (zero pose-guider output,
    identity temporal layers). ``device="meta"`` allocates nothing (for key checks and weight loading)."""
    configs = copy.deepcopy(configs)
    with torch.device(device or "cpu"):
        reference_net = ReferenceNet(**configs["reference_net"])
        denoising_unet = AnimateAnyoneUNet(**configs["denoising_unet"])
        pose_guider = PoseGuider(**configs["pose_guider"])
    if torch.device(device or "cpu").type != "meta":
        zero_init_motion_modules(denoising_unet)
    return AnimateAnyone(reference_net, denoising_unet, pose_guider)
