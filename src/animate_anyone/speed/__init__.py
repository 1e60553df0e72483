"""Inference benchmark: speed, memory and FLOPs of the real pipeline, and the optimisation switches.

    from animate_anyone.speed import run_benchmark, run_comparison
    result = run_benchmark("tiny", frames=8, steps=2)          # one configuration -> dict (JSON-ready)
    report = run_comparison("tiny", frames=8, steps=2)         # default vs each optimisation toggled

The model is built at a named size (``models.sizes``) with random weights directly in memory (speed does not
depend on the values) and run through ``AnimateAnyonePipeline.__call__``, timed stage by stage through its
hooks: reference (CLIP embedding, VAE encode, one ReferenceNet pass), Pose Guider (per window), the denoising
steps and the chunked VAE decode to uint8. The optimisations are the pipeline's own
(``pipelines.optimisations``), with the pipeline's defaults.

Modules: ``config`` (``BenchConfig``), ``runner`` (``Bench``, ``StageTimer``), ``compare`` (the entry points),
``flops``, ``environment`` (machine and memory), ``report`` (tables).
"""

from ..pipelines.optimisations import SWITCHES
from .compare import run_benchmark, run_comparison
from .config import BenchConfig
from .flops import count_flops, count_unet_flops_meta, flop_counter, peak_tflops
from .report import format_comparison, format_result
from .runner import Bench, StageTimer, randomise_zero_parameters

__all__ = [
    "SWITCHES",
    "Bench",
    "BenchConfig",
    "StageTimer",
    "count_flops",
    "count_unet_flops_meta",
    "flop_counter",
    "format_comparison",
    "format_result",
    "peak_tflops",
    "randomise_zero_parameters",
    "run_benchmark",
    "run_comparison",
]
