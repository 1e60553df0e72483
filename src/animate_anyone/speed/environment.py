"""What a benchmark result records about the machine, and how memory is measured (CUDA allocator or CPU RSS)."""

from __future__ import annotations

import os
import platform
import resource
import sys
from typing import Any

import torch


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


class MemoryProbe:
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
