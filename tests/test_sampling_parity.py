"""The denoising loop reproduces Moore-AnimateAnyone's short and long (windowed) sampling runs."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch
from diffusers import DDIMScheduler
from safetensors.torch import load_file

from animate_anyone.pipelines.context import moore_windows
from animate_anyone.pipelines.sampling import sample_video
from animate_anyone.pipelines.settings import SamplingSettings
from conftest import golden_dir, golden_sizes, golden_spec

CASES = sorted(golden_spec()["sampling_cases"])


@pytest.mark.parametrize("case", CASES)
def test_sampling_matches_moore(golden_model, case):
    spec = golden_spec()["sampling_cases"][case]
    t = {k[len(case) + 1 :]: v for k, v in load_file(golden_dir() / f"sampling_{case}.safetensors").items()}
    scheduler = DDIMScheduler(**spec["scheduler_kwargs"])
    frames = spec["frames"]
    ctx = spec.get("context", {"context_frames": frames, "context_overlap": 0, "context_stride": 1})
    assert ctx["context_stride"] == 1  # the only stride the reference runs use, and the only one moore_windows has
    if "context_windows_per_step" in spec:  # the schedule itself is part of the reference
        assert moore_windows(frames, ctx["context_frames"], ctx["context_overlap"]) == spec["context_windows_per_step"]
    scheduler.set_timesteps(spec["steps"])
    assert scheduler.timesteps.tolist() == spec["timesteps"]
    with torch.no_grad():
        bank = golden_model.encode_reference(t["in.ref_latents"], t["in.image_embeds"])
        pose = golden_model.encode_pose(t["in.pose_images"])
    steps = []
    window_batch = ctx.get("context_batch_size", 1)  # Moore evaluates this many windows per UNet call
    settings = SamplingSettings(
        steps=spec["steps"],
        guidance=spec["guidance_scale"],
        context_frames=ctx["context_frames"],
        context_overlap=ctx["context_overlap"],
        window_mode="moore",
    )
    final = sample_video(
        golden_model,
        scheduler,
        t["in.init_latents"],  # DDIM's initial sigma is 1: Moore's initial latents are the noise
        t["in.image_embeds"],
        pose,
        bank,
        settings,
        eta=spec["eta"],
        callback=lambda step, window: steps.append((step, window)),
        window_batch=window_batch,
    )
    windows_per_step = Counter(step for step, _ in steps).values()
    assert sum(math.ceil(n / window_batch) for n in windows_per_step) == spec["denoising_unet_calls"]
    assert (final - t["out.final_latents_fp32bank"]).abs().max().item() <= 1e-3


@pytest.mark.parametrize("mode", ["shifted", "moore"])
def test_windowing_is_exact_when_frames_are_independent(fresh_golden_model, mode):
    """With zero temporal layers frames do not interact, so any window schedule equals one big window."""
    from animate_anyone.models import zero_init_motion_modules

    model = fresh_golden_model
    zero_init_motion_modules(model.denoising_unet)
    s, case = golden_sizes(), golden_spec()["sampling_cases"][CASES[0]]
    frames = min(9, s.max_frames)  # free choice: more than one 4-frame window, within the positional table
    g = torch.Generator().manual_seed(0)
    latents = torch.randn(1, s.latent_channels, frames, s.latent_h, s.latent_w, generator=g)
    ref = torch.randn(1, s.latent_channels, s.latent_h, s.latent_w, generator=g)
    embeds = torch.randn(1, s.embed_tokens, s.cross_attention_dim, generator=g)
    pose_images = torch.rand(1, 3, frames, s.pose_h, s.pose_w, generator=g)
    with torch.no_grad():
        bank, pose = model.encode_reference(ref, embeds), model.encode_pose(pose_images)
    kwargs = dict(steps=case["steps"], guidance=case["guidance_scale"], window_mode=mode)
    sched = lambda: DDIMScheduler(**case["scheduler_kwargs"])  # noqa: E731
    whole = SamplingSettings(context_frames=frames, context_overlap=0, **kwargs)
    whole = sample_video(model, sched(), latents, embeds, pose, bank, whole)
    windowed = SamplingSettings(context_frames=4, context_overlap=2, **kwargs)
    windowed = sample_video(model, sched(), latents, embeds, pose, bank, windowed)
    assert (whole - windowed).abs().max() < 1e-4
