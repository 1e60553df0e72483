"""TAESD's decoder, the public light decoder for SD-1.x latents -> this project's ``LightDecoder`` (strict, by table).

Two layouts of the same weights are read (``read_taesd``), both checked key by key against ``LightDecoder``:

* diffusers' ``AutoencoderTiny`` (``madebyollin/taesd`` on Hugging Face: ``config.json`` +
  ``diffusion_pytorch_model.safetensors``): ``decoder.layers.N.*`` are ``LightDecoder``'s own names (both wrap
  diffusers' ``DecoderTiny``); the ``encoder.*`` tensors are dropped, knowingly (``LightDecoder`` only decodes).
* the original release (``taesd_decoder.pth`` / ``.safetensors``, github.com/madebyollin/taesd): the state dict of
  ``taesd.py``'s ``Decoder``, an ``nn.Sequential`` whose module 0 is ``Clamp`` (no weights), so its ``N.*`` is
  ``decoder.layers.(N-1).*`` (``ORIGINAL_RULES``; diffusers' ``scripts/convert_tiny_autoencoder_to_diffusers.py``
  renames the same way).

The latents: ``LightDecoder`` reads the denoiser's latents (the VAE's latents times its ``scaling_factor``, 0.18215
for SD-1.x). TAESD decodes exactly those: ``AutoencoderTiny``'s ``scaling_factor`` is 1.0 and diffusers' pipelines
call ``vae.decode(latents / vae.config.scaling_factor)``, TAESD's README gives its latents' ``scale_factor`` as 1,
and ``DecoderTiny.forward`` clamps them (``tanh(x / 3) * 3``) and maps its [0, 1] output to [-1, 1]. So the weights
are used as they are. A config for another latent space (another ``latent_channels``, ``scaling_factor`` or
``shift_factor``: SD3's or FLUX's TAESD), a decoder ``LightDecoder`` cannot express, or a model directory whose VAE
is not SD-1.x's (4 channels, 8x, scaling 0.18215: e.g. the miniature model's) is refused in one line naming the
field, its value and the fix. TAESDXL (SDXL's latents) has the same config and shapes as TAESD: only its name tells
it apart (``other_latent_space``).

Nothing here writes: ``jobs.light_decoder`` writes the result into a model directory.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor

from ..model_dir import read_json, vae_scale_factor
from ..weights import WEIGHT_SUFFIXES, read_state_dict
from .tables import ConversionError, Rule, convert_state_dict, target_shapes

SD_VAE = {"latent_channels": 4, "downsampling": 8, "scaling_factor": 0.18215}  # the latents TAESD decodes
TAESD_DECODER = dict(latent_channels=4, out_channels=3, upsampling=8, channels=64, blocks=3)  # LightDecoder's args
# The original release's decoder (taesd.py's Decoder): nn.Sequential(Clamp(), conv, ReLU, 3 x (3 blocks, upsample,
# conv), block, conv), modules 0-19; module N is DecoderTiny's layers[N - 1] (Clamp is its forward's first line).
ORIGINAL_RULES = tuple(Rule(rf"^{n}\.", f"decoder.layers.{n - 1}.") for n in range(1, 20))
ENCODER_PREFIX = "encoder."
# TAESD's other latent spaces, by their release names (madebyollin/taesd's README and Hub repositories).
OTHER_LATENT_SPACES = {
    "taesdxl": "SDXL's",
    "taesd3": "SD3's",
    "taef1": "FLUX.1's",
    "taef2": "FLUX.2's",
    "taesana": "Sana's",
    "taeqi": "Qwen Image's",
}
EXPECTED = (
    "an AutoencoderTiny folder for SD-1.x latents (madebyollin/taesd: config.json + "
    "diffusion_pytorch_model.safetensors) or TAESD's own taesd_decoder.pth / taesd_decoder.safetensors"
)
WEIGHT_STEMS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
WEIGHT_STEMS += ("diffusion_pytorch_model.fp16.safetensors", "diffusion_pytorch_model.fp16.bin")


def other_latent_space(name: str) -> str | None:
    """The latent space a TAESD release name says is not SD-1.x's ("SDXL's" for ``taesdxl_decoder.pth``), else
    None."""
    lowered = name.lower()
    return next((space for key, space in OTHER_LATENT_SPACES.items() if key in lowered), None)


def _refuse(source: str, field: str, value: Any, why: str) -> ConversionError:
    return ConversionError(f"{source}: {field}={value!r}: {why}; expected {EXPECTED}")


def autoencoder_tiny_defaults() -> dict[str, Any]:
    """diffusers' ``AutoencoderTiny`` arguments and their defaults (what a config.json without a field means)."""
    from diffusers import AutoencoderTiny

    parameters = inspect.signature(AutoencoderTiny.__init__).parameters.values()
    return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}


def light_decoder_config(config: Mapping[str, Any], source: str = "TAESD config") -> dict[str, Any]:
    """``LightDecoder``'s arguments for the decoder of an ``AutoencoderTiny`` config (its ``config.json``; missing
    fields take diffusers' defaults, which are TAESD's). ``ConversionError`` naming the first field that is not
    SD-1.x's latent space or that ``LightDecoder`` cannot express."""
    if config.get("_class_name", "AutoencoderTiny") != "AutoencoderTiny":
        raise _refuse(source, "_class_name", config["_class_name"], "not an AutoencoderTiny")
    c = {**autoencoder_tiny_defaults(), **{k: v for k, v in config.items() if not k.startswith("_")}}
    latent = {
        "latent_channels": (4, "SD-1.x latents have 4 channels (16: SD3's or FLUX's TAESD)"),
        "scaling_factor": (1.0, "TAESD decodes SD-1.x's scaled latents as they are (scaling_factor 1.0)"),
        "shift_factor": (0.0, "SD-1.x latents are not shifted (shift_factor 0.0)"),
    }
    for field, (want, why) in latent.items():
        if c.get(field) is not None and float(c[field]) != want:
            raise _refuse(source, field, c[field], f"another latent space; {why}")
    channels, blocks = list(c["decoder_block_out_channels"]), list(c["num_decoder_blocks"])
    levels = len(blocks)
    shape = {
        "act_fn": (c["act_fn"] == "relu", "LightDecoder uses relu"),
        "upsample_fn": (c["upsample_fn"] == "nearest", "LightDecoder upsamples with nearest"),
        "upsampling_scaling_factor": (c["upsampling_scaling_factor"] == 2, "LightDecoder upsamples 2x per level"),
        "out_channels": (c["out_channels"] == 3, "frames have 3 channels"),
        "num_decoder_blocks": (
            levels >= 2 and blocks[-1] == 1 and len(set(blocks[:-1])) == 1 and blocks[0] >= 1,
            "LightDecoder has the same number of blocks on every level and one on the last",
        ),
        "decoder_block_out_channels": (
            len(channels) == levels and len(set(channels)) == 1,
            "LightDecoder has one width on every level",
        ),
    }
    for field, (ok, why) in shape.items():
        if not ok:
            raise _refuse(source, field, c[field], why)
    upsampling = 2 ** (levels - 1)
    if upsampling != SD_VAE["downsampling"]:
        raise _refuse(source, "num_decoder_blocks", c["num_decoder_blocks"], f"upsamples {upsampling}x, SD-1.x 8x")
    return dict(latent_channels=4, out_channels=3, upsampling=upsampling, channels=channels[0], blocks=blocks[0])


def check_model_vae(vae_config: Mapping[str, Any], source: str) -> None:
    """``ConversionError`` unless the model's VAE (its config.json) makes SD-1.x's latents: 4 channels, 8x, scaling
    factor 0.18215 (diffusers' default, which sd-vae-ft-mse's config leaves out): TAESD decodes no others."""
    values = {
        "latent_channels": vae_config.get("latent_channels"),
        "downsampling": vae_scale_factor(vae_config),
        "scaling_factor": vae_config.get("scaling_factor", SD_VAE["scaling_factor"]),
    }
    for field, want in SD_VAE.items():
        if values[field] != want:
            raise ConversionError(
                f"{source}: its VAE's {field} is {values[field]}: TAESD decodes SD-1.x latents (4 channels, 8x, "
                "scaling_factor 0.18215), not this model's; train a light decoder for its own VAE with "
                "`animate-anyone train light-decoder --model DIR --data DATASET`"
            )


def layout(state: Mapping[str, Tensor]) -> str:
    """ "diffusers" (``AutoencoderTiny``: ``decoder.*`` / ``encoder.*``) or "original" (TAESD's ``nn.Sequential``)."""
    return "diffusers" if any(k.startswith(("decoder.", ENCODER_PREFIX)) for k in state) else "original"


def light_decoder_state(
    state: Mapping[str, Tensor], config: Mapping[str, Any] | None = None, source: str = "TAESD"
) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """(``LightDecoder`` arguments, its state dict) from TAESD's weights in either layout (``layout``) and, for the
    diffusers layout, its ``AutoencoderTiny`` config (None: the published TAESD's; the original release has none).
    Every decoder tensor must land on a ``LightDecoder`` key of its shape and fill them all; ``encoder.*`` is dropped;
    anything else raises ``weights.WeightsError`` naming the keys."""
    import torch

    from ..models import LightDecoder

    kind = layout(state)
    arguments = light_decoder_config(config or {}, source) if kind == "diffusers" else dict(TAESD_DECODER)
    if kind == "diffusers":
        kept, rules = {k: v for k, v in state.items() if not k.startswith(ENCODER_PREFIX)}, ()
    else:
        kept, rules = dict(state), ORIGINAL_RULES
    with torch.device("meta"):
        target = target_shapes(LightDecoder(**arguments))
    return arguments, convert_state_dict([kept], rules, target, f"{source} ({kind} layout)")


# -- reading ------------------------------------------------------------------------------------------------------


def taesd_config_file(path: str | Path) -> Path | None:
    """The ``config.json`` of an ``AutoencoderTiny`` folder, None for a single weights file (the original release);
    ``ConversionError`` for anything else, or for a name of another latent space (``other_latent_space``). Reads no
    weights."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"TAESD not found: {path}; expected {EXPECTED}")
    space = other_latent_space(path.name)
    if space is not None:
        raise ConversionError(f"{path} is TAESD for {space} latents, not SD-1.x's; expected {EXPECTED}")
    if path.is_file():
        if path.suffix not in WEIGHT_SUFFIXES:
            raise ConversionError(f"{path}: unknown file type {path.suffix!r}; expected {EXPECTED}")
        if "encoder" in path.name.lower():
            raise ConversionError(f"{path} is TAESD's encoder; give its decoder (taesd_decoder.*)")
        return None
    config = path / "config.json"
    if not config.is_file():
        raise ConversionError(f"{path} has no config.json; expected {EXPECTED}")
    return config


def read_taesd(path: str | Path) -> tuple[dict[str, Tensor], dict[str, Any] | None, str]:
    """(state dict, ``AutoencoderTiny`` config or None, the file read) of a TAESD folder or decoder file."""
    config_file = taesd_config_file(path)
    if config_file is None:
        return read_state_dict(path), None, str(path)
    config = read_json(config_file)
    light_decoder_config(config, str(config_file))  # before any weights are read
    weights = next((config_file.parent / n for n in WEIGHT_STEMS if (config_file.parent / n).is_file()), None)
    if weights is None:
        raise ConversionError(f"{config_file.parent} has config.json but no {WEIGHT_STEMS[0]}; expected {EXPECTED}")
    return read_state_dict(weights), config, str(weights)
