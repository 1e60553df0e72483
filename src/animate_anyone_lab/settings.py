"""The sampling settings of the quality benchmark and the demo: one declaration, read by ``synthetic predict``,
``demo`` and their ``--help`` (a module of its own: building the command table loads nothing else of the lab)."""

from __future__ import annotations

import dataclasses

from animate_anyone.pipelines.settings import SamplingRequest

# The benchmark's own sampling (docs/benchmark.md) for a model that is not a distilled student
BENCHMARK_SAMPLING = SamplingRequest(steps=20, guidance=2.0, context_frames=24, context_overlap=4)


def benchmark_request(request: SamplingRequest | None, distilled: bool) -> SamplingRequest:
    """The request the benchmark and the demo sample with: without a preset, ``BENCHMARK_SAMPLING`` with the
    request's fields over it, unless the model is a distilled student (its own default preset); with a preset,
    the request as it is."""
    request = request or SamplingRequest()
    if request.preset is None and not distilled:
        return dataclasses.replace(BENCHMARK_SAMPLING, **request.given())
    return request
