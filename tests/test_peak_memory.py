"""The peak device memory of a call, counted on the meta device (``pipelines/peak_memory.py``), against what the
same call really allocates on the CPU (PyTorch's profiler: every allocation and free of the CPU allocator), at
two sizes whose peaks fall in different stages; and what offloading and the decode chunk change in the count."""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
import torch

from animate_anyone.pipelines.loading import load_pipeline
from animate_anyone.pipelines.peak_memory import estimate_call_memory, measured_cpu_peak, meta_pipeline, weight_bytes

MARGIN = 0.10  # the estimate's stated margin against a measured CPU peak (docs/performance.md)
WINDOWS = {"steps": 2, "context_frames": 8, "context_overlap": 2}  # several windows, guided


def measured(model_dir, width, height, frames) -> tuple[int, int]:
    """(weights, the most the call held above them) of a real float32 call on the CPU."""
    pipe = load_pipeline(model_dir, "cpu", "float32", progress=False)
    weights = sum(weight_bytes(c) for c in pipe.components.values() if isinstance(c, torch.nn.Module))
    reference = PIL.Image.new("RGB", (width, height), "tan")
    poses = np.zeros((frames, height, width, 3), np.uint8)  # at the output size: no resized copy

    def call():
        pipe(reference, poses, WINDOWS, height=height, width=width, frame_sink=lambda frame: None)

    return weights, measured_cpu_peak(call)


def check_within_margin(model_dir, width: int, height: int, frames: int, stage: str) -> None:
    """The count of one call against its measured CPU peak: the stage of the peak, the weights exactly, the total
    and the activations (the part the count had to find) within ``MARGIN``."""
    estimate = estimate_call_memory(model_dir, width=width, height=height, num_frames=frames, sampling=WINDOWS)
    weights, call_peak = measured(model_dir, width, height, frames)
    assert estimate["peak_stage"] == stage
    assert estimate["stages"][stage]["weights"] == weights  # every network on the device, counted exactly
    total = weights + call_peak
    assert abs(estimate["peak_bytes"] - total) <= MARGIN * total, (estimate["peak_bytes"], total)
    activations = estimate["peak_bytes"] - weights
    assert abs(activations - call_peak) <= MARGIN * call_peak, (activations, call_peak)


def test_the_estimate_is_within_its_margin_of_a_measured_cpu_peak(tiny_model_dir, one_thread):
    """The decode of a chunk of 8 frames is the peak here; two more sizes, larger, and one whose peak is the
    denoising, in tests/integration/test_peak_memory.py."""
    check_within_margin(tiny_model_dir, 96, 64, 10, "decode")


def test_offloading_and_the_decode_chunk_lower_the_counted_peak(tiny_model_dir):
    pipe = meta_pipeline(tiny_model_dir)  # built once from the configs, counted four times

    def peak(**optimisations):
        return estimate_call_memory(
            pipe, width=128, height=96, num_frames=16, sampling=WINDOWS, optimisations=optimisations
        )

    whole, model, sequential = peak(), peak(offload="model"), peak(offload="sequential")
    weights = {stage: parts["weights"] for stage, parts in whole["stages"].items()}
    assert len(set(weights.values())) == 1  # nothing offloaded: every network at every stage
    held = {stage: parts["weights"] for stage, parts in model["stages"].items()}
    assert held["denoising"] < weights["denoising"] and held["decode"] < held["denoising"]
    assert max(p["weights"] for p in sequential["stages"].values()) < min(held.values())
    assert whole["peak_bytes"] > model["peak_bytes"] > sequential["peak_bytes"]
    with pytest.raises(ValueError, match="counts on the meta device, and this pipeline is on cpu"):
        estimate_call_memory(load_pipeline(tiny_model_dir, "cpu", progress=False), width=64, height=64, num_frames=2)
    small_chunks = peak(decode_chunk_size=2)["stages"]["decode"]["decode chunk"]
    assert small_chunks < 0.5 * whole["stages"]["decode"]["decode chunk"]  # a quarter of the frames per VAE call


def test_the_animate_command_estimates_before_anything_loads(tiny_model_dir, tmp_path, capsys):
    """`animate --estimate-memory` prints the count for the command's own settings and writes it; nothing runs, and
    without a size or a frame count it says which flag gives it."""
    import json

    from animate_anyone.cli.main import main

    out = tmp_path / "estimate.json"
    argv = ["animate", "--model", str(tiny_model_dir), "--estimate-memory", "--size", "96x64", "--frames", "10"]
    assert main([*argv, "--steps", "2", "--context-frames", "8", "--context-overlap", "2", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    written = json.loads(out.read_text())
    expected = estimate_call_memory(tiny_model_dir, width=96, height=64, num_frames=10, sampling=WINDOWS)
    assert written["peak_bytes"] == expected["peak_bytes"] and written["stages"] == expected["stages"]
    assert f"peak ({expected['peak_stage']}): {expected['peak_bytes'] / 2**30:.2f} GiB" in printed
    offloaded = tmp_path / "offloaded.json"
    assert main([*argv, "--offload", "model", "--json", str(offloaded)]) == 0  # counted for a GPU, on any machine
    assert json.loads(offloaded.read_text())["offload"] == "model"
    assert main(argv[:4] + ["--frames", "10"]) == 2
    assert "give --size (or the reference image)" in capsys.readouterr().err
    assert main(argv[:6]) == 2
    assert "give --frames (or the motion)" in capsys.readouterr().err


def test_a_hub_id_is_counted_from_its_snapshot_and_refused_offline_in_one_line(monkeypatch):
    """``estimate_call_memory`` resolves a Hub id as every loader does (``hub.resolve_model``): uncached and offline,
    the Hub's one line, not a missing-folder error."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ValueError, match="'nosuchorg/nosuchmodel' is not in the Hugging Face cache"):
        estimate_call_memory("nosuchorg/nosuchmodel", width=64, height=64, num_frames=2)
