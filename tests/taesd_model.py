"""TAESD as users download it, with random weights: diffusers' ``AutoencoderTiny`` built from the published
config (tests/fixtures/taesd/config.json) and saved as the Hub folder is laid out, or its decoder saved as TAESD's
own release file (an ``nn.Sequential`` whose module 0, ``Clamp``, has no weights); and a copy of the tiny model
(an SD-1.5-shaped VAE: 8x, 4 channels) given that decoder by ``convert light-decoder``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from conftest import FIXTURES

TAESD_CONFIG = FIXTURES / "taesd" / "config.json"


def published_config() -> dict:
    return json.loads(TAESD_CONFIG.read_text())


def random_taesd(seed: int = 0, **changes):
    """``AutoencoderTiny`` of the published config (``changes`` on top), random weights of a decoder's scale."""
    from diffusers import AutoencoderTiny

    torch.manual_seed(seed)
    return AutoencoderTiny.from_config({**published_config(), **changes}).eval()


def save_taesd_folder(folder: Path, model=None) -> Path:
    """The Hub layout: config.json (the published one) + diffusion_pytorch_model.safetensors."""
    model = model if model is not None else random_taesd()
    model.save_pretrained(folder, safe_serialization=True)
    shutil.copy(TAESD_CONFIG, folder / "config.json")  # the published text, not diffusers' re-serialisation
    return folder


def original_decoder_state(model) -> dict[str, torch.Tensor]:
    """The decoder's tensors under the original release's names: ``decoder.layers.N.x`` -> ``(N+1).x``."""
    out = {}
    for key, tensor in model.state_dict().items():
        if key.startswith("decoder.layers."):
            index, rest = key[len("decoder.layers.") :].split(".", 1)
            out[f"{int(index) + 1}.{rest}"] = tensor.clone()
    return out


def model_with_taesd(root: Path, tiny_model_dir: Path) -> tuple[Path, Path]:
    """(a copy of the tiny model given a random TAESD decoder by `convert light-decoder`, the TAESD folder)."""
    from animate_anyone.jobs.light_decoder import convert_light_decoder

    taesd = save_taesd_folder(root / "taesd")
    model = shutil.copytree(tiny_model_dir, root / "model-taesd")
    convert_light_decoder(taesd, model)
    return model, taesd
