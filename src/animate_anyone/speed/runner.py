"""The benchmark runner: a model of a named size with random weights, run through the real pipeline.

``Bench`` builds an ``AnimateAnyonePipeline`` once and times its ``__call__`` under any number of
configurations (optimisations are switched with ``pipe.set_optimisations``). The stages are timed through the
pipeline's hooks (``StageTimer``), so there is no second copy of the pipeline to drift from the real one.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from ..pipelines.pipeline_animate_anyone import STAGES as PIPELINE_STAGES
from ..pipelines.pipeline_animate_anyone import PipelineHooks
from ..pipelines.settings import SettingsWarning
from .config import BenchConfig
from .environment import MemoryProbe, environment
from .flops import count_unet_flops_meta, count_video_work_meta, peak_tflops

STAGES = (*PIPELINE_STAGES, "other")  # "other": the rest of the call (input checks, pose resizing, initial noise)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class StageTimer(PipelineHooks):
    """Wall time of each pipeline stage (CUDA: synchronised at stage and step boundaries, never inside a step;
    the Pose Guider, which runs inside steps, is timed with CUDA events instead)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.seconds: dict[str, float] = defaultdict(float)
        self.denoising_start: float | None = None
        self.step_ends: list[float] = []
        self.pose: list[tuple[int, Any, Any]] = []  # (step, start, end): perf_counter values or CUDA events
        self.latents: torch.Tensor | None = None

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if name == "pose_guider":
            yield from self._pose_stage()
            return
        _sync(self.device)
        start = time.perf_counter()
        if name == "denoising":
            self.denoising_start = start
        yield
        _sync(self.device)
        self.seconds[name] += time.perf_counter() - start

    def _pose_stage(self) -> Iterator[None]:
        if self.device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            yield
            end.record()
        else:
            start = time.perf_counter()
            yield
            end = time.perf_counter()
        self.pose.append((len(self.step_ends), start, end))

    def step_end(self, step: int, latents: torch.Tensor) -> None:
        _sync(self.device)
        self.step_ends.append(time.perf_counter())
        self.latents = latents

    def result(self, total: float) -> dict[str, Any]:
        """Seconds by stage (denoising without the Pose Guider; ``other``: the rest of the call: input checks,
        pose resizing, initial noise), per step (without the Pose Guider) and in total."""
        _sync(self.device)
        pose_by_step = [0.0] * len(self.step_ends)
        for step, start, end in self.pose:
            seconds = start.elapsed_time(end) / 1000 if self.device.type == "cuda" else end - start
            pose_by_step[min(step, len(pose_by_step) - 1)] += seconds
        starts = [self.denoising_start, *self.step_ends[:-1]]
        steps = [end - start - p for start, end, p in zip(starts, self.step_ends, pose_by_step)]
        out = {
            "reference": self.seconds["reference"],
            "pose_guider": sum(pose_by_step),
            "denoising": self.seconds["denoising"] - sum(pose_by_step),
            "vae_decode": self.seconds["vae_decode"],
        }
        out["other"] = max(0.0, total - sum(out.values()))
        return {**out, "total": total, "steps": steps}


def randomise_zero_parameters(model: torch.nn.Module, std: float = 0.02) -> None:
    """Random values for the zero-initialised parameters (Pose Guider output, temporal projections), so the
    benchmark's outputs exercise every layer (the optimisation checks compare them)."""
    g = torch.Generator(device="cpu").manual_seed(1234)
    with torch.no_grad():
        for p in model.parameters():
            if p.device.type != "meta" and not bool(p.detach().any()):
                p.copy_(torch.randn(p.shape, generator=g) * std)


class Bench:
    """A pipeline of a named size with random weights, built once and run under any number of configurations
    of the same size, device and dtype (``run_comparison`` reuses it for every variant)."""

    def __init__(
        self, size: str = "tiny", device: str | torch.device = "auto", dtype: str | torch.dtype = "auto", seed: int = 0
    ):
        from ..devices import resolve_device, resolve_dtype
        from ..model_dir import vae_scale_factor
        from ..models import NETWORKS, LightDecoder
        from ..models.sizes import build_components, build_networks, get_size
        from ..pipelines.loading import load_pipeline

        self.size, self.preset = size, get_size(size)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        torch.manual_seed(seed)
        t0 = time.perf_counter()
        build_on = self.device if self.device.type == "cuda" else "cpu"
        model = build_networks(self.preset.networks(), device=build_on).eval()
        randomise_zero_parameters(model)
        model.to(self.device, self.dtype)
        components = build_components(self.preset)
        for component in components.values():
            if isinstance(component, torch.nn.Module):
                component.to(self.device).eval()
                if component.dtype != self.dtype:
                    component.to(self.dtype)
        # a light decoder of TAESD's size (models.LightDecoder's defaults), for the runs with decoder="light"
        factor = vae_scale_factor(self.preset.vae)
        components["light_decoder"] = LightDecoder(self.preset.vae["latent_channels"], 3, factor).to(self.device).eval()
        networks = {name: getattr(model, name) for name in NETWORKS}
        self.pipe = load_pipeline({**networks, **components}, self.device, self.dtype, progress=False)
        self.build_seconds = time.perf_counter() - t0
        self._work: dict[tuple, dict[str, Any]] = {}

    # -- one configuration ---------------------------------------------------------------------------------
    def sampling(self, cfg: BenchConfig):
        """The sampling settings of a run of ``cfg`` on this model, passed whole to the pipeline."""
        with warnings.catch_warnings():  # random weights: the student preset is priced, not judged (SettingsWarning)
            warnings.simplefilter("ignore", SettingsWarning)
            return self.pipe.sampling_settings(cfg.sampling)

    def windows_per_step(self, cfg: BenchConfig) -> tuple[float, float, int]:
        """(windows per step, UNet calls per step, window length), averaged over the steps of the schedule."""
        from ..pipelines.sampling import _window_groups, step_schedules

        settings = self.sampling(cfg)
        cached = any(not step.refresh for step in settings.plan)
        batch = 1 if cached else cfg.optimisations.window_batch  # as sample_video
        schedules = step_schedules(settings.plan, settings, cfg.frames)
        windows = sum(len(schedule) for schedule in schedules)
        calls = sum(len(_window_groups(schedule, batch)) for schedule in schedules)
        return windows / cfg.sampling.steps, calls / cfg.sampling.steps, len(schedules[0][0][0])

    def video_work(self, cfg: BenchConfig) -> dict[str, Any]:
        """FLOPs of one video of ``cfg`` by stage, from the rows its sampling settings run, counted on the meta
        device (``count_video_work_meta``; cached per workload)."""
        settings = self.sampling(cfg)
        key = (settings, cfg.width, cfg.height, cfg.frames, cfg.optimisations.ref_kv_cache, cfg.decoder)
        if key not in self._work:
            self._work[key] = count_video_work_meta(
                self.size, cfg.width, cfg.height, cfg.frames, settings, key[4], decoder=cfg.decoder
            )
        return self._work[key]

    def _inputs(self, cfg: BenchConfig):
        """Reference image and pose frames (F, 3, H, W) uint8 in host memory, as ``animate`` hands them over, fixed
        by the seed (random pixels)."""
        import PIL.Image

        rng = np.random.default_rng(cfg.seed)
        reference = PIL.Image.fromarray(rng.integers(0, 256, (cfg.height, cfg.width, 3), dtype=np.uint8))
        pose = torch.from_numpy(rng.integers(0, 256, (cfg.frames, 3, cfg.height, cfg.width), dtype=np.uint8))
        return reference, pose

    def run_once(self, cfg: BenchConfig, keep_outputs: bool = False) -> dict[str, Any]:
        """One video through ``AnimateAnyonePipeline.__call__``, timed by stage. ``cfg`` must be ``resolved()``."""
        options = cfg.optimisations
        if self.pipe.optimisations != options:
            self.pipe.set_optimisations(options)
        reference, pose = self._inputs(cfg)
        timer, frames = StageTimer(self.device), []
        _sync(self.device)
        start = time.perf_counter()
        output = self._call(cfg, reference, pose, timer, frames.append if keep_outputs else (lambda frame: None))
        _sync(self.device)
        out = timer.result(time.perf_counter() - start)
        out["unet_rows"] = {k: output.stats[k] for k in ("full_rows", "shallow_rows")}
        if keep_outputs:
            out["latents"] = timer.latents.float().cpu()
            out["frames"] = np.stack(frames)
        return out

    def _call(self, cfg: BenchConfig, reference, pose, timer, sink):
        return self.pipe(
            reference,
            pose,
            self.sampling(cfg),
            height=cfg.height,
            width=cfg.width,
            generator=torch.Generator().manual_seed(cfg.seed),
            frame_sink=sink,
            hooks=timer,
            decoder=cfg.decoder,
        )

    # -- measuring -------------------------------------------------------------------------------------------
    def _prepare(self, cfg: BenchConfig, log: Callable[[str], None]) -> dict[str, Any]:
        """Window counts, FLOPs, and (with ``compile``) the compilation, timed on its own."""
        windows_per_step, calls_per_step, window_frames = self.windows_per_step(cfg)
        work = self.video_work(cfg)
        guided = self.sampling(cfg).plan[0].guided  # the rows of a whole call of the first step
        flops_per_call, flops_by_op = count_unet_flops_meta(
            self.size, cfg.width, cfg.height, window_frames, guided, cfg.optimisations.ref_kv_cache
        )
        compile_seconds = None
        if cfg.optimisations.compile and not self.pipe.optimisations.compile:
            log("compiling the denoising UNet (first call)")
            one_step = cfg.replace(sampling=dataclasses.replace(cfg.sampling, steps=1))
            compile_seconds = self.run_once(one_step)["denoising"]  # minus one step, later
        return dict(
            windows_per_step=windows_per_step,
            calls_per_step=calls_per_step,
            window_frames=window_frames,
            flops_per_call=flops_per_call,
            flops_by_op=flops_by_op,
            work=work,
            compile_seconds=compile_seconds,
        )

    def resolve(self, cfg: BenchConfig | None = None, **kwargs) -> BenchConfig:
        cfg = (cfg or BenchConfig(size=self.size, **kwargs)).resolved()
        if cfg.size != self.size:
            raise ValueError(f"this bench holds a {self.size} model, not {cfg.size}")
        return cfg

    def run(
        self,
        cfg: BenchConfig | None = None,
        keep_outputs: bool = False,
        log: Callable[[str], None] | None = None,
        **kwargs,
    ) -> dict[str, Any]:
        """Warm-up runs, then ``repeats`` timed runs of one configuration; returns the summary dict."""
        return self.run_interleaved([self.resolve(cfg, **kwargs)], keep_outputs, log)[0]

    def run_interleaved(
        self, cfgs: list[BenchConfig], keep_outputs: bool = False, log: Callable[[str], None] | None = None
    ) -> list[dict[str, Any]]:
        """Several configurations measured round-robin (repeat 1 of each, then repeat 2 of each, ...), so a
        change in machine load affects them alike. They need the same ``compile``, warm-up and repeats."""
        log = log or (lambda msg: None)
        cfgs = [self.resolve(c) for c in cfgs]
        if len({(c.optimisations.compile, c.repeats, c.warmup) for c in cfgs}) > 1:
            raise ValueError("configurations measured together need the same compile, warmup and repeats")
        preps = [self._prepare(c, log) for c in cfgs]
        for c in cfgs:
            for i in range(c.warmup):
                log(f"warm-up {i + 1}/{c.warmup}" + (f" ({c.label()})" if len(cfgs) > 1 else ""))
                self.run_once(c)
        runs: list[list[dict[str, Any]]] = [[] for _ in cfgs]
        memory: list[dict[str, Any] | None] = [None] * len(cfgs)
        repeats = cfgs[0].repeats
        for r in range(repeats):
            log(f"run {r + 1}/{repeats}" + (f" of {len(cfgs)} configurations" if len(cfgs) > 1 else ""))
            for i, c in enumerate(cfgs):
                probe = MemoryProbe(self.device)
                runs[i].append(self.run_once(c, keep_outputs=keep_outputs and r == repeats - 1))
                mem = probe.result()
                if memory[i] is None or mem["peak_mib"] > memory[i]["peak_mib"]:
                    memory[i] = mem
        results = []
        for c, prep, rs, mem in zip(cfgs, preps, runs, memory):
            if prep["compile_seconds"] is not None:
                step = statistics.median(x["denoising"] for x in rs) / c.sampling.steps
                prep["compile_seconds"] = max(0.0, prep["compile_seconds"] - step)
            result = self.summary(c, rs, mem, **prep)
            if keep_outputs:
                result["_outputs"] = {"latents": rs[-1]["latents"], "frames": rs[-1]["frames"]}
            results.append(result)
        return results

    def summary(
        self,
        cfg,
        runs,
        memory,
        *,
        windows_per_step,
        calls_per_step,
        window_frames,
        flops_per_call,
        flops_by_op,
        work,
        compile_seconds,
    ) -> dict[str, Any]:
        """The JSON-ready result of one configuration (medians over the timed runs)."""

        def med(key):
            return statistics.median(r[key] for r in runs)

        step_times = [s for r in runs for s in r["steps"]]
        sec_step = statistics.median(step_times)
        # The UNet rows this run's settings ran (whole and shallow, guided or not), per step on average.
        flops_step = (work["flops"]["unet_whole"] + work["flops"]["unet_shallow"]) / cfg.sampling.steps
        even = len({(s.kinds, s.refresh) for s in self.sampling(cfg).plan}) == 1  # every step costs the same
        seconds = sec_step if even else statistics.median(r["denoising"] for r in runs) / cfg.sampling.steps
        achieved = flops_step / seconds / 1e12 if seconds > 0 else None
        env = environment(self.device)
        peak = peak_tflops(env["device_name"], self.dtype) if self.device.type == "cuda" else None
        total = med("total")
        stages = {
            name: {"seconds": med(name), "seconds_per_frame": med(name) / cfg.frames, "share": med(name) / total}
            for name in STAGES
        }
        config = dict(cfg.record(), dtype=str(self.dtype).replace("torch.", ""), device=str(self.device))
        return {
            "schema": 2,
            "config": config,
            "environment": env,
            "build_seconds": self.build_seconds,
            "window_frames": window_frames,
            "windows_per_step": windows_per_step,
            "unet_calls_per_step": calls_per_step,
            "seconds_per_step": sec_step,
            "seconds_per_step_min": min(step_times),
            "seconds_per_step_all": step_times,
            "seconds_per_frame": total / cfg.frames,
            "seconds_end_to_end": total,
            "seconds_end_to_end_all": [r["total"] for r in runs],
            "stages": stages,
            "compile_seconds": compile_seconds,
            "unet_rows": runs[-1]["unet_rows"],  # UNet rows x windows per video: run whole / deep levels reused
            "memory": memory,
            "flops_per_unet_window": flops_per_call,
            "flops_per_step": flops_step,
            "flops_by_op_per_window": flops_by_op,
            "flops_per_video": work["flops"],  # by stage: UNet whole / shallow rows, pose guider, reference, decode
            "unet_rows_modelled": work["unet_rows_per_video"],
            "achieved_tflops": achieved,
            "peak_tflops": peak,
            "mfu": achieved / peak if (achieved is not None and peak) else None,
        }
