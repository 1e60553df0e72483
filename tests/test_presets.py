"""Presets: every size in diffusers' own argument names, consistent with Moore's configs and buildable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from animate_anyone.convert.moore import INFERENCE_V2_TEMPORAL, configs_from_moore, sd15_unet_config
from animate_anyone.models.presets import PRESETS, SIZES, build_components, build_networks, get_preset

SHARED_KEYS = Path(__file__).parent / "fixtures" / "moore" / "state_dict_keys"


def test_sd15_preset_is_moores_sd15_inference_v2():
    """The sd15 networks are exactly what Moore's own configs (SD-1.5 unet/config.json + inference_v2.yaml)
    translate to, so ``convert moore`` without config files and ``init-model --size sd15`` agree."""
    unet = json.loads((SHARED_KEYS / "sd15_unet_config.json").read_text())
    extra = json.loads((SHARED_KEYS / "unet_additional_kwargs_inference_v2.json").read_text())
    guider = PRESETS["sd15"].pose_guider
    normalise = lambda c: json.loads(json.dumps(c))  # noqa: E731 (tuples vs lists)
    expected = normalise(PRESETS["sd15"].networks())
    assert normalise(configs_from_moore(unet, extra, guider)) == expected
    assert normalise(configs_from_moore(sd15_unet_config(), INFERENCE_V2_TEMPORAL, guider)) == expected


@pytest.mark.parametrize("size", ["tiny", "mini"])
def test_small_presets_build_and_fit_together(size):
    preset = get_preset(size)
    model = build_networks(preset.networks(), device="meta")
    parts = build_components(preset) if size != "sd15" else {}
    vae, encoder = parts["vae"], parts["image_encoder"]
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    guider = preset.pose_guider
    strides = guider.get("block_strides") or (2,) * (len(guider["block_out_channels"]) - 1)
    assert factor == int(torch.tensor(strides).prod())  # the Pose Guider lands on the latent grid
    assert encoder.config.projection_dim == model.denoising_unet.config.cross_attention_dim
    assert vae.config.latent_channels == model.denoising_unet.config.in_channels
    b = preset.bench
    assert b["width"] % factor == 0 and b["height"] % factor == 0


def test_presets_are_not_shared_state():
    a = PRESETS["tiny"].networks()
    a["reference_net"]["block_out_channels"] = (1,)
    assert PRESETS["tiny"].networks()["reference_net"]["block_out_channels"] == (32, 32, 64)
    assert set(SIZES) == {"tiny", "mini", "sd15"}
    with pytest.raises(ValueError, match="unknown model size 'huge'"):
        get_preset("huge")
