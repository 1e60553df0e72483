"""FLOPs: counted with PyTorch's ``FlopCounterMode`` (also on the meta device, free at any size), and the GPU peaks
that turn achieved FLOP/s into MFU."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

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


def flop_counter() -> torch.utils.flop_counter.FlopCounterMode:
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
    size: str, width: int, height: int, frames: int, guidance: bool = True, ref_kv_cache: bool = True, model=None
) -> tuple[int, dict[str, int]]:
    """FLOPs of ONE whole UNet call on a window of ``frames`` frames (rows [uncond, cond] with guidance), counted on
    the meta device: no memory, no compute, seconds even for sd15.

    The guided call selects its reference rows with a slice the meta device cannot follow into the merged
    attention kernels, so it is counted as the sum of its row groups: the conditional row with the reference plus
    the unconditional row without it. Every counted op is linear in the batch, so the sum is exact (checked
    against a real call in the tests). ``ref_kv_cache=False``: the reference keys/values are projected in every
    call (counted here) instead of once per video.
    """
    rows = count_row_flops_meta(size, width, height, frames, ref_kv_cache, shallow=False, model=model)
    kinds = ("uncond", "cond") if guidance else ("cond",)
    ops: dict[str, int] = {}
    for kind in kinds:
        for op, n in rows[kind][1].items():
            ops[op] = ops.get(op, 0) + n
    return sum(rows[kind][0] for kind in kinds), dict(sorted(ops.items()))


@torch.no_grad()
def count_row_flops_meta(
    size: str,
    width: int,
    height: int,
    frames: int,
    ref_kv_cache: bool = True,
    cache_depth: int = 1,
    shallow: bool = True,
    model=None,
) -> dict[str, tuple[int, dict[str, int]]]:
    """FLOPs (total, by op) of ONE UNet row on a window of ``frames`` frames, by kind of row: "cond" (attends to the
    reference), "uncond" (its own tokens only) and, with ``shallow``, the same rows of a step that reuses the kept
    deep features ("cond_shallow", "uncond_shallow": the outer ``cache_depth`` levels and the boundary block's
    upsampler, ``pipelines.feature_cache``)."""
    from ..model_dir import vae_scale_factor
    from ..models.sizes import build_networks, get_size
    from ..pipelines.feature_cache import DeepFeatureCache

    preset = get_size(size)
    model = model if model is not None else build_networks(preset.networks(), device="meta")
    dev = torch.device("meta")
    c = model.denoising_unet.config
    factor = vae_scale_factor(preset.vae)
    h, w = height // factor, width // factor
    ref = torch.empty(1, c.in_channels, h, w, device=dev)
    embeds = torch.empty(1, 1, c.cross_attention_dim, device=dev)
    bank = model.encode_reference(ref, embeds, cache_keys_values=ref_kv_cache)
    pose = model.encode_pose(torch.empty(1, 3, frames, height, width, device=dev))
    t = torch.tensor(500, device=dev)
    unet = model.denoising_unet
    x = torch.empty(1, c.in_channels, frames, h, w, device=dev)
    out = {}
    for kind, reference in (("uncond", None), ("cond", bank)):
        cache = DeepFeatureCache(unet, cache_depth)
        cache.refresh(keep=(kind,) if shallow else ())
        with cache.call(range(frames), (kind,), reuse=False):
            out[kind] = count_flops(lambda r=reference: unet(x, t, embeds, pose, r))
        if shallow:
            with cache.call(range(frames), (kind,), reuse=True):
                out[f"{kind}_shallow"] = count_flops(lambda r=reference: unet(x, t, embeds, pose, r))
    return out


@torch.no_grad()
def count_video_work_meta(
    size: str,
    width: int,
    height: int,
    frames: int,
    settings,
    ref_kv_cache: bool = True,
    decoder: str = "vae",
) -> dict[str, Any]:
    """The FLOPs of one video with the sampling ``settings`` (a ``pipelines.settings.SamplingSettings``, windows
    included), by stage, counted on the meta device from the step plan the sampler follows (``settings.plan``,
    ``sampling.step_schedules``): the UNet rows actually run (whole and shallow, guided or not, every window of
    every step), the Pose Guider (once per window and step, as the pipeline runs it), the reference stage (CLIP
    image embedding, VAE encode, ReferenceNet, the bank's keys/values; once) and the decode of every frame (the
    VAE's decoder, or with ``decoder="light"`` a ``LightDecoder`` of TAESD's size; the stage keeps its name)."""
    from diffusers import AutoencoderKL
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from ..model_dir import vae_scale_factor
    from ..models.sizes import build_networks, get_size
    from ..pipelines.sampling import step_schedules
    from ..pipelines.settings import STEP_FIELDS, WINDOW_FIELDS

    preset = get_size(size)
    dev = torch.device("meta")
    model = build_networks(preset.networks(), device="meta")
    with dev:
        vae = AutoencoderKL(**preset.vae)
        clip = CLIPVisionModelWithProjection(CLIPVisionConfig(**preset.image_encoder))
    factor = vae_scale_factor(preset.vae)
    h, w = height // factor, width // factor
    rows: dict[int, dict[str, tuple[int, dict[str, int]]]] = {}  # window length -> row kind -> FLOPs
    unet = {"whole": 0, "shallow": 0}
    counts = {"whole_rows": 0, "shallow_rows": 0, "window_frames": 0}
    schedules = step_schedules(settings.plan, settings, frames)
    for step, schedule in zip(settings.plan, schedules):
        for window, _ in schedule:
            f = len(window)
            if f not in rows:
                rows[f] = count_row_flops_meta(
                    size, width, height, f, ref_kv_cache, settings.cache_depth, shallow=True, model=model
                )
            part = "whole" if step.refresh else "shallow"
            suffix = "" if step.refresh else "_shallow"
            unet[part] += sum(rows[f][kind + suffix][0] for kind in step.kinds)
            counts[f"{part}_rows"] += len(step.kinds)
            counts["window_frames"] += f
    pose_frame = count_flops(lambda: model.encode_pose(torch.empty(1, 3, 1, height, width, device=dev)))[0]
    ref = torch.empty(1, model.denoising_unet.config.in_channels, h, w, device=dev)
    embeds = torch.empty(1, 1, model.denoising_unet.config.cross_attention_dim, device=dev)
    image = torch.empty(1, 3, height, width, device=dev)
    reference = {
        "clip": count_flops(lambda: clip(torch.empty(1, 3, 224, 224, device=dev)).image_embeds)[0],
        "vae_encode": count_flops(lambda: vae.encode(image).latent_dist.mean)[0],
        "reference_net": count_flops(lambda: model.encode_reference(ref, embeds, ref_kv_cache))[0],
    }
    latent = torch.empty(1, vae.config.latent_channels, h, w, device=dev)
    if decoder == "light":
        from ..models import LightDecoder

        with dev:
            light = LightDecoder(vae.config.latent_channels, 3, factor)
        decode_frame = count_flops(lambda: light(latent))[0]
    elif decoder == "vae":
        decode_frame = count_flops(lambda: vae.decode(latent))[0]
    else:
        raise ValueError(f"decoder={decoder!r}: choose vae or light")
    work = {
        "unet_whole": unet["whole"],
        "unet_shallow": unet["shallow"],
        "pose_guider": pose_frame * counts["window_frames"],
        "reference": sum(reference.values()),
        "vae_decode": decode_frame * frames,
    }
    return {
        "flops": {**work, "total": sum(work.values())},
        "reference_parts": reference,
        "unet_rows_per_video": {"full_rows": counts["whole_rows"], "shallow_rows": counts["shallow_rows"]},
        "row_flops": {f: {kind: n for kind, (n, _) in r.items()} for f, r in rows.items()},
        "pose_guider_per_frame": pose_frame,
        "vae_decode_per_frame": decode_frame,
        "settings": settings.part(STEP_FIELDS + WINDOW_FIELDS),
        "decoder": decoder,
        "size": size,
        "width": width,
        "height": height,
        "frames": frames,
        "context_frames": settings.context_frames,
        "context_overlap": settings.context_overlap,
        "window_mode": settings.window_mode,
    }


def peak_tflops(device_name: str, dtype: torch.dtype) -> float | None:
    """Dense bf16/fp16 peak of a known GPU, else None (no MFU for float32 or unknown devices)."""
    if dtype not in PEAK_DTYPES:
        return None
    for key, peak in PEAK_TFLOPS:
        if key.lower() in device_name.lower():
            return peak
    return None
