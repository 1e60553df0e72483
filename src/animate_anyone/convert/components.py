"""The stock components of a model directory (VAE, CLIP image encoder and processor), read from the files users
download, SD-1.5 UNet weights, and the compatibility checks between components.

Accepted sources:

* VAE: a diffusers ``AutoencoderKL`` folder (``sd-vae-ft-mse``), an SD-1.5 diffusers folder (its ``vae/``), or an
  original-format SD-1.5 checkpoint (``.safetensors`` / ``.ckpt``; the VAE is stored under ``first_stage_model.``).
* image encoder: the ``sd-image-variations-diffusers`` repository root (``image_encoder/`` + ``feature_extractor/``)
  or a ``CLIPVisionModelWithProjection`` folder; the processor comes from the folder itself or a sibling
  ``feature_extractor/``, else it is CLIP's default (as Moore-AnimateAnyone uses).

Everything that can be checked from config files alone is checked before any weights are read.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from ..model_dir import read_json
from ..models import NETWORKS, AnimateAnyone
from ..models.sizes import SIZES, build_image_processor, image_processor_class
from ..weights import WEIGHT_SUFFIXES, load_strict, read_state_dict

LDM_VAE_PREFIX = "first_stage_model."
LATENT_CHANNELS = 4

VAE_EXPECTED = (
    "a diffusers AutoencoderKL folder (config.json + diffusion_pytorch_model.safetensors, e.g. sd-vae-ft-mse), "
    "an SD-1.5 diffusers folder (with vae/), or an original-format SD-1.5 checkpoint (.safetensors / .ckpt)"
)
ENCODER_EXPECTED = (
    "the sd-image-variations-diffusers folder (with image_encoder/ and feature_extractor/) or its image_encoder/ "
    "folder (config.json + model.safetensors or pytorch_model.bin of a CLIPVisionModelWithProjection)"
)
NETWORKS_EXPECTED = "a folder with reference_net/, denoising_unet/ and pose_guider/ (each with config.json and weights)"

Source = tuple[dict[str, Any], str]  # a component's config and where it was read from (for messages)


# -- paths -------------------------------------------------------------------------------------------------------


def _weights_variant(folder: Path, stems: tuple[str, ...]) -> str | None:
    """``None`` when ``folder`` has plain weights, ``"fp16"`` when it has only that variant; else ValueError."""
    names = {p.name for p in folder.iterdir()}
    suffixes = (".safetensors", ".bin", ".safetensors.index.json", ".bin.index.json")
    for variant, infix in ((None, ""), ("fp16", ".fp16")):
        if any(f"{stem}{infix}{suffix}" in names for stem in stems for suffix in suffixes):
            return variant
    raise ValueError(f"{folder} has config.json but no weights ({' or '.join(s + '.safetensors' for s in stems)})")


def _from_pretrained(cls, folder: Path, stems: tuple[str, ...]):
    variant = _weights_variant(folder, stems)
    try:
        return cls.from_pretrained(folder, local_files_only=True, variant=variant)
    except OSError as exc:
        raise ValueError(f"{folder}: could not load a {cls.__name__} ({exc})") from exc


# -- VAE ---------------------------------------------------------------------------------------------------------


def vae_config_file(path: str | Path) -> Path | None:
    """The ``config.json`` of the VAE at ``path`` (a VAE folder or an SD-1.5 diffusers folder), ``None`` for a
    single checkpoint file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"VAE source not found: {path}")
    if path.is_file():
        if path.suffix not in WEIGHT_SUFFIXES:
            raise ValueError(f"{path}: unknown file type {path.suffix!r}; expected {VAE_EXPECTED}")
        return None
    for config in (path / "config.json", path / "vae" / "config.json"):
        if config.is_file():
            class_name = read_json(config).get("_class_name")
            if class_name != "AutoencoderKL":
                raise ValueError(f"{config} describes a {class_name}, not an AutoencoderKL; expected {VAE_EXPECTED}")
            return config
    raise ValueError(f"{path} has neither config.json nor vae/config.json; expected {VAE_EXPECTED}")


def read_vae_config(path: str | Path) -> Source:
    config = vae_config_file(path)
    if config is None:
        return dict(SIZES["sd15"].vae), f"{path} (SD-1.5 VAE)"
    return read_json(config), str(config)


def vae_from_single_file(
    state_dict: Mapping[str, Tensor], config: Mapping[str, Any] | None = None, source: str = "checkpoint"
):
    """An ``AutoencoderKL`` holding exactly the ``first_stage_model.*`` tensors of an original-format checkpoint.

    ``config``: the VAE's constructor kwargs (default: the ``sd15`` preset's). Keys that diffusers' converter leaves
    unused, or
    that do not fill the model exactly, raise ValueError naming ``source`` and the keys.
    """
    from diffusers import AutoencoderKL
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    from .tables import convert_state_dict, target_shapes

    config = dict(SIZES["sd15"].vae if config is None else config)
    ldm = {k[len(LDM_VAE_PREFIX) :]: v for k, v in state_dict.items() if k.startswith(LDM_VAE_PREFIX)}
    if not ldm:
        raise ValueError(
            f"{source}: no '{LDM_VAE_PREFIX}*' keys; expected an original-format Stable Diffusion checkpoint "
            "(its VAE is stored under that prefix)"
        )
    converted = convert_ldm_vae_checkpoint(ldm, config)
    # The converter silently drops names it does not know; its outputs are the inputs or views of them.
    used = {t.data_ptr() for t in converted.values()}
    dropped = sorted(LDM_VAE_PREFIX + k for k, t in ldm.items() if t.data_ptr() not in used)
    if dropped:
        raise ValueError(f"{source}: {len(dropped)} VAE keys not recognised: {', '.join(dropped[:12])}")
    vae = AutoencoderKL.from_config(config)
    state = convert_state_dict([converted], (), target_shapes(vae), f"{source}: VAE")
    load_strict(vae, state, f"{source}: VAE")
    return vae


def load_vae(path: str | Path):
    """``AutoencoderKL`` from a VAE folder, an SD-1.5 diffusers folder or an original-format SD-1.5 checkpoint."""
    from diffusers import AutoencoderKL

    config = vae_config_file(path)
    if config is None:
        return vae_from_single_file(read_state_dict(path, prefix=LDM_VAE_PREFIX), source=str(path))
    return _from_pretrained(AutoencoderKL, config.parent, ("diffusion_pytorch_model",))


# -- image encoder -----------------------------------------------------------------------------------------------


def image_encoder_folders(path: str | Path) -> tuple[Path, Path | None]:
    """(encoder folder, processor folder or None) for a repository root or an ``image_encoder/`` folder."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"image encoder not found: {path}")
    if (path / "image_encoder" / "config.json").is_file():
        encoder = path / "image_encoder"
    elif (path / "config.json").is_file():
        encoder = path
    else:
        raise ValueError(f"{path} has neither config.json nor image_encoder/config.json; expected {ENCODER_EXPECTED}")
    candidates = (encoder, encoder.parent / "feature_extractor")
    return encoder, next((c for c in candidates if (c / "preprocessor_config.json").is_file()), None)


def read_image_encoder_config(path: str | Path) -> Source:
    config = image_encoder_folders(path)[0] / "config.json"
    values = read_json(config)
    if values.get("model_type") not in ("clip_vision_model", "clip"):
        raise ValueError(f"{config} describes a {values.get('model_type')!r} model; expected {ENCODER_EXPECTED}")
    return values, str(config)


def load_image_encoder(path: str | Path) -> tuple[Any, Any]:
    """(``CLIPVisionModelWithProjection``, CLIP image processor) from a repository root or an encoder folder."""
    from transformers import CLIPVisionModelWithProjection

    read_image_encoder_config(path)
    encoder_dir, processor_dir = image_encoder_folders(path)
    encoder = _from_pretrained(CLIPVisionModelWithProjection, encoder_dir, ("model", "pytorch_model"))
    if processor_dir is None:
        return encoder, build_image_processor()
    return encoder, image_processor_class().from_pretrained(processor_dir, local_files_only=True)


# -- networks and compatibility ----------------------------------------------------------------------------------


def unet_config_from_sd15(path: str | Path) -> dict[str, Any] | None:
    """``unet/config.json`` of an SD-1.5 diffusers folder; ``None`` for a single checkpoint file."""
    config = Path(path) / "unet" / "config.json"
    return read_json(config) if config.is_file() else None


def read_networks_unet_config(networks: str | Path) -> Source:
    """The denoising UNet config of a networks folder (after checking that all three networks are there)."""
    networks = Path(networks)
    if not networks.is_dir():
        raise FileNotFoundError(f"networks folder not found: {networks}")
    for name in NETWORKS:
        if not (networks / name / "config.json").is_file():
            raise ValueError(f"{networks} has no {name}/config.json; expected {NETWORKS_EXPECTED}")
    config = networks / "denoising_unet" / "config.json"
    return read_json(config), str(config)


def check_compatible(unet: Source, vae: Source, image_encoder: Source) -> None:
    """ValueError when the VAE latents or the image embeddings do not fit the denoising UNet."""
    (unet_cfg, unet_src), (vae_cfg, vae_src), (enc_cfg, enc_src) = unet, vae, image_encoder
    latent = vae_cfg.get("latent_channels")
    if latent != LATENT_CHANNELS:
        raise ValueError(f"{vae_src}: latent_channels={latent}; the networks need an SD-1.5 VAE with {LATENT_CHANNELS}")
    for key in ("in_channels", "out_channels"):
        if unet_cfg.get(key) != latent:
            raise ValueError(
                f"the VAE's latent_channels={latent} ({vae_src}) does not match the denoising UNet's "
                f"{key}={unet_cfg.get(key)} ({unet_src})"
            )
    projection, cross = enc_cfg.get("projection_dim"), unet_cfg.get("cross_attention_dim")
    if projection != cross:
        raise ValueError(
            f"the image encoder's projection_dim={projection} ({enc_src}) does not match the denoising UNet's "
            f"cross_attention_dim={cross} ({unet_src})"
        )


def unet_sources(networks: AnimateAnyone | str | Path, vae, image_encoder) -> tuple[Source, Source, Source]:
    """The configs (and where they come from) that ``check_compatible`` compares: objects or paths."""
    return _unet_source(networks), _vae_source(vae), _encoder_source(image_encoder)


def sd15_unet_state(path: str | Path) -> dict[str, Tensor]:
    """SD-1.5 UNet weights in diffusers' names, from a diffusers folder (or its ``unet/``) or an original-format
    single file (``.safetensors`` / ``.ckpt``)."""
    path = Path(path)
    if path.is_dir():
        from diffusers import UNet2DConditionModel

        folder = path / "unet" if (path / "unet" / "config.json").is_file() else path
        return UNet2DConditionModel.from_pretrained(folder, local_files_only=True).state_dict()
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint

    return convert_ldm_unet_checkpoint(read_state_dict(path), dict(SIZES["sd15"].reference_net))


def _unet_source(networks: AnimateAnyone | str | Path) -> Source:
    if isinstance(networks, AnimateAnyone):
        return dict(networks.denoising_unet.config), "the given denoising UNet"
    return read_networks_unet_config(networks)


def _vae_source(vae) -> Source:
    return (dict(vae.config), "the given VAE") if isinstance(vae, nn.Module) else read_vae_config(vae)


def _encoder_source(encoder) -> Source:
    if isinstance(encoder, nn.Module):
        return encoder.config.to_dict(), "the given image encoder"
    return read_image_encoder_config(encoder)
