"""The peak device memory of a call, counted on the meta device (``pipelines/peak_memory.py``), against what the
same call really allocates on the CPU (PyTorch's profiler: every allocation and free of the CPU allocator), at
two sizes whose peaks fall in different stages (the fast tier checks one small size: tests/test_peak_memory.py)."""

from __future__ import annotations

import pytest

from test_peak_memory import check_within_margin

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    "model, width, height, frames, stage",
    [
        ("tiny", 256, 192, 24, "decode"),  # the VAE decode of a chunk of 8 frames is the peak
        ("mini", 128, 96, 16, "denoising"),  # one window's guided UNet call is
    ],
)
def test_the_estimate_is_within_its_margin_of_a_measured_cpu_peak(
    request, one_thread, model, width, height, frames, stage
):
    check_within_margin(request.getfixturevalue(f"{model}_model_dir"), width, height, frames, stage)
