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
    """FLOPs of ONE UNet call on a window of ``frames`` frames (rows [uncond, cond] with guidance), counted on the
    meta device: no memory, no compute, seconds even for sd15.

    The guided call selects its reference rows with a slice the meta device cannot follow into the merged
    attention kernels, so it is counted as the sum of its row groups: the conditional row with the reference plus
    the unconditional row without it. Every counted op is linear in the batch, so the sum is exact (checked
    against a real call in the tests). ``ref_kv_cache=False``: the reference keys/values are projected in every
    call (counted here) instead of once per video.
    """
    from ..models.presets import build_networks, get_preset

    preset = get_preset(size)
    model = model if model is not None else build_networks(preset.networks(), device="meta")
    dev = torch.device("meta")
    c = model.denoising_unet.config
    factor = 2 ** (len(preset.vae["block_out_channels"]) - 1)
    h, w = height // factor, width // factor
    ref = torch.empty(1, c.in_channels, h, w, device=dev)
    embeds = torch.empty(1, 1, c.cross_attention_dim, device=dev)
    bank = model.encode_reference(ref, embeds, cache_keys_values=ref_kv_cache)
    pose = model.encode_pose(torch.empty(1, 3, frames, height, width, device=dev))
    t = torch.tensor(500, device=dev)
    unet = model.denoising_unet

    def rows(with_reference: bool):
        x = torch.empty(1, c.in_channels, frames, h, w, device=dev)
        return lambda: unet(x, t, embeds, pose, bank if with_reference else None)

    total_c, ops_c = count_flops(rows(True))
    if not guidance:
        return total_c, ops_c
    total_u, ops_u = count_flops(rows(False))
    return total_c + total_u, {k: ops_c.get(k, 0) + ops_u.get(k, 0) for k in sorted(set(ops_c) | set(ops_u))}


def peak_tflops(device_name: str, dtype: torch.dtype) -> float | None:
    """Dense bf16/fp16 peak of a known GPU, else None (no MFU for float32 or unknown devices)."""
    if dtype not in PEAK_DTYPES:
        return None
    for key, peak in PEAK_TFLOPS:
        if key.lower() in device_name.lower():
            return peak
    return None
