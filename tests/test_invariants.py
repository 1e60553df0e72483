"""Invariants of the architecture, on the golden tiny networks (all weights random and non-zero)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers import UNet2DConditionModel
from diffusers.models.attention_processor import AttnProcessor2_0

from animate_anyone.convert.moore import configs_from_moore
from animate_anyone.models import ReferenceBank, zero_init_motion_modules
from animate_anyone.models.reference_attention import (
    _attention_with_lse_math,
    _reference_attention_concat,
    attention_with_lse,
    reference_attention,
)
from conftest import golden_sizes, golden_spec

SIZES = golden_sizes()  # latent/pose sizes, frames, timestep and guidance scale of the set's first unet case
G = SIZES.guidance_scale


def inputs(model, batch=1, frames=SIZES.frames, seed=0):
    g = torch.Generator().manual_seed(seed)
    s = SIZES
    return dict(
        latents=torch.randn(batch, s.latent_channels, frames, s.latent_h, s.latent_w, generator=g),
        ref=torch.randn(batch, s.latent_channels, s.latent_h, s.latent_w, generator=g),
        embeds=torch.randn(batch, s.embed_tokens, s.cross_attention_dim, generator=g),
        pose=torch.rand(batch, 3, frames, s.pose_h, s.pose_w, generator=g),
        t=torch.tensor(s.timestep),
    )


@torch.no_grad()
def test_zero_temporal_layers_equal_2d_unet_frame_by_frame(fresh_golden_model):
    model = fresh_golden_model
    zero_init_motion_modules(model.denoising_unet)
    x = inputs(model)
    # 1. Against diffusers' plain 2D UNet carrying the same 2D weights, applied to each frame.
    spec = golden_spec()
    kwargs = configs_from_moore(spec["denoising_unet_config_3d"], spec["unet_additional_kwargs"], spec["pose_guider"])
    unet2d = UNet2DConditionModel(**kwargs["reference_net"], out_channels=spec["unet_config_2d"]["out_channels"]).eval()
    state = {k: v for k, v in model.denoising_unet.state_dict().items() if ".motion_modules." not in k}
    unet2d.load_state_dict(state, strict=True)
    video = model.denoising_unet(x["latents"], x["t"], x["embeds"])  # (1, c, f, h, w)
    frames = x["latents"][0].permute(1, 0, 2, 3)  # (f, c, h, w)
    per_frame = unet2d(frames, x["t"], x["embeds"].expand(SIZES.frames, -1, -1)).sample  # (f, c, h, w)
    assert (video[0].permute(1, 0, 2, 3) - per_frame).abs().max() < 1e-5
    # 2. With pose and reference: an F-frame call equals F single-frame calls.
    pose = model.encode_pose(x["pose"])
    bank = model.encode_reference(x["ref"], x["embeds"])
    video = model.denoise(x["latents"], x["t"], x["embeds"], pose, bank, G)
    for i in range(SIZES.frames):
        single = model.denoise(x["latents"][:, :, i : i + 1], x["t"], x["embeds"], pose[:, :, i : i + 1], bank, G)
        assert (video[:, :, i : i + 1] - single).abs().max() < 1.5e-5 * G  # guidance amplifies rounding


@torch.no_grad()
def test_empty_reference_bank_equals_plain_self_attention(golden_model):
    model = golden_model
    x = inputs(model)
    pose = model.encode_pose(x["pose"])
    ours = model.denoising_unet(x["latents"], x["t"], x["embeds"], pose, None)
    bank = model.encode_reference(x["ref"], x["embeds"], cache_keys_values=False)
    empty = ReferenceBank(tokens={k: v[:, :0] for k, v in bank.tokens.items()})
    with_empty = model.denoising_unet(x["latents"], x["t"], x["embeds"], pose, empty)
    # diffusers' stock processors everywhere
    unet = model.denoising_unet
    saved = unet.attn_processors
    unet.set_attn_processor(AttnProcessor2_0())
    try:
        stock = unet(x["latents"], x["t"], x["embeds"], pose, None)
    finally:
        unet.set_attn_processor(saved)
    assert (ours - stock).abs().max() < 1e-5
    assert (with_empty - stock).abs().max() < 1e-5
    with_ref = model.denoising_unet(x["latents"], x["t"], x["embeds"], pose, bank)
    assert (with_ref - stock).abs().max() > 1e-3  # and a real bank does change it


@torch.no_grad()
def test_unconditional_row_is_independent_of_the_reference_image(golden_model):
    model = golden_model
    x = inputs(model)
    pose = model.encode_pose(x["pose"])
    other_ref = torch.randn_like(x["ref"])
    _, rows_a = model.denoise(
        x["latents"], x["t"], x["embeds"], pose, model.encode_reference(x["ref"], x["embeds"]), G, return_rows=True
    )
    _, rows_b = model.denoise(
        x["latents"], x["t"], x["embeds"], pose, model.encode_reference(other_ref, x["embeds"]), G, return_rows=True
    )
    assert torch.equal(rows_a[0], rows_b[0])  # uncond: bit-identical
    assert (rows_a[1] - rows_b[1]).abs().max() > 1e-3  # cond: depends on the reference


@torch.no_grad()
def test_reference_tokens_are_identical_for_every_frame(golden_model):
    model = golden_model
    x = inputs(model)
    bank = model.encode_reference(x["ref"], x["embeds"])
    assert all(t.shape[0] == 1 for t in bank.tokens.values())  # one row per image: no frame axis at all
    # Each frame's attention equals the explicit [own tokens, reference tokens] attention of that frame.
    g = torch.Generator().manual_seed(1)
    b, f, heads, L, Lr, d = 2, 3, 2, 10, 7, 4
    q, k, v = (torch.randn(b * f, heads, L, d, generator=g) for _ in range(3))
    k_ref, v_ref = (torch.randn(b, heads, Lr, d, generator=g) for _ in range(2))
    out = reference_attention(q, k, v, k_ref, v_ref, f, None, 0.5)
    for row in range(b):
        for frame in range(f):
            i = row * f + frame
            keys = torch.cat([k[i], k_ref[row]], dim=1)
            values = torch.cat([v[i], v_ref[row]], dim=1)
            expected = F.scaled_dot_product_attention(q[i], keys, values, scale=0.5)
            assert (out[i] - expected).abs().max() < 1e-5


def test_merged_and_concatenated_reference_attention_agree():
    g = torch.Generator().manual_seed(2)
    b, f, heads, L, Lr, d = 3, 4, 2, 6, 5, 8
    q, k, v = (torch.randn(b * f, heads, L, d, generator=g) for _ in range(3))
    rows = torch.tensor([False, True, True])
    for bank_rows in (2, 1):  # one bank row per reference row, or one shared
        k_ref, v_ref = (torch.randn(bank_rows, heads, Lr, d, generator=g) for _ in range(2))
        with torch.no_grad():
            merged = reference_attention(q, k, v, k_ref, v_ref, f, rows, d**-0.5)
        concat = _reference_attention_concat(q, k, v, k_ref, v_ref, f, rows, d**-0.5)
        assert (merged - concat).abs().max() < 1e-5
        plain = F.scaled_dot_product_attention(q[:f], k[:f], v[:f])  # row 0 does not use the reference
        assert (merged[:f] - plain).abs().max() < 1e-6


def test_attention_lse_kernel_matches_math():
    g = torch.Generator().manual_seed(3)
    q, k, v = (
        torch.randn(2, 3, 9, 8, generator=g),
        torch.randn(2, 3, 11, 8, generator=g),
        torch.randn(2, 3, 11, 8, generator=g),
    )
    out, lse = attention_with_lse(q, k, v, 0.3)
    out_m, lse_m = _attention_with_lse_math(q, k, v, 0.3)
    assert (out - out_m).abs().max() < 1e-5 and (lse - lse_m).abs().max() < 1e-5


def test_training_gradients_reach_all_three_networks(fresh_golden_model):
    model = fresh_golden_model.train()
    x = inputs(model, batch=2)
    use_ref = torch.tensor([True, False])
    pred = model(x["latents"], x["t"].expand(2), x["ref"], x["embeds"], x["pose"], use_ref)
    pred.square().mean().backward()
    for name in ("reference_net", "denoising_unet", "pose_guider"):
        grads = [p.grad for p in getattr(model, name).parameters() if p.grad is not None]
        assert grads and any(gr.abs().sum() > 0 for gr in grads), name
