"""The one way every front end gets a pipeline: device and dtype resolved once, weights loaded, bars set.

    pipe = load_pipeline("models/animate-anyone")                       # auto device and dtype
    pipe = load_pipeline("org/name", revision="v1")                     # a model directory on the Hugging Face Hub
    pipe = load_pipeline(components, device="cuda", dtype="bfloat16")   # networks built by the caller

Used by ``animate`` (and through it the app and batch jobs), the demo, ``synthetic predict``, the speed benchmark
and the ComfyUI node.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch

from ..devices import resolve_device, resolve_dtype
from .optimisations import Optimisations, as_optimisations
from .pipeline_animate_anyone import AnimateAnyonePipeline


def load_pipeline(
    model: str | os.PathLike[str] | Mapping[str, Any],
    device: str | torch.device = "auto",
    dtype: str | torch.dtype = "auto",
    *,
    progress: bool = True,
    optimisations: Optimisations | dict | None = None,
    revision: str | None = None,
) -> AnimateAnyonePipeline:
    """The pipeline of ``model`` (a model directory: a local folder or a Hugging Face Hub id ``org/name`` at
    ``revision``, read from its local snapshot, ``hub.resolve_model``; or a mapping of built components) on ``device``
    in ``dtype`` (``devices``: "auto" is the policy there; an already resolved ``torch.device`` is used as it is).
    ``progress``: the loading bars of diffusers / transformers and the pipeline's denoising bar; ``optimisations``:
    ``pipe.set_optimisations`` (None: the defaults); with ``offload`` the weights stay in host memory and diffusers'
    offloading moves them to ``device`` as they run."""
    from ..quiet import hide_progress_bars

    device = resolve_device(device)
    dtype = resolve_dtype(dtype, device)
    if not progress:
        hide_progress_bars()
    if isinstance(model, Mapping):
        pipe = AnimateAnyonePipeline(**model).to(dtype=dtype)
    else:
        pipe = AnimateAnyonePipeline.from_pretrained(model, dtype=dtype, revision=revision)
    options = as_optimisations(optimisations)
    options.check_device(device)
    if options.offload == "none":
        pipe.to(device)
    else:  # the weights stay in host memory; diffusers' hooks move them to the device when they run
        pipe.set_offload(options.offload, device)
    pipe.set_progress_bar_config(disable=not progress, desc="denoising (steps x windows)")
    if optimisations is not None:
        pipe.set_optimisations(options)
    return pipe
