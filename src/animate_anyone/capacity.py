"""How much memory is free, and the one check that a job fits before it starts."""

from __future__ import annotations

import torch


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


def memory_shortfall(needed: int, device: torch.device | None = None) -> str | None:
    """None when ``needed`` bytes fit in the memory available on ``device``, else the shortfall in words ("needs at
    least ... GiB of memory, and ... GiB of system memory is available"), e.g. for a ``SettingError``'s rule."""
    free = available_memory(device)
    if needed <= free:
        return None
    where = "GPU" if device is not None and device.type == "cuda" else "system"
    return (
        f"needs at least {needed / 2**30:.1f} GiB of memory, and {free / 2**30:.1f} GiB of {where} memory is available"
    )


def check_memory(needed: int, what: str, fix: str, device: torch.device | None = None) -> None:
    """ValueError before any work when ``needed`` bytes (a lower bound of what the job will allocate) exceed the
    memory available on ``device``."""
    shortfall = memory_shortfall(needed, device)
    if shortfall is not None:
        raise ValueError(f"{what} {shortfall}; {fix}")
