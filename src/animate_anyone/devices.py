"""The one device / dtype policy of every command.

Policy (``auto``): the device is CUDA when PyTorch sees one, else the CPU. The dtype is bfloat16 on a CUDA
device that supports it (Ampere and later: the range of float32, so no overflow in the attention of long
videos), float16 on older CUDA devices, and float32 on the CPU (bfloat16 matmuls are not faster there on most
CPUs, and float32 is the reference the tests hold everything to).
"""

from __future__ import annotations

import torch

from .config import SettingError

DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}
DTYPE_HELP = "auto (bfloat16 on CUDA where supported, else float16; float32 on CPU), float32, float16, bfloat16"
DEVICE_HELP = "auto (CUDA when present, else CPU), cpu, cuda, cuda:1, ..."


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``auto``/None: CUDA when available, else CPU; a name is checked against what this PyTorch can use."""
    if isinstance(device, torch.device):
        return device
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise SettingError("device", device, f"not a device name; use {DEVICE_HELP}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise SettingError("device", device, "this PyTorch sees no CUDA device; use cpu or auto")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise SettingError("device", device, f"only {torch.cuda.device_count()} CUDA device(s) are visible")
    elif dev.type != "cpu":
        raise SettingError("device", device, f"unsupported device type {dev.type!r}; use {DEVICE_HELP}")
    return dev


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """``auto``/None: the policy above for ``device``; else a dtype or one of the names in ``DTYPES``."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in (None, "auto"):
        if device.type != "cuda":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if dtype not in DTYPES:
        raise SettingError("dtype", dtype, f"unknown dtype; use {DTYPE_HELP}")
    return DTYPES[dtype]
