"""Sampling presets (pipelines.presets): resolution and checks, determinism, exactness with the speed-ups off,
the guidance interval, and the deep-feature cache (pipelines.feature_cache) on a tiny random model."""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
import torch

from animate_anyone.pipelines.feature_cache import DeepFeatureCache
from animate_anyone.pipelines.pipeline_animate_anyone import AnimateAnyonePipeline
from animate_anyone.pipelines.presets import PRESETS, SamplingPreset, resolve_preset


@pytest.fixture(scope="module")
def pipe(tiny_model_dir):
    pipe = AnimateAnyonePipeline.from_pretrained(tiny_model_dir)
    pipe.set_progress_bar_config(disable=True)
    _randomise_temporal_layers(pipe.denoising_unet)
    return pipe


def _randomise_temporal_layers(unet) -> None:
    """init-model leaves the temporal layers identities; give them weights so that frames interact."""
    g = torch.Generator().manual_seed(5)
    for name, p in unet.named_parameters():
        if ".motion_modules." in name and "proj_out" in name:
            p.data = torch.randn(p.shape, generator=g) * 0.05


def inputs(frames=6):
    rng = np.random.default_rng(0)
    reference = PIL.Image.fromarray(rng.integers(0, 255, (64, 48, 3), dtype=np.uint8))
    return reference, rng.integers(0, 255, (frames, 64, 48, 3), dtype=np.uint8)


def run(pipe, frames=6, seed=0, **kw):
    reference, pose = inputs(frames)
    kw.setdefault("output_type", "latent")
    return pipe(reference, pose, height=64, width=48, generator=torch.Generator().manual_seed(seed), **kw)


def test_resolve_overrides_and_checks():
    fast = PRESETS["fast"]
    assert resolve_preset("fast") == fast and resolve_preset(None) == PRESETS["quality"] == SamplingPreset()
    mine = resolve_preset("fast", steps=8, cache_interval=None, guidance_interval=[0.1, 0.6])
    assert (mine.steps, mine.cache_interval, mine.guidance_interval, mine.scheduler) == (8, 2, (0.1, 0.6), "dpm++")
    for kw, message in [
        (dict(steps=0), "num_inference_steps"),
        (dict(guidance=-1.0), "guidance"),
        (dict(scheduler="heun"), "unknown scheduler 'heun'"),
        (dict(guidance_interval=(0.5, 0.5)), "0 <= start < end <= 1"),
        (dict(cache_interval=0), "cache_interval"),
        (dict(cache_depth=0), "cache_depth"),
        (dict(stepz=3), r"unknown preset setting\(s\) \['stepz'\]"),
    ]:
        with pytest.raises(ValueError, match=message):
            resolve_preset("quality", **kw)
    with pytest.raises(ValueError, match="unknown preset 'turbo'; choose one of quality, fast, student"):
        resolve_preset("turbo")


def test_costs_of_the_presets():
    """UNet rows per window over a video: what the fast preset saves against quality."""
    assert PRESETS["quality"].unet_rows() == (50, 0)
    full, shallow = PRESETS["fast"].unet_rows()
    assert full + shallow <= 50 / 2.5 and full < shallow + full
    assert PRESETS["student"].unet_rows() == (4, 0)
    interval = SamplingPreset(steps=10, guidance_interval=(0.2, 0.5))
    assert [interval.guided(i) for i in range(10)] == [i in (2, 3, 4) for i in range(10)]
    assert not SamplingPreset(steps=4, guidance=1.0).guided(0)


def test_speed_ups_off_is_exactly_the_plain_call(pipe):
    """The fast preset with caching and the interval switched off is the plain call with its steps and solver,
    which is the call as it was before presets existed (the scheduler swapped on the pipeline)."""
    from diffusers import DPMSolverMultistepScheduler

    off = run(pipe, preset="fast", cache_interval=1, guidance_interval=(0.0, 1.0)).frames
    original = pipe.scheduler
    pipe.scheduler = DPMSolverMultistepScheduler.from_config(original.config)
    try:
        before = run(pipe, num_inference_steps=12, guidance_scale=3.5).frames
    finally:
        pipe.scheduler = original
    assert torch.equal(off, before)
    assert torch.equal(run(pipe).frames, run(pipe, preset="quality").frames)  # the default preset


@pytest.mark.parametrize("preset", ["quality", "fast"])
def test_presets_are_deterministic_given_a_seed(pipe, preset):
    a = run(pipe, preset=preset, num_inference_steps=6)
    b = run(pipe, preset=preset, num_inference_steps=6)
    assert torch.equal(a.frames, b.frames) and a.stats == b.stats
    assert not torch.equal(a.frames, run(pipe, preset=preset, num_inference_steps=6, seed=1).frames)


def test_guidance_interval_runs_the_conditional_row_alone_outside_it(pipe):
    never = run(pipe, num_inference_steps=4, guidance_interval=(0.9, 1.0))  # steps at 0, .25, .5, .75: none guided
    unguided = run(pipe, num_inference_steps=4, guidance_scale=1.0)
    assert torch.equal(never.frames, unguided.frames)
    assert never.stats["full_rows"] == 4 and never.stats["shallow_rows"] == 0
    half = run(pipe, num_inference_steps=4, guidance_interval=(0.0, 0.5))
    assert half.stats["full_rows"] == 2 + 2 + 1 + 1
    assert not torch.equal(half.frames, unguided.frames)
    assert not torch.equal(half.frames, run(pipe, num_inference_steps=4).frames)


def test_cached_call_on_the_same_input_equals_the_full_call(pipe):
    """The skipping itself is exact: features kept from a call reproduce that call with the deep levels skipped."""
    unet = pipe.denoising_unet
    g = torch.Generator().manual_seed(0)
    f, frames = 4, torch.tensor([1, 2, 3, 4])
    sample = torch.randn(2, 4, f, 8, 6, generator=g)  # rows [uncond, cond]
    embeds = torch.randn(2, 1, unet.config.cross_attention_dim, generator=g)
    pose = torch.randn(2, unet.config.block_out_channels[0], f, 8, 6, generator=g)
    cache = DeepFeatureCache(unet, num_frames=6, depth=1)
    with torch.no_grad():
        with cache.call(frames, ("uncond", "cond"), reuse=True) as reused:  # nothing kept yet: runs whole
            full = unet(sample, 500, embeds, pose)
        assert not reused and cache.has(frames, ("cond",)) and not cache.has(torch.tensor([0]), ("cond",))
        with cache.call(frames, ("uncond", "cond"), reuse=True) as reused:
            cached = unet(sample, 500, embeds, pose)
        assert reused
        torch.testing.assert_close(cached, full, rtol=0, atol=1e-6)
        with cache.call(frames[1:3], ("cond",), reuse=True):  # a sub-window of the conditional row alone
            part = unet(sample[1:, :, 1:3], 500, embeds[1:], pose[1:, :, 1:3])
        plain = unet(sample[1:, :, 1:3], 500, embeds[1:], pose[1:, :, 1:3])
        # Different temporal context in the deep levels than a whole call on those frames, but the same shapes.
        assert part.shape == plain.shape and not torch.equal(part, plain)
        # A new timestep, reusing: only the outer level sees it.
        with cache.call(frames, ("uncond", "cond"), reuse=True):
            later = unet(sample, 400, embeds, pose)
        assert not torch.allclose(later, full)
    # The blocks' own forward is back after every call.
    assert all("forward" not in vars(block) for block in [*unet.down_blocks, unet.mid_block, *unet.up_blocks])


def test_cache_counts_and_long_videos(pipe):
    """Caching on shifted windows over a long video: refresh steps run whole, the others shallow; the result
    differs from the uncached one but stays close (random weights: only a sanity bound)."""
    kw = dict(frames=11, num_inference_steps=4, context_frames=4, context_overlap=1)
    cached = run(pipe, cache_interval=2, **kw)
    plain = run(pipe, **kw)
    windows = cached.stats["full_rows"] + cached.stats["shallow_rows"]
    assert windows == plain.stats["full_rows"] and cached.stats["shallow_rows"] > 0
    assert cached.stats["full_rows"] < plain.stats["full_rows"]
    assert cached.frames.shape == plain.frames.shape and not torch.equal(cached.frames, plain.frames)
    assert torch.isfinite(cached.frames).all()
    with pytest.raises(ValueError, match="cache_depth must be between 1 and"):
        run(pipe, cache_interval=2, cache_depth=5, num_inference_steps=2)
    pipe.set_optimisations(window_batch=2)  # caching goes window by window: the same result
    try:
        assert torch.equal(run(pipe, cache_interval=2, **kw).frames, cached.frames)
    finally:
        pipe.set_optimisations(window_batch=1)


def test_animate_command_takes_a_preset_and_overrides(tmp_path, tiny_model_dir):
    from animate_anyone.cli.main import main
    from animate_anyone.cli.synthetic import parse_sampling
    from animate_anyone.media import probe_frames, write_video

    reference, pose = inputs(frames=3)
    reference.save(tmp_path / "ref.png")
    write_video(tmp_path / "pose", list(pose), 8.0)
    argv = ["animate", "--model", str(tiny_model_dir), "--reference", str(tmp_path / "ref.png")]
    argv += ["--pose", str(tmp_path / "pose"), "--quiet", "--preset", "fast", "--steps", "3"]
    assert main([*argv, "--out", str(tmp_path / "out.gif"), "cache_interval=3", "guidance_interval=[0,0.4]"]) == 0
    assert probe_frames(tmp_path / "out.gif").num_frames == 3
    # A bad setting is named before the model loads.
    assert main([*argv, "--out", str(tmp_path / "bad.gif"), "guidance_interval=[0.5,0.2]"]) == 2
    assert not (tmp_path / "bad.gif").exists()
    assert parse_sampling(["cache_interval=1", "guidance_interval=[0, 0.5]"]) == {
        "cache_interval": 1,
        "guidance_interval": [0, 0.5],
    }
    with pytest.raises(ValueError, match="expected key=value"):
        parse_sampling(["cache_interval"])
    with pytest.raises(ValueError, match="unknown preset setting"):
        parse_sampling(["steps_per_frame=2"])
