"""Where and how things run: the one device / dtype policy of every command, and the one input-size check.

Policy (``auto``): the device is CUDA when PyTorch sees one, else the CPU. The dtype is bfloat16 on a CUDA
device that supports it (Ampere and later: the range of float32, so no overflow in the attention of long
videos), float16 on older CUDA devices, and float32 on the CPU (bfloat16 matmuls are not faster there on most
CPUs, and float32 is the reference the tests hold everything to).
"""

from __future__ import annotations

import contextlib

import torch

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
        raise ValueError(f"--device {device}: not a device name; use {DEVICE_HELP}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {device}: this PyTorch sees no CUDA device; use --device cpu or auto")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) are visible")
    elif dev.type != "cpu":
        raise ValueError(f"--device {device}: unsupported device type {dev.type!r}; use {DEVICE_HELP}")
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
        raise ValueError(f"--dtype {dtype}: unknown dtype; use {DTYPE_HELP}")
    return DTYPES[dtype]


def check_size(width: int, height: int, what: str = "size", multiple: int = 8) -> tuple[int, int]:
    """ValueError unless both sides are positive multiples of ``multiple`` (the VAE's downsampling factor);
    the message suggests the nearest valid value. Returns (width, height)."""
    for name, value in (("width", width), ("height", height)):
        if value <= 0 or value % multiple:
            nearest = max(multiple, round(value / multiple) * multiple)
            raise ValueError(f"{what}: {name} {value} is not a positive multiple of {multiple}; try {nearest}")
    return width, height


def parse_size(size: str | None, what: str = "--size") -> tuple[int, int] | None:
    """``"512x768"`` -> (512, 768) = (width, height), checked by :func:`check_size`; None stays None."""
    if size is None:
        return None
    try:
        width, height = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise ValueError(f"{what} must look like WIDTHxHEIGHT (e.g. 512x768), got {size!r}") from None
    return check_size(width, height, f"{what} {size}")


def silence_libraries() -> None:
    """``--quiet``: no loading bars from diffusers / transformers / huggingface_hub and no C++ log lines from
    MediaPipe (absl/glog) or TensorFlow Lite. Environment first (read when those libraries start), then the
    switches of the libraries already imported or cheap to import."""
    import importlib
    import importlib.util
    import os

    global _QUIET
    _QUIET = True
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for name in ("diffusers", "transformers"):
        if importlib.util.find_spec(name) is not None:
            module = importlib.import_module(f"{name}.utils.logging")
            module.disable_progress_bar()
            module.set_verbosity_error()


def frames_range(frames: int | None, source, available: int) -> str:
    """The one wording of a --frames value outside what the pose sequence holds."""
    return (
        f"--frames {frames}: the pose sequence {source} has {available} frames; use 1 to {available}, "
        "or leave --frames out for all of them"
    )


def available_memory(device: torch.device | None = None) -> int:
    """Bytes free now: on a CUDA device its free memory, else the system's available memory (MemAvailable)."""
    if device is not None and device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import os

    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_memory(needed: int, what: str, fix: str, device: torch.device | None = None) -> None:
    """ValueError before any work when ``needed`` bytes (a lower bound of what the job will allocate) exceed the
    memory available on ``device``."""
    free = available_memory(device)
    if needed > free:
        where = "GPU" if device is not None and device.type == "cuda" else "system"
        raise ValueError(
            f"{what} needs at least {needed / 2**30:.1f} GiB of memory, and {free / 2**30:.1f} GiB of {where} memory "
            f"is available; {fix}"
        )


def check_at_least(flag: str, value: int | float | None, low: int | float) -> None:
    """ValueError naming the flag when a given numeric value is below ``low`` or not a number (NaN, inf)."""
    import math

    if value is None:
        return
    if not math.isfinite(value) or value < low:
        raise ValueError(f"{flag} {value}: must be a number >= {low}")


_QUIET = False  # set by silence_libraries (--quiet)


@contextlib.contextmanager
def native_logs_silenced():
    """Under ``--quiet``, the C++ log lines that native libraries (MediaPipe's absl logging) write straight to
    file descriptor 2 go to /dev/null for the duration of the block; otherwise nothing changes."""
    if not _QUIET:
        yield
        return
    import os
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
