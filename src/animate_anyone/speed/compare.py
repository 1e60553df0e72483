"""Entry points: one configuration (``run_benchmark``), or the default against each optimisation toggled
(``run_comparison``), measured round-robin on one pipeline."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ..pipelines.optimisations import SWITCHES
from .config import BenchConfig
from .runner import Bench


def run_benchmark(
    size: str = "tiny", *, threads: int | None = None, log: Callable[[str], None] | None = None, **kwargs
) -> dict[str, Any]:
    """Build a ``size`` model with random weights and benchmark one configuration (``kwargs``: the fields of
    ``BenchConfig``). Returns a JSON-ready dict: config, environment, seconds per step (median over all steps of
    the timed repeats), seconds per output frame end to end and by stage, memory, FLOPs per step, achieved
    TFLOP/s and (bf16/fp16 on a known GPU) MFU. See docs/performance.md."""
    if threads:
        torch.set_num_threads(threads)
    cfg = BenchConfig(size=size, **kwargs).resolved()
    return Bench(size, cfg.device, cfg.dtype, cfg.seed).run(cfg, log=log)


def run_comparison(
    size: str = "tiny",
    variants: list[str] | None = None,
    log: Callable[[str], None] | None = None,
    threads: int | None = None,
    **kwargs,
) -> dict[str, Any]:
    """The default configuration and, on the same pipeline, each optimisation toggled (``variants``: switch
    names; default: all), plus all windows of a step in one UNet call when a step has several windows. Each
    variant reports ``speedup`` = seconds without the optimisation / seconds with it (> 1: it helps) and the
    largest difference of its outputs from the default's (final latents, decoded uint8 frames). With
    ``compile=True`` everything is compiled, and the default without compilation is measured afterwards."""
    if threads:
        torch.set_num_threads(threads)
    log = log or (lambda msg: None)
    cfg = BenchConfig(size=size, **kwargs).resolved()
    opts = cfg.optimisations
    base = opts.switches()
    bench = Bench(size, cfg.device, cfg.dtype, cfg.seed)
    # 1. The variants: (name, description, config, whether the variant is the one WITH the optimisation).
    plan: list[tuple[str, str, BenchConfig, bool]] = []
    for name in variants if variants is not None else list(SWITCHES):
        if name not in SWITCHES:
            raise ValueError(f"unknown optimisation switch {name!r}; known: {sorted(SWITCHES)}")
        toggled = cfg.replace(optimisations=opts.with_switches({name: not base[name]}))
        plan.append((name, SWITCHES[name], toggled, not base[name]))
    windows = bench.windows_per_step(cfg)[0]
    if variants is None and opts.window_batch == 1 and windows > 1:
        batch = math.ceil(windows)
        batched = cfg.replace(optimisations=dataclasses.replace(opts, window_batch=batch))
        plan.append(("window_batch", f"all windows of a step in one UNet call (window_batch={batch})", batched, True))
    # 2. Measure them together with the default; then, with compile, the default without it.
    results = bench.run_interleaved([cfg, *(p[2] for p in plan)], keep_outputs=True, log=log)
    default, measured = results[0], results[1:]
    if opts.compile:
        log("default configuration without torch.compile")
        eager = cfg.replace(optimisations=dataclasses.replace(opts, compile=False))
        plan.append(("compile", "torch.compile of the denoising UNet", eager, False))
        measured.append(bench.run(plan[-1][2], keep_outputs=True, log=log))
    base_out = default.pop("_outputs")
    entries = [
        _entry(name, description, has_it, default, res, base_out)
        for (name, description, _, has_it), res in zip(plan, measured)
    ]
    return {"schema": 2, "default": default, "variants": entries}


def _entry(name: str, description: str, variant_has_it: bool, default: dict, res: dict, base_out: dict) -> dict:
    out = res.pop("_outputs")
    with_opt, without_opt = (res, default) if variant_has_it else (default, res)
    return {
        "name": name,
        "description": description,
        "optimisation_in_default": not variant_has_it,
        "speedup_per_step": without_opt["seconds_per_step"] / with_opt["seconds_per_step"],
        "speedup_per_frame": without_opt["seconds_per_frame"] / with_opt["seconds_per_frame"],
        "speedup_by_stage": {
            s: without_opt["stages"][s]["seconds"] / max(with_opt["stages"][s]["seconds"], 1e-12)
            for s in default["stages"]
        },
        "max_abs_diff_latents": float((out["latents"] - base_out["latents"]).abs().max()),
        "max_abs_diff_frames_uint8": int(
            np.abs(out["frames"].astype(np.int16) - base_out["frames"].astype(np.int16)).max()
        ),
        "result": res,
    }


def run_preset_comparison(
    size: str = "tiny",
    presets: list[str] | None = None,
    log: Callable[[str], None] | None = None,
    threads: int | None = None,
    **kwargs,
) -> dict[str, Any]:
    """The quality preset (the default) and each other sampling preset (``presets``; default: all of them),
    measured round-robin on one pipeline. Each reports ``speedup_per_video`` = quality's seconds end to end / the
    preset's, and its UNet rows. With random weights the ``student`` row prices a distilled model's sampling (4
    unguided steps cost the same whatever the weights); its quality is measured in docs/benchmark.md.
    A preset, ``steps`` or ``guidance`` in the request (``kwargs["sampling"]``) would override every preset alike,
    so they are refused; its windows apply to all, and its ``decoder`` to every preset but quality, the reference,
    which keeps the VAE's decode (as ``count_presets_work``)."""
    from ..pipelines.settings import PRESETS, SamplingRequest, SettingError

    if threads:
        torch.set_num_threads(threads)
    log = log or (lambda msg: None)
    request = kwargs.pop("sampling", None) or SamplingRequest()
    for key in ("steps", "guidance", "preset"):
        if getattr(request, key) is not None:
            raise SettingError(
                key, getattr(request, key), "the preset comparison runs each preset with its own settings; leave it out"
            )
    names = presets if presets is not None else [p for p in PRESETS if p != "quality"]
    unknown = sorted(set(names) - set(PRESETS))
    if unknown:
        raise ValueError(f"unknown preset(s) {unknown}; known: {', '.join(PRESETS)}")
    quality = {**kwargs, "decoder": "vae"}
    cfg = BenchConfig(size=size, sampling=dataclasses.replace(request, preset="quality"), **quality).resolved()
    bench = Bench(size, cfg.device, cfg.dtype, cfg.seed)
    plan = [BenchConfig(size, dataclasses.replace(request, preset=name), **kwargs).resolved() for name in names]
    results = bench.run_interleaved([cfg, *plan], log=log)
    default = results[0]
    entries = [
        {
            "name": name,
            "speedup_per_video": default["seconds_end_to_end"] / res["seconds_end_to_end"],
            "work_ratio_modelled": default["flops_per_video"]["total"] / res["flops_per_video"]["total"],
            "speedup_denoising": default["stages"]["denoising"]["seconds"] / res["stages"]["denoising"]["seconds"],
            "result": res,
        }
        for name, res in zip(names, results[1:])
    ]
    return {"schema": 2, "default": default, "presets": entries}


def count_presets_work(
    size: str = "sd15",
    width: int | None = None,
    height: int | None = None,
    frames: int | None = None,
    presets: list[str] | None = None,
    context_frames: int | None = None,
    context_overlap: int | None = None,
    window_mode: str | None = None,
    ref_kv_cache: bool = True,
    steps: int | None = None,
    guidance: float | None = None,
    decoder: str = "vae",
) -> dict[str, Any]:
    """The modelled work of one video with each sampling preset (``presets``; default all; the windows: None is
    ``SamplingSettings``' default; ``steps`` / ``guidance``: instead of the preset's, for one named preset;
    quality, the reference of the ratios, keeps its own unless it is the one named; ``decoder``: "light" counts the
    presets' decode with a light decoder, quality's with the VAE), counted on the meta
    device at full network size in seconds and nothing run (``flops.count_video_work_meta``): FLOPs by stage and
    the ratio of quality's total to each preset's."""
    from ..pipelines.settings import PRESETS, SamplingRequest
    from .flops import count_video_work_meta

    windows = dict(context_frames=context_frames, context_overlap=context_overlap, window_mode=window_mode)
    cfg = BenchConfig(size=size, sampling=SamplingRequest(**windows), width=width, height=height, frames=frames)
    cfg = cfg.resolved()
    names = presets or list(PRESETS)
    if (steps is not None or guidance is not None) and len(names) != 1:
        raise ValueError("steps / guidance replace one preset's; name that preset")
    asked = {names[0]: dict(steps=steps, guidance=guidance)} if len(names) == 1 else {}
    work = {
        name: count_video_work_meta(
            size,
            cfg.width,
            cfg.height,
            cfg.frames,
            SamplingRequest(preset=name, **windows, **asked.get(name, {})).resolve(),
            ref_kv_cache,
            decoder if name != "quality" or "quality" in asked else "vae",
        )
        for name in dict.fromkeys([*names, "quality"])
    }
    quality = work["quality"] if "quality" in names else work.pop("quality")
    ratio = {name: quality["flops"]["total"] / w["flops"]["total"] for name, w in work.items()}
    return {"schema": 1, "kind": "modelled (meta-device FLOP count)", "work": work, "ratio_to_quality": ratio}
