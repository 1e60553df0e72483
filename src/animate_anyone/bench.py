"""Inference benchmark: speed, memory and FLOPs of the whole pipeline, and the optimisation switches.

    from animate_anyone.bench import run_benchmark, run_comparison
    result = run_benchmark("tiny", frames=8, steps=2)          # one configuration -> dict (JSON-ready)
    report = run_comparison("tiny", frames=8, steps=2)         # default vs each optimisation switched off

The model is built at a named size (``tiny`` or ``sd15``) with random weights directly in memory (speed
does not depend on the values), and run exactly as ``AnimateAnyonePipeline.__call__`` runs it, stage by
stage: reference (CLIP image embedding, VAE encode, one ReferenceNet pass), pose guider (per window, on
demand, as the pipeline does), the denoising steps (``sample_video``), and the chunked VAE decode to uint8.

Optimisation switches (``SWITCHES``; all on by default in the benchmark; each can be switched off to
measure it, and none changes outputs beyond float rounding, see ``tests/test_optimisations.py``):

* ``ref_kv_cache``: reference keys/values projected once per video (off: at every UNet call).
* ``uncond_without_reference``: the unconditional CFG row never attends to the reference (off: every row
  does and the result is discarded for the unconditional row, Moore-AnimateAnyone's cost).
* ``channels_last``: channels-last memory format for the UNets, the pose guider and the VAE.
* ``fused_qkv``: one QKV projection GEMM per self-attention (K/V for cross-attention), diffusers'
  ``Attention.fuse_projections``; our reference processors use the fused projection too.
* ``sdpa``: diffusers' ``AttnProcessor2_0`` (``F.scaled_dot_product_attention``) for the cross-attention and
  the temporal layers (off: the classic ``AttnProcessor``, explicit scores + softmax). The reference
  processors always use the fused kernels.
* ``chunked_decode``: the VAE decodes ``decode_chunk_size`` frames per call (off: the whole video at once).

Also: ``window_batch`` (several windows of a step in one UNet call) and ``compile`` (``torch.compile`` of the
denoising UNet; its compile time is measured separately).

Every switch is an explicit option: ``optimisations(model, vae, switches)`` is a context manager that applies
the module-level ones to given models and undoes them on exit; the others are call arguments.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import resource
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
import torch

SWITCHES: dict[str, str] = {
    "ref_kv_cache": "reference keys/values projected once per video (off: at every UNet call)",
    "uncond_without_reference": "unconditional CFG row skips the reference attention (off: computed, then discarded)",
    "channels_last": "channels-last memory format for the UNets, pose guider and VAE",
    "fused_qkv": "fused QKV projections (diffusers fuse_projections), also in the reference processors",
    "sdpa": "F.scaled_dot_product_attention for cross/temporal attention (off: diffusers' AttnProcessor)",
    "chunked_decode": "VAE decodes decode_chunk_size frames per call (off: all frames in one call)",
}

# Dense bf16/fp16 tensor-core peaks (TFLOP/s) by device-name substring; the first match wins.
PEAK_TFLOPS: list[tuple[str, float]] = [
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.0),  # SXM
    ("H200 NVL", 835.0),
    ("H200", 989.0),  # SXM
    ("A100", 312.0),  # SXM and PCIe
]
PEAK_DTYPES = (torch.bfloat16, torch.float16)

DEFAULTS = {  # per size: width, height, frames, steps
    "tiny": dict(width=128, height=128, frames=16, steps=4),
    "sd15": dict(width=512, height=768, frames=24, steps=20),
}


def default_switches() -> dict[str, bool]:
    return dict.fromkeys(SWITCHES, True)


def check_switches(switches: dict[str, bool] | None) -> dict[str, bool]:
    """All switches, with the given ones overriding the defaults (all on); unknown names raise."""
    switches = dict(switches or {})
    unknown = sorted(set(switches) - set(SWITCHES))
    if unknown:
        raise ValueError(f"unknown optimisation switch(es) {unknown}; known: {sorted(SWITCHES)}")
    return {**default_switches(), **{k: bool(v) for k, v in switches.items()}}


# ---------------------------------------------------------------------------------------------------------
# The module-level switches, as context managers
# ---------------------------------------------------------------------------------------------------------


def _attention_modules(model: torch.nn.Module):
    from diffusers.models.attention_processor import Attention

    return [(name, m) for name, m in model.named_modules() if isinstance(m, Attention)]


def _is_reference_processor(processor) -> bool:
    from .models.reference_attention import ReferenceReadProcessor, ReferenceWriteProcessor

    return isinstance(processor, (ReferenceReadProcessor, ReferenceWriteProcessor))


@contextlib.contextmanager
def classic_attention(*models: torch.nn.Module) -> Iterator[None]:
    """Swap diffusers' SDPA processor (``AttnProcessor2_0``) for the classic ``AttnProcessor`` on the stock
    attention layers (cross-attention, temporal layers); the reference processors are left alone."""
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    saved = []
    for model in models:
        for _, module in _attention_modules(model):
            if isinstance(module.processor, AttnProcessor2_0):
                saved.append((module, module.processor))
                module.set_processor(AttnProcessor())
    try:
        yield
    finally:
        for module, processor in saved:
            module.set_processor(processor)


@contextlib.contextmanager
def fused_qkv_projections(*models: torch.nn.Module) -> Iterator[None]:
    """Fuse the attention projections of ``models`` for a ``with`` block (inference only).

    diffusers' ``UNet*.fuse_qkv_projections()`` would replace every processor, including our reference
    processors, by ``FusedAttnProcessor2_0``, which knows nothing of the reference. So: every ``Attention``
    gets its fused projection (``Attention.fuse_projections``: ``to_qkv`` for self-attention, ``to_kv`` for
    cross-attention); stock SDPA processors become ``FusedAttnProcessor2_0``; the reference processors use
    ``to_qkv`` themselves. Other processors (e.g. the classic one) keep the separate projections. On exit the
    fused layers are removed and the processors restored. Costs a second copy of the projection weights.
    """
    from diffusers.models.attention_processor import AttnProcessor2_0, FusedAttnProcessor2_0

    fused = []
    try:
        for model in models:
            for _, module in _attention_modules(model):
                processor = module.processor
                head_dim = module.inner_dim // module.heads
                stock = type(processor) is AttnProcessor2_0 and math.isclose(module.scale, head_dim**-0.5)
                if not (stock or _is_reference_processor(processor)):
                    continue  # FusedAttnProcessor2_0 ignores attn.scale; other processors ignore to_qkv
                module.fuse_projections(fuse=True)
                fused.append((module, processor))
                if stock:
                    module.set_processor(FusedAttnProcessor2_0())
        yield
    finally:
        for module, processor in fused:
            module.set_processor(processor)
            for name in ("to_qkv", "to_kv"):
                if hasattr(module, name):
                    delattr(module, name)
            module.fused_projections = False


@contextlib.contextmanager
def channels_last(*models: torch.nn.Module) -> Iterator[None]:
    """Channels-last weights (4-D parameters) for a ``with`` block; convolutions then produce channels-last
    activations. Contiguous format is restored on exit."""
    for model in models:
        model.to(memory_format=torch.channels_last)
    try:
        yield
    finally:
        for model in models:
            model.to(memory_format=torch.contiguous_format)


@contextlib.contextmanager
def optimisations(model, vae=None, switches: dict[str, bool] | None = None) -> Iterator[dict[str, bool]]:
    """Apply the module-level switches (``sdpa``, ``fused_qkv``, ``channels_last``, ``uncond_without_reference``)
    to an ``AnimateAnyone`` model (and its VAE) for a ``with`` block. The call-level switches
    (``ref_kv_cache``: ``encode_reference(cache_keys_values=...)``; ``chunked_decode``: the decode chunk size)
    are the caller's. Yields the complete switch dict."""
    from .models.reference_attention import reference_options

    switches = check_switches(switches)
    unets = [model.reference_net, model.denoising_unet]
    with contextlib.ExitStack() as stack:
        if not switches["sdpa"]:
            stack.enter_context(classic_attention(*unets))
        if switches["fused_qkv"]:
            stack.enter_context(fused_qkv_projections(*unets))
        if switches["channels_last"]:
            stack.enter_context(channels_last(*unets, model.pose_guider, *([vae] if vae is not None else [])))
        stack.enter_context(reference_options(model.denoising_unet, reference_all_rows=not switches["uncond_without_reference"]))
        yield switches


# ---------------------------------------------------------------------------------------------------------
# FLOPs
# ---------------------------------------------------------------------------------------------------------


def flop_counter() -> "torch.utils.flop_counter.FlopCounterMode":
    """``FlopCounterMode`` that also knows the CPU flash-attention op (PyTorch registers only the CUDA ones)."""
    from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

    def cpu_flash_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
        return sdpa_flop_count(query_shape, key_shape, value_shape)  # same formula as the CUDA kernels

    mapping = {}
    op = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    if op is not None:
        mapping[op] = cpu_flash_flops
    return FlopCounterMode(display=False, custom_mapping=mapping)


def count_flops(fn: Callable[[], Any]) -> tuple[int, dict[str, int]]:
    """FLOPs of ``fn()`` (2 per multiply-add of matmuls, convolutions and attention; element-wise and
    normalisation ops are not counted) and the split by op."""
    with flop_counter() as counter:
        fn()
    by_op = {str(k): int(v) for k, v in counter.get_flop_counts().get("Global", {}).items()}
    return int(counter.get_total_flops()), by_op


@torch.no_grad()
def count_unet_flops_meta(
    size: str,
    width: int,
    height: int,
    frames: int,
    guidance: bool = True,
    switches: dict[str, bool] | None = None,
    model=None,
) -> tuple[int, dict[str, int]]:
    """FLOPs of ONE guided UNet call on a window of ``frames`` frames (rows [uncond, cond] with guidance),
    counted on the meta device: no memory, no compute, seconds even for sd15.

    The guided call selects its reference rows with a boolean mask, which needs data the meta device does not
    have, so the call is counted as the sum of its row groups: the conditional row with the reference plus
    the unconditional row without it. Every counted op is linear in the batch, so the sum is exact (checked
    against a real call in the tests). With ``uncond_without_reference`` off, both rows attend to the reference.
    """
    from .models.specs import build_networks, network_configs

    switches = check_switches(switches)
    model = model if model is not None else build_networks(network_configs(size), device="meta")
    dev = torch.device("meta")
    c = model.denoising_unet.config
    h, w = height // 8, width // 8
    ref = torch.empty(1, 4, h, w, device=dev)
    embeds = torch.empty(1, 1, c.cross_attention_dim, device=dev)
    bank = model.encode_reference(ref, embeds, cache_keys_values=switches["ref_kv_cache"])
    pose = model.encode_pose(torch.empty(1, 3, frames, height, width, device=dev))
    t = torch.tensor(500, device=dev)
    unet = model.denoising_unet

    def rows(n: int, with_reference: bool):
        x = torch.empty(n, 4, frames, h, w, device=dev)
        return lambda: unet(x, t, embeds.expand(n, -1, -1), pose.expand(n, -1, -1, -1, -1), bank if with_reference else None)

    if not guidance:
        return count_flops(rows(1, True))
    if not switches["uncond_without_reference"]:
        return count_flops(rows(2, True))
    total_c, ops_c = count_flops(rows(1, True))
    total_u, ops_u = count_flops(rows(1, False))
    return total_c + total_u, {k: ops_c.get(k, 0) + ops_u.get(k, 0) for k in sorted(set(ops_c) | set(ops_u))}


def peak_tflops(device_name: str, dtype: torch.dtype) -> float | None:
    """Dense bf16/fp16 peak of a known GPU, else None (no MFU for float32 or unknown devices)."""
    if dtype not in PEAK_DTYPES:
        return None
    for key, peak in PEAK_TFLOPS:
        if key.lower() in device_name.lower():
            return peak
    return None


# ---------------------------------------------------------------------------------------------------------
# Environment and memory
# ---------------------------------------------------------------------------------------------------------


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: torch.device) -> dict[str, Any]:
    import diffusers
    import transformers

    env = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name(),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "cuda": torch.version.cuda,
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
        env["gpu_count"] = torch.cuda.device_count()
    return env


def _maxrss_mib() -> float:
    """Process-wide high-water mark of resident memory (Linux reports KiB, macOS bytes)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10


def _rss_mib() -> float | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return None


class _MemoryProbe:
    """CUDA: ``max_memory_allocated`` (reset first). CPU: ``ru_maxrss``, process-wide and never reset."""

    def __init__(self, device: torch.device):
        self.device = device
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            self.before = torch.cuda.memory_allocated(device) / 2**20
        else:
            self.before = _rss_mib()
            self.maxrss_before = _maxrss_mib()

    def result(self) -> dict[str, Any]:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device) / 2**20
            return {
                "kind": "cuda_max_memory_allocated",
                "peak_mib": round(peak, 1),
                "before_mib": round(self.before, 1),
                "delta_mib": round(peak - self.before, 1),
                "reserved_peak_mib": round(torch.cuda.max_memory_reserved(self.device) / 2**20, 1),
                "peak_reached_during_runs": True,
                "note": "PyTorch caching-allocator peak on this device during the runs; before = weights and buffers",
            }
        peak = _maxrss_mib()
        before = self.before if self.before is not None else self.maxrss_before
        return {
            "kind": "cpu_ru_maxrss",
            "peak_mib": round(peak, 1),
            "before_mib": round(before, 1),
            "delta_mib": round(max(0.0, peak - before), 1),
            "peak_reached_during_runs": peak > self.maxrss_before,
            "note": (
                "ru_maxrss is the whole process's resident high-water mark and is never reset: before = resident "
                "memory when the runs started (weights, runtime); if peak_reached_during_runs is false the peak "
                "was set earlier (e.g. a previous configuration) and only bounds this run's peak from above"
            ),
        }


# ---------------------------------------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------------------------------------


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """``auto``: bfloat16 on CUDA, float32 elsewhere; else a dtype name (float32, float16, bfloat16, ...)."""
    from .animate import resolve_dtype as resolve

    if dtype in (None, "auto"):
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return resolve(dtype, device)


@dataclass
class BenchConfig:
    size: str = "tiny"
    width: int | None = None
    height: int | None = None
    frames: int | None = None
    steps: int | None = None
    guidance: bool = True
    guidance_scale: float = 3.5
    context_frames: int = 24
    context_overlap: int = 4
    window_mode: str = "shifted"
    window_batch: int = 1
    decode_chunk_size: int = 8
    dtype: str = "auto"
    device: str = "auto"
    compile: bool = False
    switches: dict[str, bool] = field(default_factory=default_switches)
    warmup: int = 1
    repeats: int = 3
    seed: int = 0
    flops_on: str = "meta"  # "meta" (free) or "device" (one extra real UNet call)

    def resolved(self) -> "BenchConfig":
        from .models.specs import SIZES
        from .pipelines.context import WINDOW_MODES, check_window

        if self.size not in SIZES:
            raise ValueError(f"unknown model size {self.size!r}; choose one of {SIZES}")
        d = DEFAULTS[self.size]
        cfg = BenchConfig(**{**self.__dict__})
        cfg.width, cfg.height = cfg.width or d["width"], cfg.height or d["height"]
        cfg.frames, cfg.steps = cfg.frames or d["frames"], cfg.steps or d["steps"]
        for name in ("width", "height"):
            value = getattr(cfg, name)
            if value <= 0 or value % 8:
                raise ValueError(f"{name} must be a positive multiple of 8, got {value}")
        for name in ("steps", "repeats", "window_batch", "decode_chunk_size"):
            if getattr(cfg, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(cfg, name)}")
        if cfg.warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {cfg.warmup}")
        if cfg.flops_on not in ("meta", "device"):
            raise ValueError(f"flops_on must be 'meta' or 'device', got {cfg.flops_on!r}")
        if cfg.window_mode not in WINDOW_MODES:
            raise ValueError(f"window_mode must be one of {WINDOW_MODES}, got {cfg.window_mode!r}")
        check_window(cfg.frames, cfg.context_frames, cfg.context_overlap)
        cfg.switches = check_switches(cfg.switches)
        return cfg


class Bench:
    """A model of a named size with random weights, built once and run under any number of configurations
    of the same size, device and dtype (``run_comparison`` reuses it for every variant)."""

    def __init__(self, size: str = "tiny", device: str | torch.device = "auto", dtype: str | torch.dtype = "auto", seed: int = 0):
        from .animate import resolve_device
        from .init_model import build_auxiliary
        from .models.specs import build_networks, network_configs
        from .pipelines.pipeline_animate_anyone import AnimateAnyonePipeline

        self.size = size
        self.device = resolve_device(device) if not isinstance(device, torch.device) else device
        self.dtype = resolve_dtype(dtype, self.device)
        torch.manual_seed(seed)
        t0 = time.perf_counter()
        build_on = self.device if self.device.type == "cuda" else "cpu"
        self.model = build_networks(network_configs(size), device=build_on).eval()
        _randomise_zero_parameters(self.model)
        self.model.to(self.device, self.dtype)
        aux = build_auxiliary(size)
        for component in aux.values():
            if isinstance(component, torch.nn.Module):
                component.to(self.device).eval()
                if component.dtype != self.dtype:
                    component.to(self.dtype)
        self.pipe = AnimateAnyonePipeline(
            reference_net=self.model.reference_net, denoising_unet=self.model.denoising_unet,
            pose_guider=self.model.pose_guider, **aux,
        )  # fmt: skip
        self.pipe.set_progress_bar_config(disable=True)
        self.build_seconds = time.perf_counter() - t0
        self.compiled = False
        self._meta_model = None
        self._meta_flops: dict[tuple, tuple[int, dict[str, int]]] = {}

    # -- helpers --------------------------------------------------------------------------------------------
    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _inputs(self, cfg: BenchConfig):
        """Reference image, pose frames (F, 3, H, W) uint8 on the device, initial latents: fixed by the seed."""
        import PIL.Image

        rng = np.random.default_rng(cfg.seed)
        reference = PIL.Image.fromarray(rng.integers(0, 256, (cfg.height, cfg.width, 3), dtype=np.uint8))
        pose = torch.from_numpy(rng.integers(0, 256, (cfg.frames, 3, cfg.height, cfg.width), dtype=np.uint8)).to(self.device)
        g = torch.Generator().manual_seed(cfg.seed)
        shape = (1, 4, cfg.frames, cfg.height // 8, cfg.width // 8)
        latents = (torch.randn(shape, generator=g) * self.pipe.scheduler.init_noise_sigma).to(self.device, self.dtype)
        return reference, pose, latents

    def set_compiled(self, compiled: bool) -> float | None:
        """``torch.compile`` the denoising UNet in place (or undo it). Compilation happens at the first call."""
        unet = self.model.denoising_unet
        if compiled and not self.compiled:
            unet.compile()
        elif not compiled and self.compiled:
            unet._compiled_call_impl = None
        self.compiled = compiled
        return None

    def windows_per_step(self, cfg: BenchConfig) -> tuple[float, float, int]:
        """(windows per step, UNet calls per step, window length), averaged over the steps of the schedule."""
        from .pipelines.context import window_schedule
        from .pipelines.sampling import _window_groups

        windows = calls = 0
        length = 0
        for i in range(cfg.steps):
            schedule = window_schedule(cfg.window_mode, cfg.frames, cfg.context_frames, cfg.context_overlap, i)
            windows += len(schedule)
            calls += len(_window_groups(schedule, cfg.window_batch))
            length = len(schedule[0][0])
        return windows / cfg.steps, calls / cfg.steps, length

    def unet_flops(self, cfg: BenchConfig, window_frames: int) -> tuple[int, dict[str, int]]:
        if cfg.flops_on == "meta":
            from .models.specs import build_networks, network_configs

            sw = cfg.switches
            key = (cfg.width, cfg.height, window_frames, cfg.guidance, sw["ref_kv_cache"], sw["uncond_without_reference"])
            if key not in self._meta_flops:
                if self._meta_model is None:
                    self._meta_model = build_networks(network_configs(self.size), device="meta")
                self._meta_flops[key] = count_unet_flops_meta(
                    self.size, cfg.width, cfg.height, window_frames, cfg.guidance, sw, model=self._meta_model
                )
            return self._meta_flops[key]
        # On the device: one real guided call on the first window, with the switches applied.
        reference, pose, latents = self._inputs(cfg)
        g = cfg.guidance_scale if cfg.guidance else 1.0
        with torch.no_grad(), optimisations(self.model, self.pipe.vae, cfg.switches) as sw:
            embeds, ref_latents = self.pipe.encode_image(reference, cfg.height, cfg.width, self.device, self.dtype)
            bank = self.model.encode_reference(ref_latents, embeds, cache_keys_values=sw["ref_kv_cache"])
            idx = torch.arange(window_frames, device=self.device)
            pose_f = self.model.encode_pose((pose[idx].to(self.dtype) / 255).transpose(0, 1).unsqueeze(0))
            t = torch.tensor(500, device=self.device)
            return count_flops(lambda: self.model.denoise(latents[:, :, idx], t, embeds, pose_f, bank, g))

    # -- one end-to-end run ---------------------------------------------------------------------------------
    @torch.no_grad()
    def run_once(self, cfg: BenchConfig, keep_outputs: bool = False) -> dict[str, Any]:
        """The pipeline's work for one video, timed by stage. ``cfg`` must be ``resolved()``."""
        from .pipelines.context import window_schedule
        from .pipelines.sampling import sample_video

        model, pipe, dev, dtype = self.model, self.pipe, self.device, self.dtype
        reference, pose, latents = self._inputs(cfg)
        g = cfg.guidance_scale if cfg.guidance else 1.0
        windows = [len(window_schedule(cfg.window_mode, cfg.frames, cfg.context_frames, cfg.context_overlap, i)) for i in range(cfg.steps)]
        with optimisations(model, pipe.vae, cfg.switches) as sw:
            self._sync()
            t0 = time.perf_counter()
            # 1. Reference: CLIP embedding, VAE encode, one ReferenceNet pass (and the K/V projection).
            embeds, ref_latents = pipe.encode_image(reference, cfg.height, cfg.width, dev, dtype)
            bank = model.encode_reference(ref_latents, embeds, cache_keys_values=sw["ref_kv_cache"])
            self._sync()
            t1 = time.perf_counter()
            # 2. + 3. Pose guider per window (timed inside) and the denoising steps.
            pose_seconds = [0.0] * cfg.steps
            step_ends: list[float] = []
            seen = [0]

            pose_events: list[tuple[int, Any, Any]] = []  # CUDA: timed by events, without synchronising

            def pose_features(idx: torch.Tensor) -> torch.Tensor:
                if dev.type == "cuda":
                    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    start.record()
                else:
                    start = time.perf_counter()
                images = pose[idx.to(dev)].to(dtype) / 255
                out = model.encode_pose(images.transpose(0, 1).unsqueeze(0)).to(dtype)
                if dev.type == "cuda":
                    end.record()
                    pose_events.append((len(step_ends), start, end))
                else:
                    pose_seconds[len(step_ends)] += time.perf_counter() - start
                return out

            def callback(step: int, window: int) -> None:
                seen[0] += 1
                if seen[0] == windows[step]:
                    self._sync()
                    step_ends.append(time.perf_counter())
                    seen[0] = 0

            latents = sample_video(
                model, pipe.scheduler, latents, embeds, pose_features, bank, cfg.steps, g, cfg.context_frames,
                cfg.context_overlap, cfg.window_mode, callback=callback, window_batch=cfg.window_batch,
            )  # fmt: skip
            self._sync()
            t2 = time.perf_counter()
            # 4. VAE decode to uint8 frames (consumed as a writer would).
            chunk = cfg.decode_chunk_size if sw["chunked_decode"] else cfg.frames
            frames = []
            for frame in pipe.decode_latents(latents, chunk):
                if keep_outputs:
                    frames.append(frame)
            self._sync()
            t3 = time.perf_counter()
        for step, start, end in pose_events:
            pose_seconds[step] += start.elapsed_time(end) / 1000
        starts = [t1, *step_ends[:-1]]
        step_seconds = [end - start - p for start, end, p in zip(starts, step_ends, pose_seconds)]
        out = {
            "total": t3 - t0,
            "reference": t1 - t0,
            "pose_guider": sum(pose_seconds),
            "denoising": (t2 - t1) - sum(pose_seconds),
            "vae_decode": t3 - t2,
            "steps": step_seconds,
        }
        if keep_outputs:
            out["latents"] = latents.float().cpu()
            out["frames"] = np.stack(frames)
        return out

    # -- configurations --------------------------------------------------------------------------------------
    def _resolve(self, cfg: BenchConfig | None, kwargs) -> BenchConfig:
        cfg = (cfg or BenchConfig(size=self.size, **kwargs)).resolved()
        if cfg.size != self.size:
            raise ValueError(f"this bench holds a {self.size} model, not {cfg.size}")
        return cfg

    def _prepare(self, cfg: BenchConfig, log: Callable[[str], None]) -> dict[str, Any]:
        """Window counts, FLOPs, and (with ``compile``) the compilation, timed on its own."""
        windows_per_step, calls_per_step, window_frames = self.windows_per_step(cfg)
        flops_per_call, flops_by_op = self.unet_flops(cfg, window_frames)
        compile_seconds = None
        if cfg.compile and not self.compiled:
            self.set_compiled(True)
            log("compiling the denoising UNet (first call)")
            first = self.run_once(BenchConfig(**{**cfg.__dict__, "steps": 1}).resolved())
            compile_seconds = first["denoising"]  # compilation + one step; the step is subtracted later
        elif not cfg.compile:
            self.set_compiled(False)
        return dict(
            windows_per_step=windows_per_step, calls_per_step=calls_per_step, window_frames=window_frames,
            flops_per_call=flops_per_call, flops_by_op=flops_by_op, compile_seconds=compile_seconds,
        )  # fmt: skip

    def _measured(self, cfg: BenchConfig, keep_outputs: bool) -> tuple[dict[str, Any], dict[str, Any]]:
        probe = _MemoryProbe(self.device)
        run = self.run_once(cfg, keep_outputs=keep_outputs)
        return run, probe.result()

    def run(self, cfg: BenchConfig | None = None, keep_outputs: bool = False, log: Callable[[str], None] | None = None, **kwargs) -> dict[str, Any]:
        """Warm-up runs, then ``repeats`` timed runs of one configuration; returns the summary dict."""
        return self.run_interleaved([self._resolve(cfg, kwargs)], keep_outputs, log)[0]

    def run_interleaved(self, cfgs: list[BenchConfig], keep_outputs: bool = False, log: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
        """Several configurations measured round-robin (repeat 1 of each, then repeat 2 of each, ...), so a
        change in machine load affects them alike. Every configuration needs the same ``compile`` setting and
        number of repeats. Returns one summary per configuration."""
        log = log or (lambda msg: None)
        cfgs = [self._resolve(c, {}) for c in cfgs]
        if len({(c.compile, c.repeats, c.warmup) for c in cfgs}) > 1:
            raise ValueError("configurations measured together need the same compile, warmup and repeats")
        preps = [self._prepare(c, log) for c in cfgs]
        for c in cfgs:
            for i in range(c.warmup):
                log(f"warm-up {i + 1}/{c.warmup}" + (f" ({_label(c)})" if len(cfgs) > 1 else ""))
                self.run_once(c)
        runs: list[list[dict[str, Any]]] = [[] for _ in cfgs]
        memory: list[dict[str, Any] | None] = [None] * len(cfgs)
        repeats = cfgs[0].repeats
        for r in range(repeats):
            log(f"run {r + 1}/{repeats}" + (f" of {len(cfgs)} configurations" if len(cfgs) > 1 else ""))
            for i, c in enumerate(cfgs):
                run, mem = self._measured(c, keep_outputs and r == repeats - 1)
                runs[i].append(run)
                if memory[i] is None or mem["peak_mib"] > memory[i]["peak_mib"]:
                    memory[i] = mem
        results = []
        for c, prep, rs, mem in zip(cfgs, preps, runs, memory):
            if prep["compile_seconds"] is not None:
                prep["compile_seconds"] = max(0.0, prep["compile_seconds"] - statistics.median(x["denoising"] for x in rs) / c.steps)
            result = self._summary(c, rs, mem, **prep)
            if keep_outputs:
                result["_outputs"] = {"latents": rs[-1]["latents"], "frames": rs[-1]["frames"]}
            results.append(result)
        return results

    def _summary(self, cfg, runs, memory, *, windows_per_step, calls_per_step, window_frames, flops_per_call, flops_by_op, compile_seconds):
        med = lambda key: statistics.median(r[key] for r in runs)  # noqa: E731
        step_times = [s for r in runs for s in r["steps"]]
        sec_step = statistics.median(step_times)
        flops_step = flops_per_call * windows_per_step
        achieved = flops_step / sec_step / 1e12 if sec_step > 0 else None
        env = environment(self.device)
        peak = peak_tflops(env["device_name"], self.dtype) if self.device.type == "cuda" else None
        stages = {
            name: {"seconds": med(name), "seconds_per_frame": med(name) / cfg.frames, "share": med(name) / med("total")}
            for name in ("reference", "pose_guider", "denoising", "vae_decode")
        }
        config = {k: v for k, v in cfg.__dict__.items()}
        config["dtype"] = str(self.dtype).replace("torch.", "")
        config["device"] = str(self.device)
        return {
            "schema": 1,
            "config": config,
            "environment": env,
            "build_seconds": self.build_seconds,
            "window_frames": window_frames,
            "windows_per_step": windows_per_step,
            "unet_calls_per_step": calls_per_step,
            "seconds_per_step": sec_step,
            "seconds_per_step_min": min(step_times),
            "seconds_per_step_all": step_times,
            "seconds_per_frame": med("total") / cfg.frames,
            "seconds_end_to_end": med("total"),
            "seconds_end_to_end_all": [r["total"] for r in runs],
            "stages": stages,
            "compile_seconds": compile_seconds,
            "memory": memory,
            "flops_per_unet_window": flops_per_call,
            "flops_per_step": flops_step,
            "flops_by_op_per_window": flops_by_op,
            "flops_counted_on": cfg.flops_on,
            "achieved_tflops": achieved,
            "peak_tflops": peak,
            "mfu": achieved / peak if (achieved is not None and peak) else None,
        }


def _label(cfg: BenchConfig) -> str:
    off = [k for k, v in cfg.switches.items() if not v]
    extra = [f"window_batch={cfg.window_batch}"] if cfg.window_batch != 1 else []
    return ", ".join([*(f"no {k}" for k in off), *extra]) or "default"


def _randomise_zero_parameters(model: torch.nn.Module, std: float = 0.02) -> None:
    """Random values for the zero-initialised parameters (pose-guider output, temporal projections), so the
    benchmark's outputs exercise every layer (the optimisation checks compare them)."""
    g = torch.Generator(device="cpu").manual_seed(1234)
    with torch.no_grad():
        for p in model.parameters():
            if p.device.type != "meta" and not bool(p.detach().any()):
                p.copy_(torch.randn(p.shape, generator=g) * std)


# ---------------------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------------------


def run_benchmark(
    size: str = "tiny",
    width: int | None = None,
    height: int | None = None,
    frames: int | None = None,
    steps: int | None = None,
    guidance: bool = True,
    context_frames: int = 24,
    context_overlap: int = 4,
    dtype: str = "auto",
    device: str = "auto",
    compile: bool = False,
    switches: dict[str, bool] | None = None,
    warmup: int = 1,
    repeats: int = 3,
    *,
    guidance_scale: float = 3.5,
    window_mode: str = "shifted",
    window_batch: int = 1,
    decode_chunk_size: int = 8,
    seed: int = 0,
    flops_on: str = "meta",
    threads: int | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Build a ``size`` model with random weights on ``device`` and benchmark one configuration.

    Returns a JSON-ready dict: config, environment, seconds per step (median over all steps of the timed
    repeats), seconds per output frame end to end and by stage, memory, FLOPs per step, achieved TFLOP/s and
    (bf16/fp16 on a known GPU) MFU. See docs/performance.md for what is measured and how.
    """
    if threads:
        torch.set_num_threads(threads)
    cfg = BenchConfig(
        size=size, width=width, height=height, frames=frames, steps=steps, guidance=guidance, guidance_scale=guidance_scale,
        context_frames=context_frames, context_overlap=context_overlap, window_mode=window_mode, window_batch=window_batch,
        decode_chunk_size=decode_chunk_size, dtype=dtype, device=device, compile=compile, switches=check_switches(switches),
        warmup=warmup, repeats=repeats, seed=seed, flops_on=flops_on,
    ).resolved()  # fmt: skip
    bench = Bench(size, device, dtype, seed)
    return bench.run(cfg, log=log)


def run_comparison(
    size: str = "tiny",
    variants: list[str] | None = None,
    log: Callable[[str], None] | None = None,
    threads: int | None = None,
    **kwargs,
) -> dict[str, Any]:
    """The default configuration and, on the same model in the same process, each optimisation switched off
    (``variants``: switch names; default: every switch that is on), plus all windows of a step in one UNet call
    when a step has several windows. The configurations are measured round-robin (see ``run_interleaved``).
    With ``compile=True`` everything is compiled, and one more configuration without compilation is measured
    afterwards. Each variant reports ``speedup`` = seconds without the optimisation / seconds with it (> 1:
    the optimisation helps) and the largest difference of its outputs from the default's (final latents,
    decoded uint8 frames). ``kwargs``: the fields of ``BenchConfig``."""
    if threads:
        torch.set_num_threads(threads)
    log = log or (lambda msg: None)
    base_switches = check_switches(kwargs.pop("switches", None))
    cfg = BenchConfig(size=size, switches=base_switches, **kwargs).resolved()
    bench = Bench(size, cfg.device, cfg.dtype, cfg.seed)
    # 1. The variants: (name, description, config, whether the variant is the one WITH the optimisation).
    plan: list[tuple[str, str, BenchConfig, bool]] = []
    names = variants if variants is not None else [n for n in SWITCHES if base_switches[n]]
    for name in names:
        if name not in SWITCHES:
            raise ValueError(f"unknown optimisation switch {name!r}; known: {sorted(SWITCHES)}")
        if base_switches[name]:
            plan.append((name, SWITCHES[name], BenchConfig(**{**cfg.__dict__, "switches": {**base_switches, name: False}}), False))
    windows = bench.windows_per_step(cfg)[0]
    if variants is None and cfg.window_batch == 1 and windows > 1:
        vcfg = BenchConfig(**{**cfg.__dict__, "window_batch": math.ceil(windows)})
        plan.append(("window_batch", f"all windows of a step in one UNet call (window_batch={vcfg.window_batch})", vcfg, True))
    # 2. Measure them together with the default; then, with compile, the default without it.
    results = bench.run_interleaved([cfg, *(p[2] for p in plan)], keep_outputs=True, log=log)
    base, measured = results[0], results[1:]
    if cfg.compile:
        log("default configuration without torch.compile")
        plan.append(("compile", "torch.compile of the denoising UNet", BenchConfig(**{**cfg.__dict__, "compile": False}), False))
        measured.append(bench.run(plan[-1][2], keep_outputs=True, log=log))
    base_out = base.pop("_outputs")
    entries = []
    for (name, description, _, variant_has_it), res in zip(plan, measured):
        out = res.pop("_outputs")
        with_opt, without_opt = (res, base) if variant_has_it else (base, res)
        entries.append({
            "name": name,
            "description": description,
            "optimisation_in_default": not variant_has_it,
            "speedup_per_step": without_opt["seconds_per_step"] / with_opt["seconds_per_step"],
            "speedup_per_frame": without_opt["seconds_per_frame"] / with_opt["seconds_per_frame"],
            "speedup_by_stage": {
                s: without_opt["stages"][s]["seconds"] / max(with_opt["stages"][s]["seconds"], 1e-12) for s in base["stages"]
            },
            "max_abs_diff_latents": float((out["latents"] - base_out["latents"]).abs().max()),
            "max_abs_diff_frames_uint8": int(np.abs(out["frames"].astype(np.int16) - base_out["frames"].astype(np.int16)).max()),
            "result": res,
        })  # fmt: skip
    return {"schema": 1, "default": base, "variants": entries}


# ---------------------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def format_result(result: dict[str, Any]) -> str:
    c, env, mem = result["config"], result["environment"], result["memory"]
    on = [k for k, v in c["switches"].items() if v]
    lines = [
        f"animate-anyone bench: {c['size']} {c['width']}x{c['height']}, {c['frames']} frames, {c['steps']} steps, "
        f"guidance {c['guidance_scale'] if c['guidance'] else 'off'}, windows {c['context_frames']}/{c['context_overlap']} "
        f"({_fmt(result['windows_per_step'])} per step, window_batch {c['window_batch']}), {c['dtype']} on {env['device']} "
        f"({env['device_name']}, {env['torch_threads']} threads), compile {c['compile']}",
        f"switches on: {', '.join(on) or 'none'}",
        "",
        f"{'metric':<34} {'value':>14}",
        f"{'seconds per denoising step':<34} {_fmt(result['seconds_per_step']):>14}",
        f"{'seconds per output frame':<34} {_fmt(result['seconds_per_frame']):>14}",
        f"{'seconds end to end':<34} {_fmt(result['seconds_end_to_end']):>14}",
    ]
    for name, stage in result["stages"].items():
        lines.append(f"{'  ' + name + ' s/frame (share)':<34} {_fmt(stage['seconds_per_frame']):>14} ({stage['share'] * 100:.1f}%)")
    lines += [
        f"{'GFLOP per step (UNet)':<34} {_fmt(result['flops_per_step'] / 1e9):>14}",
        f"{'achieved TFLOP/s':<34} {_fmt(result['achieved_tflops']):>14}",
        f"{'MFU':<34} {_fmt(result['mfu']):>14}",
        f"{'peak memory MiB (' + mem['kind'] + ')':<34} {_fmt(mem['peak_mib']):>14}",
        f"{'  above start of runs MiB':<34} {_fmt(mem['delta_mib']):>14}",
    ]
    if result.get("compile_seconds") is not None:
        lines.append(f"{'compile seconds':<34} {_fmt(result['compile_seconds']):>14}")
    return "\n".join(lines)


def format_comparison(report: dict[str, Any]) -> str:
    base = report["default"]
    lines = [format_result(base), "", f"{'optimisation':<26} {'s/step var.':>12} {'speedup/step':>13} {'speedup/frame':>14} {'max|dlat|':>10} {'max|dpx|':>9}"]
    for e in report["variants"]:
        r = e["result"]
        label = e["name"] + ("" if e["optimisation_in_default"] else " (variant on)")
        lines.append(
            f"{label:<26} {_fmt(r['seconds_per_step']):>12} {_fmt(e['speedup_per_step'], 3):>13} "
            f"{_fmt(e['speedup_per_frame'], 3):>14} {e['max_abs_diff_latents']:>10.2g} {e['max_abs_diff_frames_uint8']:>9}"
        )
    return "\n".join(lines)
