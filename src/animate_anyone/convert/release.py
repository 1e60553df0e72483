"""Whole releases -> model directories: the jobs behind ``convert moore``, ``convert public`` (the public release
fetched from the Hugging Face Hub, then ``convert moore``) and ``convert assemble``.

Everything that can be checked from paths and config files (files exist, the output is new, the components fit
together) is checked before any weights are read, and the model directory is written by the one writer
(``model_dir.write_model_directory``), so nothing is left behind when a check or a conversion fails. Each directory's
model card names its sources (``hub.PUBLIC_SOURCES``: repository, revision, license).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..atomic import refuse_existing
from ..hub import PUBLIC_SOURCES, Card, Source, card_sources, fetch, public_sources
from ..model_dir import read_json, write_model_directory
from ..models import AnimateAnyone
from ..models.sizes import build_image_processor, get_size
from ..weights import read_state_dict
from . import components as c
from .moore import (
    INFERENCE_V2_TEMPORAL,
    configs_from_moore,
    networks_from_moore,
    pose_guider_config_from_weights,
    sd15_unet_config,
)

# What each writer's model card says the directory is (hub.Card's summary)
MOORE_SUMMARY = "The Moore-AnimateAnyone release, converted by `animate-anyone convert moore`."
PUBLIC_SUMMARY = (
    "The public release, fetched from the Hugging Face Hub and converted by `animate-anyone convert public`."
)
NETWORKS_ONLY = "The three networks only: `animate-anyone convert assemble` adds the VAE and the image encoder."
ASSEMBLE_SUMMARY = "Networks assembled with a VAE and an image encoder by `animate-anyone convert assemble`."


def require_paths(
    paths: dict[str, str | Path | Sequence[str | Path] | None], names: Mapping[str, str] | None = None
) -> None:
    """FileNotFoundError naming the parameter of the first given path that does not exist (``None``: not given),
    under the caller's name for it in ``names`` (a command's flag) when it has one."""
    for key, value in paths.items():
        for path in value if isinstance(value, (list, tuple)) else [value]:
            if path is not None and not Path(path).exists():
                raise FileNotFoundError(f"{(names or {}).get(key, key)}: {path} does not exist")


def _json_file(path: str | Path | None, what: str, default: Any) -> tuple[Any, str]:
    if path is None:
        return default, f"the default {what}"
    return read_json(Path(path)), str(path)


def moore_unet_config(unet_config: str | Path | None, sd15: str | Path | None) -> tuple[dict[str, Any], str]:
    """The SD-1.5 style UNet config (and where it came from): ``unet_config``, else ``sd15``'s unet/config.json,
    else SD-1.5's own."""
    if unet_config is not None:
        return _json_file(unet_config, "unet_config", None)
    from_sd15 = c.unet_config_from_sd15(sd15) if sd15 else None
    if from_sd15 is not None:
        return from_sd15, str(Path(sd15) / "unet" / "config.json")
    return sd15_unet_config(), "the default SD-1.5 UNet config"


def convert_moore(
    out: str | Path,
    denoising_unet: Sequence[str | Path],
    reference_unet: str | Path,
    pose_guider: str | Path,
    motion_module: str | Path | None = None,
    *,
    unet_config: str | Path | None = None,
    unet_additional_kwargs: str | Path | None = None,
    sd15: str | Path | None = None,
    vae: str | Path | None = None,
    image_encoder: str | Path | None = None,
    overwrite: bool = False,
    names: Mapping[str, str] | None = None,
    card: Card | None = None,
) -> tuple[Path, bool]:
    """Moore-AnimateAnyone release files (+ an AnimateDiff motion module) -> a model directory at ``out``.

    With ``image_encoder`` and a VAE (``vae``, else ``sd15``'s) the directory is complete; otherwise it holds the
    three networks only (the pipeline also needs the VAE and the image encoder: ``assemble`` adds them). Returns
    (``out``, whether it is complete). ``names``: the caller's names for the parameters in messages (a command's
    flags; default the parameters' own). ``card``: what the model card says (default: a conversion of the public
    repositories of the README that these files come from, ``hub.public_sources``).
    """
    require_paths(
        {
            "denoising_unet": list(denoising_unet),
            "reference_unet": reference_unet,
            "pose_guider": pose_guider,
            "motion_module": motion_module,
            "unet_config": unet_config,
            "unet_additional_kwargs": unet_additional_kwargs,
            "sd15": sd15,
            "vae": vae,
            "image_encoder": image_encoder,
        },
        names,
    )
    names = names or {}
    refuse_existing(out, overwrite, names.get("out", "out"), names.get("overwrite"))
    # 1. Configs first: everything that can fail without reading weights.
    unet = moore_unet_config(unet_config, sd15)
    vae_given, vae = vae is not None, vae or sd15
    complete = image_encoder is not None and vae is not None
    if card is None:  # the README's public repositories of the parts given (the VAE: --vae's, else SD-1.5's)
        aux = ("vae" if vae_given else "sd15", "image_encoder") if complete else ()
        card = Card(MOORE_SUMMARY, public_sources("networks", *aux))
    if complete:
        c.check_compatible(unet, c.read_vae_config(vae), c.read_image_encoder_config(image_encoder))
    extra, _ = _json_file(unet_additional_kwargs, "unet_additional_kwargs", INFERENCE_V2_TEMPORAL)
    # 2. The networks, strictly.
    guider = read_state_dict(pose_guider)
    configs = configs_from_moore(unet[0], extra, pose_guider_config_from_weights(guider))
    model = networks_from_moore(
        denoising_unet=[read_state_dict(f) for f in denoising_unet],
        reference_unet=read_state_dict(reference_unet),
        pose_guider=guider,
        motion_module=read_state_dict(motion_module) if motion_module else None,
        configs=configs,
    )
    # 3. The directory.
    if complete:
        return assemble(out, model, vae, image_encoder, overwrite=overwrite, names=names, card=card), True
    card = Card(f"{card.summary} {NETWORKS_ONLY}", card.sources)
    return write_model_directory(out, model, overwrite=overwrite, card=card), False


def convert_public(
    out: str | Path,
    *,
    cache_dir: str | Path | None = None,
    unet_config: str | Path | None = None,
    unet_additional_kwargs: str | Path | None = None,
    overwrite: bool = False,
    names: Mapping[str, str] | None = None,
) -> Path:
    """The public release (``hub.PUBLIC_SOURCES``: the Moore-AnimateAnyone networks, sd-vae-ft-mse and the
    sd-image-variations image encoder, at the revisions of that table, only the files needed) fetched into the Hugging
    Face cache (``cache_dir``, default huggingface_hub's: a rerun downloads nothing again and an interrupted download
    resumes), then converted by ``convert_moore`` into a complete model directory at ``out``, whose model card names
    the commit of each source. ``unet_config`` / ``unet_additional_kwargs``: as ``convert_moore``'s (default SD-1.5's
    UNet and Moore's inference_v2). The output and the given files are checked before anything is downloaded."""
    names = names or {}
    require_paths({"unet_config": unet_config, "unet_additional_kwargs": unet_additional_kwargs}, names)
    refuse_existing(out, overwrite, names.get("out", "out"), names.get("overwrite"))
    folders = {source.part: fetch(source, cache_dir) for source in PUBLIC_SOURCES}
    pinned = tuple(replace(source, revision=folders[source.part].name) for source in PUBLIC_SOURCES)  # the commits
    networks = folders["networks"]
    return convert_moore(
        out,
        [networks / "denoising_unet.pth"],
        networks / "reference_unet.pth",
        networks / "pose_guider.pth",
        networks / "motion_module.pth",
        unet_config=unet_config,
        unet_additional_kwargs=unet_additional_kwargs,
        vae=folders["vae"],
        image_encoder=folders["image_encoder"],
        overwrite=overwrite,
        names=names,
        card=Card(PUBLIC_SUMMARY, pinned),
    )[0]


def assemble(
    out: str | Path,
    networks: AnimateAnyone | str | Path,
    vae,
    image_encoder,
    feature_extractor=None,
    overwrite: bool = False,
    names: Mapping[str, str] | None = None,
    card: Card | None = None,
) -> Path:
    """A complete model directory: the three networks, VAE, image encoder + processor and the DDIM scheduler of
    Moore's inference_v2; returns its path.

    ``networks``: an ``AnimateAnyone`` or a folder with the three networks (copied as they are); ``vae``: an
    ``AutoencoderKL`` or a path for ``components.load_vae``; ``image_encoder``: a ``CLIPVisionModelWithProjection``
    or a path for ``components.load_image_encoder``; ``feature_extractor``: default: the one found with the image
    encoder, else CLIP's. Compatibility is checked from the config files before any weights are read. ``names``: the
    caller's names for the parameters in messages (a command's flags; default the parameters' own). ``card``: what
    the model card says (default: the sources of the networks folder's own card, and the README's public
    repositories of the VAE and the image encoder).
    """
    from torch import nn

    if not isinstance(networks, AnimateAnyone):
        require_paths({"networks": networks}, names)
    require_paths(
        {
            "vae": None if isinstance(vae, nn.Module) else vae,
            "image_encoder": None if isinstance(image_encoder, nn.Module) else image_encoder,
        },
        names,
    )
    names = names or {}
    refuse_existing(out, overwrite, names.get("out", "out"), names.get("overwrite"))
    c.check_compatible(*c.unet_sources(networks, vae, image_encoder))
    card = card or Card(ASSEMBLE_SUMMARY, _assembled_sources(networks, vae))
    if not isinstance(vae, nn.Module):
        vae = c.load_vae(vae)
    if not isinstance(image_encoder, nn.Module):
        image_encoder, found = c.load_image_encoder(image_encoder)
        feature_extractor = feature_extractor or found
    from diffusers import DDIMScheduler

    preset = get_size("sd15")  # the public checkpoints' processor settings and scheduler
    parts = {
        "vae": vae,
        "image_encoder": image_encoder,
        "feature_extractor": feature_extractor or build_image_processor(preset.feature_extractor),
        "scheduler": DDIMScheduler(**preset.scheduler),
    }
    # networks from init-model stay marked as random (a training base), so that animate says so
    index = Path(networks) / "model_index.json" if not isinstance(networks, AnimateAnyone) else None
    random = index is not None and index.is_file() and read_json(index).get("weights") == "random"
    return write_model_directory(out, networks, parts, random_weights=random, overwrite=overwrite, card=card)


def _assembled_sources(networks, vae) -> tuple[Source, ...]:
    """The sources of an assembled directory: the networks folder's own (its model card), then the public VAE (a VAE
    folder: sd-vae-ft-mse's; an SD-1.5 folder or checkpoint: SD-1.5's) and image encoder; one source a part."""
    inherited = () if isinstance(networks, AnimateAnyone) else card_sources(networks)
    sd15 = isinstance(vae, (str, Path)) and not (Path(vae) / "config.json").is_file()
    given = public_sources("sd15" if sd15 else "vae", "image_encoder")
    parts = {"vae" if source.part == "sd15" else source.part: source for source in (*inherited, *given)}
    return tuple(parts.values())
