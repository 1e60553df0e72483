"""Every optimisation switch of the pipeline (``pipelines.optimisations``) leaves the outputs unchanged up to float
rounding.

Tiny random model (every weight non-zero, including the zero-initialised layers), float32 on CPU. Each switch
is compared as the benchmark's ``--compare`` does: everything on vs everything on but that switch. Measured
max abs differences (outputs of magnitude ~2, guidance 3.5; 3 seeds, AMD EPYC, torch 2.13 CPU):

| switch off vs on | denoise() | 2-step sample_video | VAE decode |
| --- | --- | --- | --- |
| ref_kv_cache | 0 | 0 | - |
| fused_qkv | 0 | 0 | - |
| channels_last | 8.3e-6 | 7.6e-6 | 8.3e-6 |
| sdpa | 7.2e-6 | 1.3e-5 | 0 (no attention switch in the VAE) |
| all off vs all on | 8.6e-6 | 9.5e-6 | 8.3e-6 |
| window_batch 2 / 4 vs 1 (10 frames, windows 4/1) | - | 6.0e-6 | - |
| chunked decode (chunks of 4 vs all 10 frames) | - | - | 0 |

The tests allow TOL = 4e-5 (3x the largest measured difference): another CPU or BLAS build rounds
differently, but a real error (a lost reference, a wrong row) moves the outputs by 1e-2 or more.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler
from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0, FusedAttnProcessor2_0

from animate_anyone.models.reference_attention import ReferenceReadProcessor, ReferenceWriteProcessor
from animate_anyone.models.sizes import SCHEDULER_V2, SIZES, build_components, build_networks
from animate_anyone.pipelines import AnimateAnyonePipeline, Optimisations
from animate_anyone.pipelines.optimisations import SWITCHES, applied
from animate_anyone.pipelines.sampling import sample_video
from animate_anyone.pipelines.settings import SamplingSettings
from animate_anyone.speed import randomise_zero_parameters

TOL = 4e-5
F_, H, W = 4, 16, 12  # frames, latent height, latent width
ALL_OFF = dict.fromkeys(SWITCHES, False)
ALL_ON = dict.fromkeys(SWITCHES, True)
MODEL_SWITCHES = ["ref_kv_cache", "channels_last", "fused_qkv", "sdpa"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = build_networks(SIZES["tiny"].networks()).eval()
    randomise_zero_parameters(model)
    vae = build_components(SIZES["tiny"])["vae"].eval()
    return model, vae


def inputs(batch=1, frames=F_, seed=0):
    g = torch.Generator().manual_seed(seed)
    return dict(
        latents=torch.randn(batch, 4, frames, H, W, generator=g),
        ref=torch.randn(batch, 4, H, W, generator=g),
        embeds=torch.randn(batch, 1, 32, generator=g),
        pose=torch.rand(batch, 3, frames, 8 * H, 8 * W, generator=g),
    )


@torch.no_grad()
def outputs(model, vae, x, switches, steps=2):
    """denoise() once, a ``steps``-step sample_video, and a VAE decode, all under ``switches``."""
    with applied(model, vae, Optimisations().with_switches(switches)) as opts:
        bank = model.encode_reference(x["ref"], x["embeds"], cache_keys_values=opts.ref_kv_cache)
        pose = model.encode_pose(x["pose"])
        step = model.denoise(x["latents"], torch.tensor(601), x["embeds"], pose, bank, 3.5)
        settings = SamplingSettings(steps=steps, guidance=3.5)
        video = sample_video(model, DDIMScheduler(**SCHEDULER_V2), x["latents"], x["embeds"], pose, bank, settings)
        images = vae.decode(x["latents"][0].transpose(0, 1)).sample
    return step, video, images


def max_diff(a, b):
    return (a - b).abs().max().item()


@pytest.mark.parametrize("name", MODEL_SWITCHES)
def test_each_switch_keeps_the_outputs(tiny, name):
    model, vae = tiny
    x = inputs()
    on = outputs(model, vae, x, ALL_ON)
    off = outputs(model, vae, x, {**ALL_ON, name: False})
    assert off[0].abs().max() > 0.5  # outputs of a meaningful size
    for a, b in zip(on, off):
        assert max_diff(a, b) <= TOL


def test_all_switches_together_keep_the_outputs(tiny):
    model, vae = tiny
    x = inputs(seed=1)
    off, on = outputs(model, vae, x, ALL_OFF), outputs(model, vae, x, ALL_ON)
    for a, b in zip(on, off):
        assert max_diff(a, b) <= TOL


@pytest.mark.parametrize("name", ["fused_qkv"])
def test_switches_with_a_bank_row_per_video(tiny, name):
    """Two videos with two references: the per-row bank paths (no shared bank row)."""
    model, vae = tiny
    x = inputs(batch=2, seed=2)
    with torch.no_grad():
        results = []
        for value in (False, True):
            with applied(model, None, Optimisations().with_switches({**ALL_ON, name: value})):
                bank = model.encode_reference(x["ref"], x["embeds"])
                results.append(model.denoise(x["latents"], 601, x["embeds"], model.encode_pose(x["pose"]), bank, 3.5))
    assert max_diff(*results) <= TOL
    # and the two videos really differ (each row got its own reference)
    assert max_diff(results[0][0], results[0][1]) > 1e-2


def test_switch_contexts_restore_the_model(tiny):
    model, vae = tiny
    unet = model.denoising_unet
    before = {k: type(p) for k, p in unet.attn_processors.items()}
    keys = set(unet.state_dict())
    with applied(model, vae, Optimisations().with_switches(ALL_ON)):
        kinds = {type(p) for p in unet.attn_processors.values()}
        assert kinds == {FusedAttnProcessor2_0, ReferenceReadProcessor}
        assert all(
            hasattr(m, "to_qkv")
            for m in unet.modules()
            if isinstance(getattr(m, "processor", None), ReferenceReadProcessor)
        )
        assert unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    with applied(model, vae, Optimisations().with_switches({**ALL_ON, "sdpa": False})):  # classic processor, unfused
        kinds = {type(p) for p in unet.attn_processors.values()}
        assert kinds == {AttnProcessor, ReferenceReadProcessor}
    assert {k: type(p) for k, p in unet.attn_processors.items()} == before
    assert set(unet.state_dict()) == keys  # no to_qkv / to_kv left behind
    assert not any(getattr(m, "fused_projections", False) for m in unet.modules())
    assert unet.conv_in.weight.is_contiguous() and vae.decoder.conv_in.weight.is_contiguous()
    assert {type(p) for p in model.reference_net.attn_processors.values()} == {
        ReferenceWriteProcessor,
        AttnProcessor2_0,
    }


@torch.no_grad()
def test_fused_projections_are_really_used(tiny):
    """Inside the context every attention layer uses its fused weights: spoiling the separate K/V weights
    (after the reference bank is projected) changes nothing."""
    model, _ = tiny
    x = inputs(seed=3)
    bank = model.encode_reference(x["ref"], x["embeds"])
    pose = model.encode_pose(x["pose"])
    ref = model.denoise(x["latents"], 601, x["embeds"], pose, bank, 3.5)
    with applied(model, None, Optimisations().with_switches({**ALL_OFF, "sdpa": True, "fused_qkv": True})):
        fused = [m for m in model.denoising_unet.modules() if hasattr(m, "to_qkv") or hasattr(m, "to_kv")]
        saved = [(m.to_k.weight.clone(), m.to_v.weight.clone()) for m in fused]
        try:
            for m in fused:
                m.to_k.weight.mul_(-3)
                m.to_v.weight.mul_(-3)
            spoiled = model.denoise(x["latents"], 601, x["embeds"], pose, bank, 3.5)
        finally:
            for m, (k, v) in zip(fused, saved):
                m.to_k.weight.copy_(k)
                m.to_v.weight.copy_(v)
    assert len(fused) == len(model.denoising_unet.attn_processors)
    assert max_diff(spoiled, ref) <= TOL


def test_diffusers_fuse_qkv_projections_would_drop_the_reference():
    """Why ``fused_qkv_projections`` exists: diffusers' own method replaces every processor."""
    model = build_networks(SIZES["tiny"].networks())
    model.denoising_unet.fuse_qkv_projections()
    assert not any(isinstance(p, ReferenceReadProcessor) for p in model.denoising_unet.attn_processors.values())


@pytest.mark.parametrize("batch", [1, 2])
def test_window_batch_keeps_the_outputs(tiny, batch):
    model, _ = tiny
    x = inputs(batch=batch, frames=10, seed=4)
    with torch.no_grad():
        bank, pose = model.encode_reference(x["ref"], x["embeds"]), model.encode_pose(x["pose"])
        results = {}
        for wb in (1, 2, 4):
            calls = []
            results[wb] = sample_video(
                model,
                DDIMScheduler(**SCHEDULER_V2),
                x["latents"],
                x["embeds"],
                pose,
                bank,
                SamplingSettings(steps=2, guidance=3.5, context_frames=4, context_overlap=1),
                window_batch=wb,
                callback=lambda s, w, calls=calls: calls.append((s, w)),
            )
            assert calls == sorted(calls) and len(calls) == 7  # every window reported once, in order
    assert max_diff(results[2], results[1]) <= TOL
    assert max_diff(results[4], results[1]) <= TOL
    with pytest.raises(ValueError, match="window_batch"):
        Optimisations(window_batch=0)  # the type that owns the value checks it


@torch.no_grad()
def test_chunked_decode_keeps_the_frames(tiny):
    _, vae = tiny
    latents = inputs(frames=10, seed=5)["latents"][0].transpose(0, 1)  # (10, 4, h, w)
    whole = vae.decode(latents).sample
    chunked = torch.cat([vae.decode(latents[i : i + 4]).sample for i in range(0, 10, 4)])
    assert max_diff(whole, chunked) <= TOL


@pytest.mark.integration  # 9 s of tracing with torch.compile's tools: the fast tier stays under 5 min
def test_guided_step_traces_as_one_graph(tiny):
    """torch.compile sees the whole guided step (both CFG rows, reference attention in every block) as one graph:
    the reference rows are a static slice, not a tensor mask whose count would have to be read."""
    model, _ = tiny
    x = inputs(seed=7)
    with torch.no_grad():
        bank, pose = model.encode_reference(x["ref"], x["embeds"]), model.encode_pose(x["pose"])
        explained = torch._dynamo.explain(model.denoise)(x["latents"], torch.tensor(601), x["embeds"], pose, bank, 3.5)
        torch._dynamo.reset()
    assert explained.graph_break_count == 0, [b.reason for b in explained.break_reasons]
    assert explained.graph_count == 1


def test_slice_and_mask_row_selections_agree(tiny):
    """The slice that guidance passes and the equivalent bool mask (training's form) give the same result."""
    model, _ = tiny
    x = inputs(batch=2, seed=8)
    with torch.no_grad():
        bank, pose = model.encode_reference(x["ref"][:1], x["embeds"][:1]), model.encode_pose(x["pose"])
        unet = model.denoising_unet
        by_slice = unet(x["latents"], 601, x["embeds"], pose, bank, slice(1, 2))
        by_mask = unet(x["latents"], 601, x["embeds"], pose, bank, torch.tensor([False, True]))
    assert torch.equal(by_slice, by_mask)


@pytest.mark.slow
def test_compiled_unet_keeps_the_outputs(tiny):
    """torch.compile of the denoising UNet (CPU: about two minutes of compilation)."""
    model, _ = tiny
    x = inputs(seed=6)
    with torch.no_grad():
        bank, pose = model.encode_reference(x["ref"], x["embeds"]), model.encode_pose(x["pose"])
        eager = model.denoise(x["latents"], 601, x["embeds"], pose, bank, 3.5)
        model.denoising_unet.compile()
        try:
            compiled = model.denoise(x["latents"], 601, x["embeds"], pose, bank, 3.5)
        finally:
            model.denoising_unet._compiled_call_impl = None
    assert max_diff(compiled, eager) <= 1e-4


def tiny_pipeline(tiny):
    model, vae = tiny
    parts = build_components(SIZES["tiny"])
    pipe = AnimateAnyonePipeline(
        vae=vae,
        image_encoder=parts["image_encoder"],
        feature_extractor=parts["feature_extractor"],
        reference_net=model.reference_net,
        denoising_unet=model.denoising_unet,
        pose_guider=model.pose_guider,
        scheduler=parts["scheduler"],
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_pipeline_optimisations_keep_the_frames_and_switch_back(tiny):
    """``set_optimisations`` on the real pipeline: every switch toggled at once (and windows batched) keeps the
    video within the tolerance, and switching back restores the default networks and the very same frames."""
    from PIL import Image

    pipe = tiny_pipeline(tiny)
    unet = pipe.denoising_unet
    before = {k: type(p) for k, p in unet.attn_processors.items()}
    rng = np.random.default_rng(0)
    reference = Image.fromarray(rng.integers(0, 256, (64, 48, 3), dtype=np.uint8))
    poses = rng.integers(0, 256, (6, 64, 48, 3), dtype=np.uint8)

    def run():
        return pipe(
            reference,
            poses,
            {"steps": 2, "context_frames": 4, "context_overlap": 2},
            height=64,
            width=48,
            generator=torch.Generator().manual_seed(0),
            output_type="latent",
        ).frames

    default = run()
    toggled = {name: not value for name, value in Optimisations().switches().items()}
    assert pipe.set_optimisations(Optimisations().with_switches(toggled), window_batch=2).window_batch == 2
    assert any(hasattr(m, "to_qkv") for m in unet.modules())
    changed = run()
    pipe.set_optimisations(Optimisations())
    assert {k: type(p) for k, p in unet.attn_processors.items()} == before
    assert not any(hasattr(m, "to_qkv") for m in unet.modules())
    assert torch.equal(run(), default)
    assert 0 < max_diff(changed, default) <= TOL
    with pytest.raises(ValueError, match="unknown optimisation"):
        pipe.set_optimisations(turbo=True)
