"""The memory estimate against measured CPU peaks (docs/performance.md, "Inference memory before the run").

    .venv/bin/python scripts/check_memory_estimate.py [--out docs/performance_results/inference_memory_checks.json]

Builds the tiny and mini models with `init-model` in a temporary folder, counts each call on the meta device
(``estimate_call_memory``) and measures the same float32 call on the CPU (PyTorch's profiler over every allocation
and free, plus the weights), as tests/test_peak_memory.py does. One thread, so that kernels' per-thread buffers stay
out of the figures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import PIL.Image
import torch

from animate_anyone.atomic import write_text
from animate_anyone.pipelines.loading import load_pipeline
from animate_anyone.pipelines.peak_memory import estimate_call_memory, measured_cpu_peak, weight_bytes

SAMPLING = {"steps": 2, "context_frames": 8, "context_overlap": 2}
CASES = [("tiny", 96, 64, 10), ("tiny", 128, 128, 8), ("tiny", 256, 192, 24), ("mini", 128, 96, 16)]
MIB = 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/performance_results/inference_memory_checks.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for architecture in sorted({case[0] for case in CASES}):
            command = [sys.executable, "-m", "animate_anyone.cli.main", "init-model", "--architecture", architecture]
            subprocess.run([*command, "--out", f"{folder}/{architecture}"], check=True, capture_output=True)
        for architecture, width, height, frames in CASES:
            model = Path(folder) / architecture
            estimate = estimate_call_memory(model, width=width, height=height, num_frames=frames, sampling=SAMPLING)
            pipe = load_pipeline(model, "cpu", "float32", progress=False)
            weights = sum(weight_bytes(c) for c in pipe.components.values() if isinstance(c, torch.nn.Module))
            reference = PIL.Image.new("RGB", (width, height), "tan")
            poses = np.zeros((frames, height, width, 3), np.uint8)
            measured = weights + measured_cpu_peak(
                lambda p=pipe, r=reference, v=poses, h=height, w=width: p(
                    r, v, SAMPLING, height=h, width=w, frame_sink=lambda frame: None
                )
            )
            rows.append(
                {
                    "model": architecture,
                    "size": f"{width}x{height}",
                    "frames": frames,
                    "peak_stage": estimate["peak_stage"],
                    "counted_mib": round(estimate["peak_bytes"] / MIB, 2),
                    "measured_mib": round(measured / MIB, 2),
                    "difference_percent": round(100 * (estimate["peak_bytes"] - measured) / measured, 1),
                }
            )
            print(rows[-1])
    record = {"command": "python scripts/check_memory_estimate.py", "sampling": SAMPLING, "dtype": "float32"}
    record["rows"] = rows
    write_text(args.out, json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
