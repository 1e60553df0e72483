"""Sampling settings and presets (pipelines.settings): resolution and checks, determinism, exactness with the
speed-ups off, the guidance interval, and the deep-feature cache (pipelines.feature_cache) on a tiny random model."""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
import torch

from animate_anyone.pipelines.feature_cache import DeepFeatureCache
from animate_anyone.pipelines.pipeline_animate_anyone import AnimateAnyonePipeline
from animate_anyone.pipelines.settings import PRESETS, ModelDefaults, SamplingRequest, SamplingSettings, SettingError


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


def run(pipe, frames=6, seed=0, sampling=None, output_type="latent", **fields):
    """``sampling`` (settings or a request) or the request's ``fields``."""
    reference, pose = inputs(frames)
    request = sampling if sampling is not None else SamplingRequest(**fields)
    g = torch.Generator().manual_seed(seed)
    return pipe(reference, pose, request, height=64, width=48, generator=g, output_type=output_type)


def test_resolve_overrides_and_checks():
    fast = PRESETS["fast"]
    assert SamplingRequest(preset="fast").resolve() == fast
    assert SamplingRequest().resolve() == PRESETS["quality"] == SamplingSettings()
    assert SamplingRequest().resolve(ModelDefaults(preset="student")) == PRESETS["student"]  # the model's own
    phased = ModelDefaults(preset="student", student_steps=2)  # a phased student: its preset takes its steps
    assert SamplingRequest().resolve(phased).steps == 2 and SamplingRequest(steps=3).resolve(phased).steps == 3
    assert SamplingRequest(preset="quality").resolve(phased).steps == 25
    mine = SamplingRequest(preset="fast", steps=8, cache_interval=None, guidance_interval=[0.1, 0.6]).resolve()
    assert (mine.steps, mine.cache_interval, mine.guidance_interval, mine.scheduler) == (8, 2, (0.1, 0.6), "dpm++")
    assert (mine.context_frames, mine.context_overlap, mine.window_mode) == (24, 4, "shifted")  # presets set none
    for kw, message in [
        (dict(steps=0), "steps 0: must be a whole number >= 1"),
        (dict(steps=2.5), "steps 2.5: must be a whole number"),
        (dict(guidance=-1.0), "guidance -1.0: must be a finite number >= 0"),
        (dict(guidance=float("nan")), "guidance nan: must be a finite"),
        (dict(scheduler="heun"), "scheduler heun: must be one of model, ddim"),
        (
            dict(guidance_interval=(0.5, 0.5)),
            r"guidance_interval \[0.5, 0.5\]: must be \[start, end\] with 0 <= start < end",
        ),
        (dict(cache_interval=0), "cache_interval 0: must be a whole number >= 1"),
        (dict(cache_depth=0), "cache_depth 0: must be a whole number >= 1"),
        (dict(context_frames=0), "context_frames 0: must be a whole number >= 1"),
        (dict(context_frames=8, context_overlap=8), r"context_overlap 8: .* less than context_frames \(8\)"),
        (dict(window_mode="loop"), "window_mode loop: must be one of shifted, moore, anchored"),
        (dict(preset="turbo"), "preset turbo: must be one of quality, fast, student"),
    ]:
        with pytest.raises(SettingError, match=message):
            SamplingRequest(**kw).resolve()
    with pytest.raises(ValueError, match=r"unknown sampling setting\(s\) \['stepz'\]"):
        SamplingRequest.of({"stepz": 3})
    # The model's limits: the UNet's levels and the temporal layers' length.
    limits = ModelDefaults(levels=3, max_window=16)
    assert SamplingRequest(cache_depth=2, context_frames=16).resolve(limits).cache_depth == 2
    with pytest.raises(SettingError, match="cache_depth 3: must be less than the denoising UNet's 3 levels"):
        SamplingRequest(cache_depth=3).resolve(limits)
    with pytest.raises(SettingError, match="context_frames 24: exceeds .* limit of 16 frames"):
        SamplingRequest().resolve(limits)
    error = SettingError("steps", 0, "must be a whole number >= 1").named({"steps": "--steps"})
    assert str(error) == "--steps 0: must be a whole number >= 1" and error.field == "steps"


def test_plan_of_the_fast_preset_written_out():
    """The fast preset step by step, written out by hand from its definition (12 steps, guided while i/12 < 0.5,
    whole UNet every 2nd step): what the sampler runs and what its cost is counted from."""
    R, S = True, False
    both, cond = ("uncond", "cond"), ("cond",)
    expected = [  # (kinds, refresh, grid step, kinds kept for the next step)
        (both, R, 0, both),
        (both, S, 0, ()),
        (both, R, 2, both),
        (both, S, 2, ()),
        (both, R, 4, both),
        (both, S, 4, ()),
        (cond, R, 6, cond),
        (cond, S, 6, ()),
        (cond, R, 8, cond),
        (cond, S, 8, ()),
        (cond, R, 10, cond),
        (cond, S, 10, ()),
    ]
    assert [(s.kinds, s.refresh, s.grid, s.keep) for s in PRESETS["fast"].plan] == expected
    assert PRESETS["fast"].unet_rows() == (3 * 2 + 3 * 1, 3 * 2 + 3 * 1)  # (9, 9)
    assert PRESETS["quality"].unet_rows() == (50, 0) and PRESETS["student"].unet_rows() == (4, 0)
    interval = SamplingSettings(steps=10, guidance_interval=(0.2, 0.5))
    assert [s.guided for s in interval.plan] == [i in (2, 3, 4) for i in range(10)]
    assert not any(s.guided for s in SamplingSettings(steps=4, guidance=1.0).plan)


def test_a_guided_step_after_an_unguided_refresh_refreshes():
    """Guidance starting on a cached step: its refresh step kept no unconditional features, so it runs whole,
    and the cost says so (it used to run whole silently while unet_rows() counted it shallow)."""
    late = SamplingSettings(steps=8, guidance_interval=(0.375, 1.0), cache_interval=2)  # guided from step 3 on
    plan = late.plan
    assert [s.refresh for s in plan] == [True, False, True, True, True, False, True, False]
    assert plan[2].keep == () and plan[3].keep == () and plan[4].keep == ("uncond", "cond")
    assert late.unet_rows() == (1 + 1 + 2 + 2 + 2, 1 + 2 + 2)


def test_unet_rows_match_the_calls_the_unet_sees(pipe):
    """unet_rows() x windows against an independent count: the batch rows of every UNet call, and whether the
    deep levels ran (the mid-block's first resnet is skipped in a shallow call)."""
    unet = pipe.denoising_unet
    calls, deep = [], []  # rows of each UNet call; the calls (1-based) in which the deep levels ran
    hooks = [
        unet.register_forward_pre_hook(lambda m, args: calls.append(args[0].shape[0])),
        unet.mid_block.resnets[0].register_forward_pre_hook(lambda m, args: deep.append(len(calls))),
    ]
    try:
        for settings in [PRESETS["fast"], SamplingSettings(steps=8, guidance_interval=(0.375, 1.0), cache_interval=2)]:
            calls.clear(), deep.clear()
            out = run(pipe, frames=6, sampling=settings)
            full = sum(rows for i, rows in enumerate(calls, start=1) if i in deep)
            shallow = sum(rows for i, rows in enumerate(calls, start=1) if i not in deep)
            assert (full, shallow) == settings.unet_rows()  # one window of 6 frames
            assert (out.stats["full_rows"], out.stats["shallow_rows"]) == (full, shallow)
    finally:
        for h in hooks:
            h.remove()


def test_speed_ups_off_is_exactly_the_plain_call(pipe):
    """The fast preset with caching and the interval switched off is the plain call with its steps and solver,
    which is the call as it was before presets existed (the scheduler swapped on the pipeline)."""
    from diffusers import DPMSolverMultistepScheduler

    off = run(pipe, preset="fast", cache_interval=1, guidance_interval=(0.0, 1.0)).frames
    original = pipe.scheduler
    pipe.scheduler = DPMSolverMultistepScheduler.from_config(original.config)
    try:
        before = run(pipe, steps=12, guidance=3.5).frames
    finally:
        pipe.scheduler = original
    assert torch.equal(off, before)
    assert torch.equal(run(pipe).frames, run(pipe, preset="quality").frames)  # the default preset


@pytest.mark.parametrize("preset", ["quality", "fast"])
def test_presets_are_deterministic_given_a_seed(pipe, preset):
    a = run(pipe, preset=preset, steps=6)
    b = run(pipe, preset=preset, steps=6)
    assert torch.equal(a.frames, b.frames) and a.stats == b.stats
    assert not torch.equal(a.frames, run(pipe, preset=preset, steps=6, seed=1).frames)


def test_guidance_interval_runs_the_conditional_row_alone_outside_it(pipe):
    never = run(pipe, steps=4, guidance_interval=(0.9, 1.0))  # steps at 0, .25, .5, .75: none guided
    unguided = run(pipe, steps=4, guidance=1.0)
    assert torch.equal(never.frames, unguided.frames)
    assert never.stats["full_rows"] == 4 and never.stats["shallow_rows"] == 0
    half = run(pipe, steps=4, guidance_interval=(0.0, 0.5))
    assert half.stats["full_rows"] == 2 + 2 + 1 + 1
    assert not torch.equal(half.frames, unguided.frames)
    assert not torch.equal(half.frames, run(pipe, steps=4).frames)


def bytes_kept(cache: DeepFeatureCache) -> int:
    return sum(t.numel() * t.element_size() for t in cache.features.values())


def _unet_inputs(pipe, frames=4, seed=0):
    """Rows [uncond, cond] of one window, with a real reference bank for the conditional row."""
    unet, model = pipe.denoising_unet, pipe.model
    g = torch.Generator().manual_seed(seed)
    sample = torch.randn(2, unet.config.in_channels, frames, 8, 6, generator=g)
    embeds = torch.randn(1, 1, unet.config.cross_attention_dim, generator=g)
    pose = torch.randn(1, unet.config.block_out_channels[0], frames, 8, 6, generator=g)
    bank = model.encode_reference(torch.randn(1, unet.config.in_channels, 8, 6, generator=g), embeds)
    args = (torch.cat([torch.zeros_like(embeds), embeds]), torch.cat([pose, pose]), bank, slice(1, 2))
    return sample, args


@torch.no_grad()
def test_a_cached_call_substitutes_exactly_the_kept_deep_features(pipe):
    """On the input its features came from, a cached call reproduces the whole call (reference bank in use); on
    a new input and timestep it equals the whole call with the kept features put in place of the deep levels'
    output by a hook: the outer levels see the new input, the deep levels are the refresh step's."""
    unet = pipe.denoising_unet
    sample, args = _unet_inputs(pipe)
    cache = DeepFeatureCache(unet, depth=1)
    cache.refresh(keep=("uncond", "cond"))
    window = range(1, 5)  # frames 1..4 of the video
    with cache.call(window, ("uncond", "cond"), reuse=False) as reused:
        full = unet(sample, 500, *args)
    assert not reused and bytes_kept(cache) > 0
    assert all(t.device.type == "cpu" for t in cache.features.values())  # held on the host
    with cache.call(window, ("uncond", "cond"), reuse=True) as reused:
        cached = unet(sample, 500, *args)
    assert reused
    torch.testing.assert_close(cached, full, rtol=0, atol=1e-6)
    # A new input and timestep: the independent construction with a hook on the boundary block's upsampler.
    kept = torch.cat([cache.features[(1, 2, 3, 4), "uncond"], cache.features[(1, 2, 3, 4), "cond"]])
    new = sample + torch.randn(sample.shape, generator=torch.Generator().manual_seed(9))
    with cache.call(window, ("uncond", "cond"), reuse=True):
        later = unet(new, 400, *args)
    upsampler = cache.boundary.upsamplers[0]
    handle = upsampler.register_forward_pre_hook(lambda m, a, kw: ((), {**kw, "hidden_states": kept}), with_kwargs=True)
    try:
        substituted = unet(new, 400, *args)
    finally:
        handle.remove()
    torch.testing.assert_close(later, substituted, rtol=0, atol=1e-6)
    assert (later - unet(new, 400, *args)).abs().max() > 1e-3  # the deep levels did matter
    # The conditional row alone reuses its own kind; a window or kind that kept nothing is an error, not a rerun.
    with cache.call(window, ("cond",), reuse=True):
        cond = unet(sample[1:], 500, args[0][1:], args[1][1:], args[2])
    torch.testing.assert_close(cond, full[1:], rtol=0, atol=1e-5)
    with pytest.raises(RuntimeError, match=r"the window of frames 2\.\.5 kept no \['cond'\]"):
        with cache.call(range(2, 6), ("cond",), reuse=True):  # another window: nothing kept for it
            pass
    # The blocks' own forward is back after every call.
    assert all("forward" not in vars(block) for block in [*unet.down_blocks, unet.mid_block, *unet.up_blocks])


def test_cache_keeps_one_grid_of_the_kinds_still_needed(pipe, monkeypatch):
    """Long video, shifted windows, guidance up to step 4 of 12 and the UNet whole every 2nd step: the cache
    never holds more than one refresh step's windows, keeps the unconditional rows only while a later shallow step
    is guided (step 4 is guided, step 5 is not), and every shallow step runs on exactly the windows of its refresh
    step (a window of another grid would find nothing kept)."""
    kept = []  # (kinds kept, bytes, windows) at the start of each refresh, before it forgets
    refresh = DeepFeatureCache.refresh

    def probe(self, keep):
        kept.append(({kind for _, kind in self.features}, bytes_kept(self), len({w for w, _ in self.features})))
        refresh(self, keep)

    monkeypatch.setattr(DeepFeatureCache, "refresh", probe)
    settings = SamplingSettings(
        steps=12, scheduler="dpm++", guidance_interval=(0.0, 0.4), cache_interval=2, context_frames=4, context_overlap=1
    )
    out = run(pipe, frames=11, sampling=settings)
    windows = out.stats["windows"]
    assert [windows[i] for i in range(1, 12, 2)] == [windows[i] for i in range(0, 12, 2)]  # same grid
    per_window_row = 4 * 32 * 4 * 3 * 4  # 4 frames x 32 channels (tiny's middle level) at 4x3, before upsampling, fp32
    both, cond = {"uncond", "cond"}, {"cond"}
    assert [k for k, _, _ in kept] == [set(), both, both, cond, cond, cond]
    assert all(n <= max(windows) for _, _, n in kept)
    assert max(b for _, b, _ in kept) <= max(windows) * 2 * per_window_row


def test_cached_video_stays_close_to_the_uncached_one(mini_pipe):
    """The packaged (trained) model on 14 frames in 3 windows of 6: the fast preset (6 steps) with its cache
    against the same schedule without it, measured against what another seed changes."""
    reference, poses = mini_pipe["clip"]
    kw = dict(context_frames=6, context_overlap=2, preset="fast", steps=6)

    def latents(seed=0, **extra):
        g = torch.Generator().manual_seed(seed)
        request = SamplingRequest(**kw, **extra)
        return mini_pipe["pipe"](reference, poses, request, generator=g, output_type="latent").frames

    cached, plain, other = latents(), latents(cache_interval=1), latents(seed=1, cache_interval=1)
    assert (cached - plain).abs().mean() < 0.3 * (other - plain).abs().mean()
    assert not torch.equal(cached, plain)


@pytest.fixture(scope="module")
def mini_pipe():
    from animate_anyone.assets import packaged_model
    from animate_anyone_lab.demo import demo_clip

    pipe = AnimateAnyonePipeline.from_pretrained(packaged_model())
    pipe.set_progress_bar_config(disable=True)
    reference, _, poses = demo_clip(0, 14, 64)
    return {"pipe": pipe, "clip": (PIL.Image.fromarray(reference), poses)}


def test_window_batching_gives_way_to_the_cache(pipe):
    kw = dict(frames=11, steps=4, context_frames=4, context_overlap=1, cache_interval=2)
    cached = run(pipe, **kw)
    with pytest.raises(SettingError, match="cache_depth 5: must be less than the denoising UNet's 3 levels"):
        run(pipe, cache_interval=2, cache_depth=5, steps=2)
    pipe.set_optimisations(window_batch=2)  # caching goes window by window: the same result
    try:
        assert torch.equal(run(pipe, **kw).frames, cached.frames)
    finally:
        pipe.set_optimisations(window_batch=1)


def test_animate_command_takes_a_preset_and_overrides(tmp_path, tiny_model_dir):
    from animate_anyone.cli.flags import sampling_request
    from animate_anyone.cli.main import main, parse
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

    def request(*words):  # synthetic predict's request: the same flags and key=value names as animate's
        return sampling_request(parse(["synthetic", "predict", "--model", "m", "--data", "d", "-o", "o", *words]))

    got = request("--steps", "3", "--guidance-interval", "0,0.5", "cache_interval=1")
    assert got == SamplingRequest(steps=3, cache_interval=1, guidance_interval=(0, 0.5))
    assert request("guidance_interval=[0, 0.5]", "--steps=3").guidance_interval == (0, 0.5)
    with pytest.raises(ValueError, match="'cache_interval' must look like key.sub=value"):
        request("cache_interval")
    with pytest.raises(ValueError, match="steps_per_frame"):
        request("steps_per_frame=2")


@pytest.fixture(scope="module")
def student_dir(tiny_model_dir, tmp_path_factory):
    """The tiny model marked as a distilled student (what `train distill` records in model_index.json)."""
    import json
    import shutil

    path = tmp_path_factory.mktemp("student") / "model"
    shutil.copytree(tiny_model_dir, path)
    index = json.loads((path / "model_index.json").read_text())
    (path / "model_index.json").write_text(json.dumps({**index, "default_preset": "student"}))
    return path


@pytest.mark.parametrize(
    "model, flags, warning",
    [
        ("teacher", ["--preset", "student"], "preset student is for a model distilled with `train distill`"),
        ("student", ["--preset", "quality"], "preset quality on a distilled student .*: guidance 3.5 applies"),
        ("student", ["--preset", "fast"], "preset fast on a distilled student .*scheduler dpm\\+\\+ .*cache_interval"),
        ("student", ["--preset", "student", "--guidance", "3.5"], "preset student on a distilled .*guidance 3.5"),
        ("teacher", [], None),
        ("teacher", ["--preset", "fast"], None),
        ("student", [], None),
    ],
)
def test_presets_that_do_not_suit_the_model_warn_in_one_line(
    model, flags, warning, tiny_model_dir, student_dir, tmp_path, capsys
):
    import re

    from animate_anyone.cli.main import main
    from animate_anyone.media import write_video

    reference, pose = inputs(frames=1)
    reference.save(tmp_path / "ref.png")
    write_video(tmp_path / "pose", list(pose), 8.0)
    directory = tiny_model_dir if model == "teacher" else student_dir
    argv = ["animate", "--model", str(directory), "--reference", str(tmp_path / "ref.png"), "--quiet"]
    argv += ["--pose", str(tmp_path / "pose"), "--out", str(tmp_path / "out.gif"), "--steps", "1", *flags]
    assert main(argv) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "warning:" in line and "random" not in line]
    if warning is None:
        assert lines == []
    else:
        assert len(lines) == 1 and lines[0].startswith("animate-anyone animate: warning: "), lines
        assert re.search(warning, lines[0]), lines[0]


def test_a_compiled_unet_runs_cached_videos_eagerly_and_says_so(pipe):
    """Swapped block forwards and capture hooks are not what a torch.compile graph was traced with: the cached
    calls bypass the compiled UNet (no compilation happens: this test takes seconds, not the minutes a compile
    takes) and give the eager video; the pipeline warns once that compile does not apply."""
    import time
    import warnings

    from animate_anyone.pipelines.settings import SettingsWarning

    kw = dict(preset="fast", steps=4, frames=4)
    eager = run(pipe, **kw).frames
    pipe.set_optimisations(compile=True)
    try:
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            compiled = run(pipe, **kw).frames
        seconds = time.perf_counter() - start
    finally:
        pipe.set_optimisations(compile=False)
    assert torch.equal(compiled, eager) and seconds < 30
    messages = [str(w.message) for w in caught if issubclass(w.category, SettingsWarning)]
    assert len(messages) == 1 and "runs the denoising UNet uncompiled" in messages[0]
