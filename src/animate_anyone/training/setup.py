"""What each stage trains, and where its weights start.

Stage 1 (image level): ReferenceNet, the denoising UNet's spatial layers and the Pose Guider train; the
temporal layers exist (zero-initialised output projections make them exact identities) but are frozen;
VAE and CLIP image encoder are frozen. Stage 2: only the temporal layers train. Distillation
(``training/distill.py``): the whole denoising UNet trains; ReferenceNet and Pose Guider stay frozen.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..model_dir import ModelDirectory
from ..models import AnimateAnyone, zero_init_motion_modules
from ..models.reference_attention import ReferenceBank
from ..weights import load_strict, read_state_dict
from .config import TrainConfig


def load_components(config: TrainConfig):
    """(networks, vae, image_encoder, feature_extractor, noise_scheduler) from ``model.pretrained``,
    with the stage's initial weights and the noise overrides applied."""
    from diffusers import DDIMScheduler

    directory = pretrained_directory(config)
    model = directory.load_networks()
    if config.model.sd15_unet:
        init_from_sd15(model, config.model.sd15_unet)
    if config.model.motion_module:
        load_motion_module(model, config.model.motion_module)
    if config.model.reset_temporal:
        zero_init_motion_modules(model.denoising_unet)
    vae = directory.load_component("vae")
    image_encoder = directory.load_component("image_encoder")
    feature_extractor = directory.load_component("feature_extractor")
    scheduler_config = dict(directory.load_component("scheduler").config)
    if config.noise.prediction_type is not None:
        scheduler_config["prediction_type"] = config.noise.prediction_type
    if config.noise.zero_snr is not None:
        scheduler_config["rescale_betas_zero_snr"] = config.noise.zero_snr
    return model, vae, image_encoder, feature_extractor, DDIMScheduler.from_config(scheduler_config)


def pretrained_directory(config: TrainConfig) -> ModelDirectory:
    """``model.pretrained``, checked: a complete model directory whose ReferenceNet was trained if it is used."""
    directory = model_directory("model.pretrained", config.model.pretrained)
    if config.model.reference_net and not directory.use_reference_net:  # its ReferenceNet never trained
        raise ValueError(
            f"model.reference_net=true but {directory.path} was trained without ReferenceNet (use_reference_net=false "
            "in model_index.json); continue it with model.reference_net=false"
        )
    return directory


def model_directory(key: str, path: str | Path) -> ModelDirectory:
    """The checked model directory a config key names; a missing one is said under the key's name."""
    try:
        return ModelDirectory(path).check()
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{key}={path}: {exc}") from None


def apply_stage(model: AnimateAnyone, stage: int | str, use_reference_net: bool = True) -> list[nn.Parameter]:
    """Freeze what the stage does not train; return the trainable parameters. ``use_reference_net=False``
    (the ablation): ReferenceNet is frozen too, since nothing reads it."""
    model.requires_grad_(False)
    unet = model.denoising_unet
    if stage == 1:
        zero_init_check(model)
        model.reference_net.requires_grad_(True)
        model.pose_guider.requires_grad_(True)
        for name, p in unet.named_parameters():
            p.requires_grad_(".motion_modules." not in f".{name}")
        for p in unused_reference_parameters(model):
            p.requires_grad_(False)
        if not use_reference_net:
            model.reference_net.requires_grad_(False)
    elif stage == 2:
        for name, p in unet.named_parameters():
            p.requires_grad_(".motion_modules." in f".{name}")
    elif stage == "distill":
        unet.requires_grad_(True)
    else:
        raise ValueError(f"stage must be 1, 2 or distill, got {stage}")
    return [p for p in model.parameters() if p.requires_grad]


def zero_init_check(model: AnimateAnyone) -> None:
    """Stage 1 relies on the temporal layers being identities; say so if they are not."""
    for name, module in model.denoising_unet.named_modules():
        if name.endswith("proj_out") and ".motion_modules." in name and module.weight.abs().max() > 0:
            raise ValueError(
                "stage 1 trains image-level layers, but this model's temporal layers are not zero (identity); "
                "start stage 1 from a model without trained temporal layers, or set model.reset_temporal=true to zero "
                "them first (stage 2 then trains them again)"
            )


def unused_reference_parameters(model: AnimateAnyone) -> list[nn.Parameter]:
    """ReferenceNet parameters that cannot influence the bank (layers after the last recorded attention
    input), found by one small backward pass; they are frozen so no optimizer or DDP sees them."""
    net = model.reference_net
    config = net.config
    size = 2 ** (len(config.block_out_channels) - 1) * 2
    latents = torch.zeros(1, config.in_channels, size, size, device=net.device, dtype=net.dtype)
    embeds = torch.zeros(1, 1, config.cross_attention_dim, device=net.device, dtype=net.dtype)
    was = {p: p.requires_grad for p in net.parameters()}
    net.requires_grad_(True)
    net.zero_grad(set_to_none=True)
    with torch.enable_grad():
        bank: ReferenceBank = net(latents + 0.1, embeds + 0.1)
        sum(t.float().pow(2).sum() for t in bank.tokens.values()).backward()
    unused = [p for p in net.parameters() if p.grad is None]
    net.zero_grad(set_to_none=True)
    for p, flag in was.items():
        p.requires_grad_(flag)
    return unused


def init_from_sd15(model: AnimateAnyone, path: str | Path) -> None:
    """Both UNets' spatial layers from SD-1.5 UNet weights; temporal layers zeroed (identity)."""
    from ..convert.components import sd15_unet_state

    state = sd15_unet_state(Path(path))
    reference = {k: v for k, v in state.items() if not k.startswith(("conv_norm_out.", "conv_out."))}
    load_strict(model.reference_net, reference, f"{path} -> ReferenceNet")
    motion = {k for k in model.denoising_unet.state_dict() if ".motion_modules." in f".{k}"}
    load_strict(model.denoising_unet, state, f"{path} -> denoising UNet", keep=motion)
    zero_init_motion_modules(model.denoising_unet)


def load_motion_module(model: AnimateAnyone, path: str | Path) -> None:
    """Temporal layers from an AnimateDiff / Moore motion module (strict, table-driven)."""
    from ..convert.moore import convert_motion_module
    from ..convert.tables import target_shapes

    unet = model.denoising_unet
    target = target_shapes(unet)
    converted = convert_motion_module(read_state_dict(path), target)  # every motion key filled, shapes checked
    load_strict(unet, converted, f"{path} -> temporal layers", keep=[k for k in target if k not in converted])
