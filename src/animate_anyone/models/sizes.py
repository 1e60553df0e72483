"""Every size of every component, in diffusers' / transformers' own argument names: the one home of model sizes.

    size = SIZES["tiny"]                       # or get_size("tiny")
    model = build_networks(size.networks())    # ReferenceNet, denoising UNet, Pose Guider (random weights)
    parts = build_components(size)             # VAE, CLIP image encoder + processor, scheduler

Sizes: ``tiny`` (tests: SD-1.5's structure with three narrow blocks), ``mini`` (the synthetic benchmark's
64 px model of the demo, docs/benchmark.md: the tiny networks with two attention heads, a 4x VAE and a Pose
Guider that downsamples 4x to match) and ``sd15`` (Stable Diffusion 1.5 + Moore-AnimateAnyone's inference_v2
temporal layers: the size of the public checkpoints). ``bench`` is each size's default benchmark workload.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch

from .animate_anyone import NETWORKS, AnimateAnyone
from .denoising_unet import AnimateAnyoneUNet, zero_init_motion_modules
from .pose_guider import PoseGuider
from .reference_net import ReferenceNet

# -- Stable Diffusion 1.5 ------------------------------------------------------------------------------------

# SD-1.5's ``unet/config.json`` as ``UNet2DConditionModel`` arguments (ReferenceNet takes exactly these).
# Legacy naming: ``attention_head_dim`` is the number of heads.
SD15_REFERENCE_NET = dict(
    sample_size=64,
    in_channels=4,
    block_out_channels=(320, 640, 1280, 1280),
    layers_per_block=2,
    downsample_padding=1,
    mid_block_scale_factor=1,
    act_fn="silu",
    norm_num_groups=32,
    norm_eps=1e-5,
    cross_attention_dim=768,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    attention_head_dim=8,
)


def _motion_unet(reference_net: dict, heads: int, motion_heads: int) -> dict:
    """``UNetMotionModel`` arguments of the denoising UNet with the same 2D structure as ``reference_net`` and
    temporal layers as in Moore's inference_v2 (every block and the mid block, 32 positions)."""
    blocks = {
        "CrossAttnDownBlock2D": "CrossAttnDownBlockMotion",
        "DownBlock2D": "DownBlockMotion",
        "CrossAttnUpBlock2D": "CrossAttnUpBlockMotion",
        "UpBlock2D": "UpBlockMotion",
    }
    common = {
        k: v for k, v in reference_net.items() if k not in ("down_block_types", "up_block_types", "attention_head_dim")
    }
    return dict(
        common,
        out_channels=reference_net["in_channels"],  # the latent channels
        down_block_types=tuple(blocks[b] for b in reference_net["down_block_types"]),
        up_block_types=tuple(blocks[b] for b in reference_net["up_block_types"]),
        num_attention_heads=heads,
        motion_num_attention_heads=motion_heads,
        motion_max_seq_length=32,
        temporal_transformer_layers_per_block=1,
        temporal_transformer_layers_per_mid_block=1,
        use_motion_mid_block=True,
    )


SD15_VAE = dict(  # the VAE of SD-1.5 and of sd-vae-ft-mse
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(128, 256, 512, 512),
    layers_per_block=2,
    latent_channels=4,
    sample_size=512,
    scaling_factor=0.18215,
)
# DDIM as in Moore-AnimateAnyone's inference_v2.yaml (v-prediction, zero terminal SNR, trailing spacing).
SCHEDULER_V2 = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="linear",
    clip_sample=False,
    steps_offset=1,
    prediction_type="v_prediction",
    rescale_betas_zero_snr=True,
    timestep_spacing="trailing",
)
CLIP_PROCESSOR = dict(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224})  # as Moore uses it

# -- the small sizes ------------------------------------------------------------------------------------------

TINY_REFERENCE_NET = dict(
    SD15_REFERENCE_NET,
    sample_size=8,  # latents: the tiny model runs at 64 px (``model_dir.default_short_side``: 8 x its 8x VAE)
    block_out_channels=(32, 32, 64),
    layers_per_block=1,
    cross_attention_dim=32,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
)
TINY_CLIP = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    patch_size=32,
    projection_dim=32,
    image_size=224,
)
TINY_VAE = dict(SD15_VAE, block_out_channels=(32, 32, 32, 32), layers_per_block=1, sample_size=64)
# The miniature model's VAE (trained by ``synthetic autoencoder``; docs/benchmark.md has the probes behind each
# choice): 4x downsampling, so a 64 px frame keeps a 16x16 latent grid; 8 latent channels (48 numbers of a 4x4
# patch into 8); 4+ channels per norm group (one channel per group normalises away each part's colour); no
# attention in the mid block (with it, training is ~4 dB worse after 800 steps).
MINI_LATENT_CHANNELS = 8
MINI_VAE = dict(
    TINY_VAE,
    down_block_types=("DownEncoderBlock2D",) * 3,
    up_block_types=("UpDecoderBlock2D",) * 3,
    block_out_channels=(16, 32, 64),
    norm_num_groups=4,
    latent_channels=MINI_LATENT_CHANNELS,
    mid_block_add_attention=False,
)
TINY_POSE_GUIDER = dict(
    conditioning_embedding_channels=32, conditioning_channels=3, block_out_channels=(16, 32, 64, 128)
)
# The miniature UNets: SD-1.5's structure at 64/64/128 channels (tiny's 32/32/64 learned too slowly), on the mini
# VAE's latents; two attention heads (of 32 and 64 channels) instead of eight: ~2x faster on a CPU.
MINI_REFERENCE_NET = dict(
    TINY_REFERENCE_NET,
    sample_size=16,  # 64 px through the 4x VAE
    in_channels=MINI_LATENT_CHANNELS,
    block_out_channels=(64, 64, 128),
    attention_head_dim=2,
)


@dataclass(frozen=True)
class ModelSize:
    """Constructor arguments of every component of one model size."""

    name: str
    reference_net: dict[str, Any]
    denoising_unet: dict[str, Any]
    pose_guider: dict[str, Any]
    vae: dict[str, Any]
    image_encoder: dict[str, Any]  # transformers.CLIPVisionConfig
    feature_extractor: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(CLIP_PROCESSOR))
    scheduler: dict[str, Any] = field(default_factory=lambda: dict(SCHEDULER_V2))  # diffusers.DDIMScheduler
    bench: dict[str, int] = field(default_factory=dict)  # the benchmark's default width, height, frames, steps

    def networks(self) -> dict[str, dict[str, Any]]:
        """``{"reference_net", "denoising_unet", "pose_guider"}`` constructor arguments (deep copies)."""
        return copy.deepcopy({name: getattr(self, name) for name in NETWORKS})


SIZES: dict[str, ModelSize] = {
    "tiny": ModelSize(
        "tiny",
        reference_net=TINY_REFERENCE_NET,
        denoising_unet=_motion_unet(TINY_REFERENCE_NET, heads=8, motion_heads=8),
        pose_guider=TINY_POSE_GUIDER,
        vae=TINY_VAE,
        image_encoder=TINY_CLIP,
        bench=dict(width=128, height=128, frames=16, steps=4),
    ),
    "mini": ModelSize(
        "mini",
        reference_net=MINI_REFERENCE_NET,
        denoising_unet=_motion_unet(MINI_REFERENCE_NET, heads=2, motion_heads=2),
        # 4x, onto the 4x VAE's grid; its output has the UNets' first width
        pose_guider=dict(TINY_POSE_GUIDER, conditioning_embedding_channels=64, block_strides=(2, 2, 1)),
        vae=MINI_VAE,
        image_encoder=TINY_CLIP,
        bench=dict(width=64, height=64, frames=24, steps=20),
    ),
    "sd15": ModelSize(
        "sd15",
        reference_net=SD15_REFERENCE_NET,
        denoising_unet=_motion_unet(SD15_REFERENCE_NET, heads=8, motion_heads=8),
        pose_guider=dict(
            conditioning_embedding_channels=320, conditioning_channels=3, block_out_channels=(16, 32, 96, 256)
        ),
        vae=SD15_VAE,
        # the ViT-L/14 image tower of sd-image-variations
        image_encoder=dict(
            hidden_size=1024,
            intermediate_size=4096,
            num_hidden_layers=24,
            num_attention_heads=16,
            patch_size=14,
            projection_dim=768,
            image_size=224,
        ),
        bench=dict(width=512, height=768, frames=24, steps=20),
    ),
}


def get_size(size: str) -> ModelSize:
    if size not in SIZES:
        raise ValueError(f"unknown model size {size!r}; choose one of {', '.join(SIZES)}")
    return SIZES[size]


def build_networks(configs: dict[str, dict[str, Any]], device: str | torch.device | None = None) -> AnimateAnyone:
    """Build the three networks from constructor arguments (``ModelSize.networks()`` or a model directory's), with
    the stock initialisation (zero Pose Guider output, identity temporal layers). ``device="meta"`` allocates
    nothing (for key checks, FLOP counts and weight loading)."""
    configs = copy.deepcopy(configs)
    with torch.device(device or "cpu"):
        reference_net = ReferenceNet(**configs["reference_net"])
        denoising_unet = AnimateAnyoneUNet(**configs["denoising_unet"])
        pose_guider = PoseGuider(**configs["pose_guider"])
    if torch.device(device or "cpu").type != "meta":
        zero_init_motion_modules(denoising_unet)
    return AnimateAnyone(reference_net, denoising_unet, pose_guider)


def image_processor_class() -> type:
    """The CLIP image processor class: transformers >= 5 names its PIL backend (the default one wants
    torchvision, which this project does not install)."""
    try:
        from transformers import CLIPImageProcessorPil as processor_class
    except ImportError:
        from transformers import CLIPImageProcessor as processor_class
    return processor_class


def build_image_processor(settings: dict[str, Any] | None = None):
    """A CLIP image processor (default: Moore's, shortest edge 224, centre crop 224x224, CLIP mean/std)."""
    return image_processor_class()(**copy.deepcopy(settings if settings is not None else CLIP_PROCESSOR))


def build_components(preset: ModelSize) -> dict[str, Any]:
    """``{"vae", "image_encoder", "feature_extractor", "scheduler"}`` of a preset, with random weights."""
    from diffusers import AutoencoderKL, DDIMScheduler
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    return {
        "vae": AutoencoderKL(**preset.vae),
        "image_encoder": CLIPVisionModelWithProjection(CLIPVisionConfig(**preset.image_encoder)),
        "feature_extractor": build_image_processor(preset.feature_extractor),
        "scheduler": DDIMScheduler(**preset.scheduler),
    }
