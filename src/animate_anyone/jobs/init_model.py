"""``init-model``: a complete, randomly initialised model directory of a named size (tests, demos, benchmarks)."""

from __future__ import annotations

from pathlib import Path

import torch

from ..atomic import refuse_existing
from ..config import SettingError
from ..hub import Card
from ..model_dir import vae_scale_factor, write_model_directory
from ..models.sizes import build_components, build_networks, get_size


def init_model(
    size: str,
    out: str | Path,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    overwrite: bool = False,
    vae: str | Path | None = None,
) -> Path:
    """Write the model directory of preset ``size`` with random weights; returns its path. ``vae``: a trained VAE
    folder (diffusers ``AutoencoderKL``, e.g. from ``synthetic autoencoder``) to use instead of a random one; its
    downsampling factor and latent channels must match the networks (the Pose Guider's strides, the UNet's input);
    a ``vae`` that is missing or does not fit is a ``SettingError``."""
    from diffusers import AutoencoderKL

    preset = get_size(size)
    refuse_existing(out, overwrite)
    if vae is not None and not Path(vae).is_dir():
        raise SettingError("vae", vae, "not found; expected a diffusers AutoencoderKL folder")
    torch.manual_seed(seed)
    configs = preset.networks()
    model = build_networks(configs).to(dtype)
    components = build_components(preset)
    if vae is not None:
        components["vae"] = AutoencoderKL.from_pretrained(vae, local_files_only=True)
        check_vae(components["vae"], configs, vae)
    for name, component in components.items():
        if isinstance(component, torch.nn.Module) and dtype != torch.float32:
            components[name] = component.to(dtype)
    card = Card(
        f"Randomly initialised `{size}` networks (`animate-anyone init-model`), for tests, demos and as a training "
        "base: until trained, the video is noise."
    )
    return write_model_directory(out, model, components, random_weights=True, overwrite=overwrite, card=card)


def check_vae(vae, configs: dict, path) -> None:
    """``SettingError`` (``vae``) unless the VAE downsamples as much as the Pose Guider and has the UNet's latent
    channels."""
    factor = vae_scale_factor(vae.config)
    guider = configs["pose_guider"]
    strides = guider.get("block_strides") or (2,) * (len(guider["block_out_channels"]) - 1)
    guider_factor = int(torch.tensor(strides).prod())
    channels = configs["denoising_unet"]["in_channels"]
    if factor != guider_factor or vae.config.latent_channels != channels:
        raise SettingError(
            "vae",
            path,
            f"downsamples {factor}x with {vae.config.latent_channels} latent channels, but this model size's Pose "
            f"Guider downsamples {guider_factor}x and its UNet takes {channels} channels",
        )
