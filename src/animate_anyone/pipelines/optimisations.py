"""Inference optimisations: a pipeline feature shared by ``animate``, the Python API, the benchmark and the app.

    pipe.set_optimisations(fused_qkv=True, window_batch=4)      # or an Optimisations(...)
    pipe(reference, poses, ...)                                 # runs with them until changed

Every switch leaves the outputs unchanged up to float rounding (measured in ``tests/test_optimisations.py``:
at most 1.3e-5 in the latents, 1 level in the decoded frames). Module-level switches (``sdpa``, ``fused_qkv``,
``channels_last``, ``compile``) change the networks in place and are undone by switching them off again;
call-level switches (``ref_kv_cache``, ``decode_chunk_size``, ``window_batch``) are read by each call.

Memory, not speed: ``offload`` is diffusers' CPU offloading ("model": ``enable_model_cpu_offload``, one network on
the accelerator at a time along ``model_cpu_offload_seq``; "sequential": ``enable_sequential_cpu_offload``, one
layer at a time, much slower), and ``vae_tiling`` decodes each frame in overlapping tiles (diffusers'
``AutoencoderKL.enable_tiling``; not exact at the tiles' seams, for outputs larger than the VAE's tile, 512 px for
SD-1.5). A ``decode_chunk_size`` of 1 is diffusers' VAE slicing. Their effect on the peak is counted by
``pipelines.peak_memory`` (``animate --estimate-memory``).

Defaults: what was measured faster, or is exact and saves memory, on the machines we could measure
(docs/performance.md): the reference K/V cache, diffusers' SDPA processor and chunked VAE decoding are on;
fused QKV (+2-4% per step on CPU, within run-to-run noise, for a second copy of the projection weights),
channels-last (mixed on CPU), window batching (slower on CPU) and torch.compile are off until measured on a GPU.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from ..config import SettingError

SWITCHES: dict[str, str] = {
    "ref_kv_cache": "reference keys/values projected once per video (off: at every UNet call)",
    "sdpa": "F.scaled_dot_product_attention for cross/temporal attention (off: diffusers' AttnProcessor)",
    "fused_qkv": "fused QKV projections (diffusers fuse_projections), also in the reference processors",
    "channels_last": "channels-last memory format for the UNets, pose guider and VAE",
    "chunked_decode": "VAE decodes decode_chunk_size frames per call (off: all frames in one call)",
}
OFFLOADS = ("none", "model", "sequential")  # diffusers' CPU offloading (module doc)


@dataclass(frozen=True)
class Optimisations:
    """The inference switches (see the module doc). ``decode_chunk_size=None``: the whole video in one VAE call."""

    ref_kv_cache: bool = True
    sdpa: bool = True
    fused_qkv: bool = False
    channels_last: bool = False
    decode_chunk_size: int | None = 8
    window_batch: int = 1
    compile: bool = False
    offload: str = "none"  # OFFLOADS
    vae_tiling: bool = False

    def __post_init__(self):
        if self.offload not in OFFLOADS:
            raise SettingError("offload", self.offload, f"must be one of {', '.join(OFFLOADS)}")
        if self.decode_chunk_size is not None and self.decode_chunk_size < 1:
            raise ValueError(
                f"decode_chunk_size must be >= 1 (or None: all frames at once), got {self.decode_chunk_size}"
            )
        if self.window_batch < 1:
            raise ValueError(f"window_batch must be >= 1, got {self.window_batch}")

    def check_device(self, device: torch.device) -> None:
        """``offload`` needs an accelerator to offload to (``SettingError`` on the CPU, before anything loads)."""
        if self.offload != "none" and device.type == "cpu":
            raise SettingError(
                "offload",
                self.offload,
                "moves the networks to an accelerator as they run; on the CPU they are in host memory already: "
                "use none",
            )

    def switches(self) -> dict[str, bool]:
        """The on/off view used by the benchmark (``chunked_decode`` = a chunk size is set)."""
        return {
            "ref_kv_cache": self.ref_kv_cache,
            "sdpa": self.sdpa,
            "fused_qkv": self.fused_qkv,
            "channels_last": self.channels_last,
            "chunked_decode": self.decode_chunk_size is not None,
        }

    def with_switches(self, switches: dict[str, bool] | None, chunk_size: int = 8) -> Optimisations:
        """A copy with the given on/off switches (unknown names raise)."""
        switches = dict(switches or {})
        unknown = sorted(set(switches) - set(SWITCHES))
        if unknown:
            raise ValueError(f"unknown optimisation switch(es) {unknown}; known: {sorted(SWITCHES)}")
        values = {k: bool(v) for k, v in switches.items() if k != "chunked_decode"}
        if "chunked_decode" in switches:
            values["decode_chunk_size"] = (self.decode_chunk_size or chunk_size) if switches["chunked_decode"] else None
        return dataclasses.replace(self, **values)


def as_optimisations(value: Optimisations | dict | None, base: Optimisations | None = None) -> Optimisations:
    """An ``Optimisations`` from itself, a dict of its fields (over ``base``), or None (``base`` or the defaults)."""
    base = base or Optimisations()
    if value is None:
        return base
    if isinstance(value, Optimisations):
        return value
    fields = {f.name for f in dataclasses.fields(Optimisations)}
    unknown = sorted(set(value) - fields)
    if unknown:
        raise ValueError(f"unknown optimisation(s) {unknown}; known: {sorted(fields)}")
    return dataclasses.replace(base, **value)


# -- the module-level switches ---------------------------------------------------------------------------------


def _attention_modules(model: torch.nn.Module):
    from diffusers.models.attention_processor import Attention

    return [m for m in model.modules() if isinstance(m, Attention)]


def _is_reference_processor(processor) -> bool:
    from ..models.reference_attention import ReferenceReadProcessor, ReferenceWriteProcessor

    return isinstance(processor, (ReferenceReadProcessor, ReferenceWriteProcessor))


@contextlib.contextmanager
def classic_attention(*models: torch.nn.Module) -> Iterator[None]:
    """Swap diffusers' SDPA processor (``AttnProcessor2_0``) for the classic ``AttnProcessor`` on the stock
    attention layers (cross-attention, temporal layers); the reference processors are left alone."""
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    saved = []
    for model in models:
        for module in _attention_modules(model):
            if isinstance(module.processor, AttnProcessor2_0):
                saved.append((module, module.processor))
                module.set_processor(AttnProcessor())
    try:
        yield
    finally:
        for module, processor in saved:
            module.set_processor(processor)


@contextlib.contextmanager
def fused_qkv_projections(*models: torch.nn.Module) -> Iterator[None]:
    """Fuse the attention projections of ``models`` (inference only), undone on exit.

    diffusers' ``UNet*.fuse_qkv_projections()`` would replace every processor, including our reference
    processors, by ``FusedAttnProcessor2_0``, which knows nothing of the reference. So: every ``Attention``
    gets its fused projection (``Attention.fuse_projections``: ``to_qkv`` for self-attention, ``to_kv`` for
    cross-attention); stock SDPA processors become ``FusedAttnProcessor2_0``; the reference processors use
    ``to_qkv`` themselves. Other processors (e.g. the classic one) keep the separate projections. Costs a second
    copy of the projection weights.
    """
    from diffusers.models.attention_processor import AttnProcessor2_0, FusedAttnProcessor2_0

    fused = []
    try:
        for model in models:
            for module in _attention_modules(model):
                processor = module.processor
                head_dim = module.inner_dim // module.heads
                stock = type(processor) is AttnProcessor2_0 and math.isclose(module.scale, head_dim**-0.5)
                if not (stock or _is_reference_processor(processor)):
                    continue  # FusedAttnProcessor2_0 ignores attn.scale; other processors ignore to_qkv
                module.fuse_projections(fuse=True)
                fused.append((module, processor))
                if stock:
                    module.set_processor(FusedAttnProcessor2_0())
        yield
    finally:
        for module, processor in fused:
            module.set_processor(processor)
            for name in ("to_qkv", "to_kv"):
                if hasattr(module, name):
                    delattr(module, name)
            module.fused_projections = False


@contextlib.contextmanager
def channels_last(*models: torch.nn.Module) -> Iterator[None]:
    """Channels-last weights (4-D parameters), so convolutions produce channels-last activations; undone on exit."""
    for model in models:
        model.to(memory_format=torch.channels_last)
    try:
        yield
    finally:
        for model in models:
            model.to(memory_format=torch.contiguous_format)


@contextlib.contextmanager
def compiled(module: torch.nn.Module) -> Iterator[None]:
    """``torch.compile`` of ``module`` in place (compilation happens at its first call); undone on exit."""
    module.compile()
    try:
        yield
    finally:
        module._compiled_call_impl = None


@contextlib.contextmanager
def vae_tiling(vae) -> Iterator[None]:
    """diffusers' tiled VAE decoding, undone on exit."""
    vae.enable_tiling()
    try:
        yield
    finally:
        vae.disable_tiling()


@contextlib.contextmanager
def applied(model, vae, options: Optimisations) -> Iterator[Optimisations]:
    """The module-level switches of ``options`` on an ``AnimateAnyone`` model (and its VAE), for a ``with`` block."""
    unets = [model.reference_net, model.denoising_unet]
    with contextlib.ExitStack() as stack:
        if not options.sdpa:
            stack.enter_context(classic_attention(*unets))
        if options.fused_qkv:
            stack.enter_context(fused_qkv_projections(*unets))
        if options.channels_last:
            stack.enter_context(channels_last(*unets, model.pose_guider, *([vae] if vae is not None else [])))
        if options.compile:
            stack.enter_context(compiled(model.denoising_unet))
        if options.vae_tiling and vae is not None:
            stack.enter_context(vae_tiling(vae))
        yield options
