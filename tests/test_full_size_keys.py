"""Full-size (SD-1.5 + inference_v2) compatibility with the public key/shape lists, on the meta device."""

from __future__ import annotations

import json

import pytest
import torch

from animate_anyone.convert.moore import (
    convert_motion_module,
    is_motion_key,
    networks_from_moore,
    target_shapes,
)
from animate_anyone.models.sizes import SIZES, build_networks
from animate_anyone.weights import WeightsError
from conftest import MOORE_KEYS


def listing(name: str) -> dict:
    return json.loads((MOORE_KEYS / f"{name}.json").read_text())


def meta_state(entries) -> dict[str, torch.Tensor]:
    return {e["name"]: torch.empty(e["shape"], device="meta") for e in entries}


@pytest.fixture(scope="module")
def sd15_meta():
    return build_networks(SIZES["sd15"].networks(), device="meta")


def test_sd15_builds_on_meta(sd15_meta):
    model = sd15_meta
    assert all(p.is_meta for p in model.parameters())
    denoising = listing("denoising_unet")
    moore_buffers = sum(torch.Size(e["shape"]).numel() for e in denoising["tensors"] if e["buffer"])
    ours = sum(p.numel() for p in model.denoising_unet.parameters())
    assert ours == denoising["num_elements"] - moore_buffers  # same parameters; only the pe tables are shared
    assert sum(p.numel() for p in model.reference_net.parameters()) == listing("reference_unet")["num_elements"]
    assert sum(p.numel() for p in model.pose_guider.parameters()) == listing("pose_guider")["num_elements"]


def test_moore_release_converts_with_zero_missing_and_unexpected(sd15_meta):
    entries = listing("denoising_unet")["tensors"]
    model = networks_from_moore(
        denoising_unet=[meta_state(e for e in entries if not e["motion_module"])],  # denoising_unet.pth
        motion_module=meta_state(listing("motion_module")["tensors"]),  # motion_module.pth
        reference_unet=meta_state(listing("reference_unet")["tensors"]),
        pose_guider=meta_state(listing("pose_guider")["tensors"]),
    )
    assert target_shapes(model.denoising_unet) == target_shapes(sd15_meta.denoising_unet)
    # a single file holding everything converts too
    networks_from_moore(
        denoising_unet=[meta_state(entries)],
        reference_unet=meta_state(listing("reference_unet")["tensors"]),
        pose_guider=meta_state(listing("pose_guider")["tensors"]),
    )


def test_reference_pairing_matches_public_release(sd15_meta):
    model = sd15_meta
    pairs = listing("reference_attention_pairing")["pairs"]
    expected = sorted(p["reader_denoising_unet"] for p in pairs)
    assert sorted(model.denoising_unet.reference_blocks) == expected
    assert sorted(model.reference_net.bank_blocks) == sorted(p["writer_reference_unet"] for p in pairs)


def test_animatediff_motion_module_converts(sd15_meta):
    """``mm_sd_v15_v2.ckpt`` uses the same names as ``motion_module.pth`` (README of the fixtures)."""
    target = target_shapes(sd15_meta.denoising_unet)
    converted = convert_motion_module(meta_state(listing("motion_module")["tensors"]), target)
    assert set(converted) == {k for k in target if is_motion_key(k)}
    assert len(converted) == 588 - 21  # two positional tables per module become one


def test_converter_names_the_bad_keys(sd15_meta):
    target = target_shapes(sd15_meta.denoising_unet)
    good = meta_state(listing("motion_module")["tensors"])
    missing = dict(good)
    del missing["mid_block.motion_modules.0.temporal_transformer.proj_out.weight"]
    with pytest.raises(WeightsError, match=r"mid_block\.motion_modules\.0\.proj_out\.weight"):
        convert_motion_module(missing, target)
    extra = dict(good, **{"down_blocks.0.motion_modules.0.temporal_transformer.extra": torch.empty(1, device="meta")})
    with pytest.raises(WeightsError, match="unexpected keys.*temporal_transformer.extra"):
        convert_motion_module(extra, target)
    key = "up_blocks.3.motion_modules.2.temporal_transformer.proj_in.weight"
    shape = dict(good, **{key: torch.empty(3, 3, device="meta")})
    with pytest.raises(WeightsError, match="shape mismatch"):
        convert_motion_module(shape, target)


def test_differing_positional_tables_are_rejected():
    """The two AnimateDiff tables of one block merge only when equal."""
    from animate_anyone.convert.moore import convert_denoising_unet

    prefix = "down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks"
    source = {f"{prefix}.0.pos_encoder.pe": torch.zeros(1, 4, 2), f"{prefix}.1.pos_encoder.pe": torch.ones(1, 4, 2)}
    target = {"down_blocks.0.motion_modules.0.transformer_blocks.0.pos_embed.pe": (1, 4, 2)}
    with pytest.raises(WeightsError, match="conflicting"):
        convert_denoising_unet([source], target)
    source[f"{prefix}.1.pos_encoder.pe"] = torch.zeros(1, 4, 2)
    assert set(convert_denoising_unet([source], target)) == set(target)
