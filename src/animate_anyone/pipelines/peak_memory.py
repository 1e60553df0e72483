"""The peak device memory of one ``AnimateAnyonePipeline`` call, counted on the meta device before anything loads:
``animate-anyone animate --estimate-memory`` and ``estimate_call_memory``.

    estimate_call_memory("models/animate-anyone", width=512, height=768, num_frames=24, sampling="fast",
                         dtype=torch.bfloat16)                        # a model directory's configs (no weights read)
    estimate_call_memory("sd15", ...)                                 # or a model size of models/sizes.py

The pipeline is built on the meta device from the configs and its own stages run there, with the attention as the
fused kernel a GPU runs (``meta_count.fused_attention``) and every tensor alive counted (``meta_count.LiveBytes``):

1. weights on the device: every network in the dtype, or with offloading only those a stage holds (below);
2. reference: CLIP embedding, VAE encode and the ReferenceNet pass (``encode_image``, ``encode_reference``); its
   bank (the reference keys and values) stays for the whole denoising;
3. denoising: the latent state of the whole video (``memory.per_frame_bytes``, an upper bound of what the loop
   holds per frame) and one window's pose features and UNet call (guided rows, ``window_batch`` windows);
4. decode: the final latents and one chunk of ``decode_chunk_size`` frames through the VAE decoder (or the light
   decoder) to uint8 (``decode_chunk``).

The peak is the largest of the three stages. Offloading (``Optimisations.offload``, diffusers' own): "model" holds
the networks a stage runs (diffusers' ``enable_model_cpu_offload`` along ``model_cpu_offload_seq``: the VAE stays
from the reference encode until the call ends); "sequential" holds one layer's weights at a time
(``enable_sequential_cpu_offload``; the largest counted). Not counted: the CUDA context and kernels' workspaces
(about 0.5-1 GiB), the allocator's fragmentation. tests/test_peak_memory.py holds the count to a measured CPU peak.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from collections.abc import Mapping
from typing import Any

import PIL.Image
import torch

from ..hub import resolve_model
from ..meta_count import LiveBytes, fused_attention
from .memory import per_frame_bytes
from .optimisations import Optimisations, as_optimisations
from .settings import SamplingRequest, SamplingSettings

GIB = 2**30
STAGES = ("reference", "denoising", "decode")


def meta_pipeline(model: str | os.PathLike[str], dtype: torch.dtype = torch.float32):
    """An ``AnimateAnyonePipeline`` on the meta device from a model directory's configs or a model size
    (``models.sizes.SIZES``: "tiny", "mini", "sd15"), in ``dtype``. Nothing is read but configs."""
    from ..models.sizes import SIZES
    from .pipeline_animate_anyone import AnimateAnyonePipeline

    if str(model) in SIZES:
        components, config = _size_components(SIZES[model])
    else:  # a model directory, or the Hub id of one (its local snapshot)
        components, config = _directory_components(resolve_model(model))
    for component in components.values():
        if isinstance(component, torch.nn.Module):
            torch.nn.Module.to(component, dtype=dtype)  # (diffusers' own .to warns about float32 modules on every cast)
    return AnimateAnyonePipeline(**components, **config)


def _size_components(preset) -> tuple[dict[str, Any], dict[str, Any]]:
    from ..model_dir import vae_scale_factor
    from ..models import LightDecoder
    from ..models.sizes import build_components, build_networks

    networks = build_networks(preset.networks(), device="meta")
    with torch.device("meta"):
        components = build_components(preset)
        light = LightDecoder(latent_channels=preset.vae["latent_channels"], upsampling=vae_scale_factor(preset.vae))
    names = ("reference_net", "denoising_unet", "pose_guider")
    return {**components, **{n: getattr(networks, n) for n in names}, "light_decoder": light}, {}


def _directory_components(path) -> tuple[dict[str, Any], dict[str, Any]]:
    import transformers

    from ..model_dir import WEIGHTED, ModelDirectory

    directory = ModelDirectory(path).check()
    index = directory.index()
    components: dict[str, Any] = {}
    for name in [n for n in WEIGHTED if n in index and index[n][0] is not None]:
        library, class_name = index[name]
        with torch.device("meta"):
            if name == "image_encoder":
                config = transformers.CLIPVisionConfig.from_pretrained(directory.path / name)
                components[name] = transformers.CLIPVisionModelWithProjection(config)
            else:
                module = importlib.import_module(library)
                components[name] = getattr(module, class_name).from_config(directory.config(name))
    for name in ("feature_extractor", "scheduler"):
        components[name] = directory.load_component(name)
    keys = ("use_reference_net", "default_preset", "student_steps")
    return components, {key: index[key] for key in keys if key in index}


def weight_bytes(module: torch.nn.Module | None) -> int:
    if module is None:
        return 0
    tensors = [*module.parameters(), *module.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


def resident_weights(pipe, decoder: str, offload: str) -> dict[str, int]:
    """Bytes of weights on the device at each stage (``STAGES``) under ``offload`` ("none", "model", "sequential")."""
    size = {name: weight_bytes(getattr(pipe, name, None)) for name in ("image_encoder", "vae", "reference_net")}
    size |= {name: weight_bytes(getattr(pipe, name, None)) for name in ("denoising_unet", "pose_guider")}
    size["light_decoder"] = weight_bytes(pipe.light_decoder)
    if offload == "none":
        return dict.fromkeys(STAGES, sum(size.values()))
    if offload == "sequential":  # one layer's own weights at a time: the largest
        modules = [m for c in pipe.components.values() if isinstance(c, torch.nn.Module) for m in c.modules()]
        largest = max(sum(t.numel() * t.element_size() for t in m.parameters(recurse=False)) for m in modules)
        return dict.fromkeys(STAGES, largest)
    vae, denoise = size["vae"], size["denoising_unet"] + size["pose_guider"]
    return {
        "reference": vae + max(size["image_encoder"], size["reference_net"]),
        "denoising": vae + denoise,
        "decode": vae + size["pose_guider"] + (size["light_decoder"] if decoder == "light" else 0),
    }


def estimate_call_memory(
    model,
    *,
    width: int,
    height: int,
    num_frames: int,
    sampling: SamplingSettings | SamplingRequest | str | Mapping[str, Any] | None = None,
    dtype: torch.dtype = torch.float32,
    optimisations: Optimisations | Mapping[str, Any] | None = None,
    decoder: str = "vae",
) -> dict[str, Any]:
    """The peak device memory of ``pipe(reference, poses, sampling, width=, height=, num_frames=, decoder=)`` in
    bytes, by stage and part (module doc). ``model``: a model directory, a model size name, or a pipeline already on
    the meta device (``meta_pipeline``)."""
    pipe = model if not isinstance(model, (str, os.PathLike)) else meta_pipeline(model, dtype)
    if pipe.device.type != "meta":
        raise ValueError(
            f"estimate_call_memory counts on the meta device, and this pipeline is on {pipe.device}: pass its model "
            "directory, a model size name, or meta_pipeline(model)"
        )
    opts = as_optimisations(optimisations)
    settings = pipe.sampling_settings(sampling)
    pipe.check_inputs(height, width, num_frames, num_frames, "np", decoder)
    pipe.set_optimisations(dataclasses.replace(opts, offload="none", compile=False))  # the layers' own switches
    weights = resident_weights(pipe, decoder, opts.offload)
    exclude = [t for c in pipe.components.values() if isinstance(c, torch.nn.Module) for t in c.state_dict().values()]
    with torch.no_grad(), fused_attention(), LiveBytes(exclude) as live:
        reference_peak, kept = _reference_stage(pipe, live, width, height, dtype, opts)
        window_peak = _window_stage(pipe, live, kept, settings, width, height, num_frames, dtype, opts)
        kept = None  # the bank is let go before the decode
        decode_peak = _decode_stage(pipe, live, width, height, num_frames, dtype, opts, decoder)
    each = per_frame_bytes(
        pipe.denoising_unet.config, pipe.vae.config, settings, width, height, torch.empty(0, dtype=dtype).element_size()
    )
    state = each.latents * num_frames
    stages = {
        "reference": {"weights": weights["reference"], "activations": reference_peak},
        "denoising": {"weights": weights["denoising"], "latent state": state, **window_peak},
        "decode": {"weights": weights["decode"], **decode_peak},
    }
    totals = {stage: sum(parts.values()) for stage, parts in stages.items()}
    peak_stage = max(totals, key=totals.get)
    return {
        "width": width,
        "height": height,
        "frames": num_frames,
        "dtype": str(dtype).removeprefix("torch."),
        "sampling": settings.part(("steps", "guidance", "cache_interval", "context_frames", "context_overlap")),
        "decoder": decoder,
        "offload": opts.offload,
        "decode_chunk_size": opts.decode_chunk_size,
        "window_batch": opts.window_batch,
        "stages": stages,
        "stage_bytes": totals,
        "peak_stage": peak_stage,
        "peak_bytes": totals[peak_stage],
        "host_bytes_per_frame": each.host,
        "not_counted": "the CUDA context and kernel workspaces (about 0.5-1 GiB), allocator fragmentation",
    }


def _reference_stage(pipe, live: LiveBytes, width, height, dtype, opts) -> tuple[int, tuple]:
    """(peak bytes of the stage, what stays: the embedding and the bank)."""
    meta = torch.device("meta")
    reference = PIL.Image.new("RGB", (width, height))
    live.reset_peak()
    image_embeds, ref_latents = pipe.encode_image(reference, height, width, meta, dtype)
    bank = None
    if pipe.config.use_reference_net:
        bank = pipe.model.encode_reference(ref_latents, image_embeds, opts.ref_kv_cache)
    return live.peak, (image_embeds, bank)


def _window_stage(pipe, live: LiveBytes, kept, settings: SamplingSettings, width, height, num_frames, dtype, opts):
    """The bank and one window's pose features and UNet call (the most rows a step runs), above the latent state."""
    from ..model_dir import vae_scale_factor
    from .sampling import step_schedules

    image_embeds, bank = kept
    held = live.live
    factor = vae_scale_factor(pipe.vae.config)
    schedules = step_schedules(settings.plan, settings, num_frames)
    frames = max(len(window) for schedule in schedules for window, _ in schedule)
    caching = any(not step.refresh for step in settings.plan)
    windows = 1 if caching else min(opts.window_batch, max(len(schedule) for schedule in schedules))
    guidance = settings.guidance if any(step.guided for step in settings.plan) else 1.0
    live.reset_peak()
    pose = torch.empty(windows, 3, frames, height, width, dtype=torch.uint8, device="meta")  # uint8 frames in
    features = pipe.model.encode_pose(pose.to(dtype) / 255)  # (n, C0, f, h, w)
    channels = pipe.denoising_unet.config.in_channels
    latents = torch.empty(windows, channels, frames, height // factor, width // factor, dtype=dtype, device="meta")
    timestep = torch.tensor(999, device="meta")
    pipe.model.denoise(latents, timestep, image_embeds, features, bank, guidance)
    return {"reference bank and embedding": held, "window": live.peak - held}


def _decode_stage(pipe, live: LiveBytes, width, height, num_frames, dtype, opts, decoder) -> dict[str, int]:
    from ..model_dir import vae_scale_factor

    factor = vae_scale_factor(pipe.vae.config)
    channels = pipe.vae.config.latent_channels
    latents = torch.empty(1, channels, num_frames, height // factor, width // factor, dtype=dtype, device="meta")
    held = live.live
    live.reset_peak()
    chunk = latents[0, :, : opts.decode_chunk_size or num_frames].transpose(0, 1)  # (f, 4, h, w)
    pipe.decode_chunk(chunk, decoder)
    return {"final latents": held, "decode chunk": live.peak - held}


def format_estimate(estimate: Mapping[str, Any]) -> str:
    """The estimate as lines of text: each stage's parts and total, and the peak."""
    lines = [
        f"{estimate['width']}x{estimate['height']}, {estimate['frames']} frames, {estimate['dtype']}, "
        f"steps {estimate['sampling']['steps']}, decoder {estimate['decoder']}, offload {estimate['offload']}, "
        f"decode_chunk_size {estimate['decode_chunk_size']}, window_batch {estimate['window_batch']}:"
    ]
    for stage, parts in estimate["stages"].items():
        lines.append(f"  {stage}: {estimate['stage_bytes'][stage] / GIB:.2f} GiB")
        lines += [f"    {part:<30} {value / GIB:8.3f} GiB" for part, value in parts.items()]
    lines.append(
        f"  peak ({estimate['peak_stage']}): {estimate['peak_bytes'] / GIB:.2f} GiB of device memory, plus the CUDA "
        f"context (0.5-1 GiB); host: {estimate['host_bytes_per_frame'] * estimate['frames'] / GIB:.2f} GiB"
    )
    return "\n".join(lines)


def measured_cpu_peak(call) -> int:
    """Bytes: the most the CPU allocator held at once during ``call()`` above what it held before, as PyTorch's
    profiler reports every allocation and free (``profile_memory``). For checking the estimate on a CPU."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        call()
    events = sorted((e.time_range.start, e.self_cpu_memory_usage) for e in prof.events() if e.self_cpu_memory_usage)
    live = peak = 0
    for _, change in events:
        live += change
        peak = max(peak, live)
    return peak
