"""Write a randomly initialised model directory at a named size (``tiny`` for tests and demos, ``sd15``)."""

from __future__ import annotations

from pathlib import Path

import torch

from .model_dir import atomic_directory, save_networks, write_model_index
from .models.specs import build_networks, network_configs

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

VAE = {
    "tiny": dict(block_out_channels=(32, 32, 32, 32), layers_per_block=1, sample_size=64),
    "mini": dict(block_out_channels=(16, 32, 64), layers_per_block=1, sample_size=64, norm_num_groups=16),
    "sd15": dict(block_out_channels=(128, 256, 512, 512), layers_per_block=2, sample_size=512),
}
CLIP_VISION = {  # sd15: the ViT-L/14 image tower of sd-image-variations
    "tiny": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, patch_size=32, projection_dim=32),
    "mini": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, patch_size=32, projection_dim=32),
    "sd15": dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16, patch_size=14, projection_dim=768),
}


def build_auxiliary(size: str):
    """VAE, CLIP image encoder + processor, and scheduler of a named size (random weights)."""
    from diffusers import AutoencoderKL, DDIMScheduler
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    try:  # transformers >= 5: the PIL backend by name (the default one wants torchvision)
        from transformers import CLIPImageProcessorPil as CLIPImageProcessor
    except ImportError:
        from transformers import CLIPImageProcessor

    blocks = len(VAE[size]["block_out_channels"])
    vae = AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * blocks,
        up_block_types=("UpDecoderBlock2D",) * blocks,
        latent_channels=4,
        scaling_factor=0.18215,
        **VAE[size],
    )
    encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(image_size=224, **CLIP_VISION[size]))
    processor = CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224})
    return {"vae": vae, "image_encoder": encoder, "feature_extractor": processor, "scheduler": DDIMScheduler(**SCHEDULER_V2)}


def init_model(size: str, out: str | Path, seed: int = 0, dtype: torch.dtype = torch.float32, overwrite: bool = False,
               vae: str | Path | None = None) -> Path:
    """Write a complete, randomly initialised model directory; returns its path. ``vae``: a trained VAE folder
    (diffusers ``AutoencoderKL``) to use instead of a random one; its downsampling factor and latent channels
    must match the networks (the Pose Guider's strides, the UNet's input channels)."""
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    configs = network_configs(size)
    model = build_networks(configs).to(dtype)
    aux = build_auxiliary(size)
    if vae is not None:
        aux["vae"] = AutoencoderKL.from_pretrained(vae)
        _check_vae(aux["vae"], configs, vae)
    with atomic_directory(out, overwrite=overwrite) as tmp:
        save_networks(model, tmp)
        for name, component in aux.items():
            if isinstance(component, torch.nn.Module) and dtype != torch.float32:
                component = component.to(dtype)
            component.save_pretrained(tmp / name)
        write_model_index(tmp, ["reference_net", "denoising_unet", "pose_guider", *aux], {n: type(c) for n, c in aux.items()})
    return Path(out)


def _check_vae(vae, configs: dict, path) -> None:
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    guider = configs["pose_guider"]
    strides = guider.get("block_strides") or (2,) * (len(guider["block_out_channels"]) - 1)
    guider_factor = int(torch.tensor(strides).prod())
    if factor != guider_factor or vae.config.latent_channels != configs["denoising_unet"]["in_channels"]:
        raise ValueError(
            f"--vae {path}: downsamples {factor}x with {vae.config.latent_channels} latent channels, but this model size's "
            f"Pose Guider downsamples {guider_factor}x and its UNet takes {configs['denoising_unet']['in_channels']} channels"
        )
