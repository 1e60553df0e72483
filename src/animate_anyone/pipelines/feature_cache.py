"""DeepCache-style feature reuse across denoising steps (Ma et al., 2023), for the denoising UNet.

Between neighbouring steps the UNet's deep, low-resolution features change little; the outer levels, which
see the fresh latents through their skip connections, do the fine work. On a refresh step the UNet runs whole
and the cache keeps the features entering the upsampler of the up-block just inside the ``depth`` outermost
levels (the "boundary" block). On the other steps only the ``depth`` outermost down-blocks and up-blocks run;
the inner down-blocks, the mid-block and the inner up-blocks are skipped, and the boundary block's upsampler
runs on the kept features (keeping them before the upsampler holds 4x fewer values than after it).

Where the paper's parts fall: the outer levels keep everything they own, so the pose features (added at
``conv_in``), the reference attention of the outer transformer blocks and the outer temporal layers are
recomputed at every step; the inner levels' reference attention and temporal layers are reused from the last
refresh step.

What is kept, and where: features are kept per window of the refresh step's window grid (the shallow steps
after it use the same grid, ``presets.step_plan``) and per row kind (unconditional, conditional), only for the
kinds the later steps read, and only until the next refresh. So a window reuses exactly the features it made
itself, under torchrun each process keeps only its own windows', and nothing stale can be read. They are kept
in host memory (pageable), so that device memory does not grow with the video's length; each window's features
go to the device when that window runs.

The skipping is done by swapping the ``forward`` of the skipped blocks for the length of one UNet call
(diffusers' ``UNetMotionModel.forward`` then runs unchanged): skipped down-blocks hand on their input and
placeholders for their skip connections (which only the skipped up-blocks would read), the mid-block and inner
up-blocks hand on their input, and the boundary block runs its upsampler(s) on the kept features. Swapped
forwards and capture hooks are not what a ``torch.compile`` graph of the UNet was traced with, so the calls of a
cached video run the UNet eagerly (``unet.compile()`` is bypassed for them; the pipeline says so once).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor, nn

from .settings import ROW_KINDS


def boundary_block(block_out_channels: Sequence[int], depth: int) -> tuple[int, int, int]:
    """For ``depth`` outer levels run at every step: (index of the boundary up-block, its output channels, how
    many times smaller than the latents its input is). ValueError unless 1 <= depth < levels."""
    levels = len(block_out_channels)
    if not 1 <= depth < levels:
        raise ValueError(f"cache_depth must be between 1 and {levels - 1} for a UNet of {levels} levels, got {depth}")
    index = levels - 1 - depth
    return index, list(reversed(block_out_channels))[index], 2**depth


class DeepFeatureCache:
    """Kept deep features of one video. ``depth``: how many outer UNet levels run at every step (1 = only the
    outermost level, the most reuse; must leave at least one level inside)."""

    def __init__(self, unet: nn.Module, depth: int = 1):
        index, _, _ = boundary_block(unet.config.block_out_channels, depth)
        self.unet, self.depth = unet, depth
        self.boundary = unet.up_blocks[index]  # its upsampled output enters the outer up-blocks
        self.features: dict[tuple[tuple[int, ...], str], Tensor] = {}  # (window frames, kind) -> (b*f, C, h, w), host
        self.keep: tuple[str, ...] = ()

    def refresh(self, keep: tuple[str, ...]) -> None:
        """A refresh step begins: forget everything kept, and keep the row kinds ``keep`` of its windows."""
        unknown = set(keep) - set(ROW_KINDS)
        if unknown:
            raise ValueError(f"unknown row kinds {sorted(unknown)}; known: {ROW_KINDS}")
        self.features, self.keep = {}, tuple(keep)

    @contextlib.contextmanager
    def call(self, window, kinds: tuple[str, ...], reuse: bool) -> Iterator[bool]:
        """Around one UNet call on the window of frames ``window`` (indices into the video) whose batch is ``kinds``
        (row kinds, in order, each ``batch`` rows). ``reuse``: skip the deep levels, with the features this same
        window kept at the refresh step (an error if it kept none of a kind, e.g. on another window grid);
        otherwise the call runs whole and keeps the kinds of ``refresh(keep)``. Yields whether it reused."""
        window = tuple(int(i) for i in window)
        if reuse:
            missing = [kind for kind in kinds if (window, kind) not in self.features]
            if missing:
                raise RuntimeError(
                    f"the window of frames {window[0]}..{window[-1]} kept no {missing} features at its refresh step: "
                    "the step plan and the sampler disagree (presets.step_plan)"
                )
            device = next(self.boundary.parameters()).device
            kept = torch.cat([self.features[window, kind].to(device, non_blocking=True) for kind in kinds])
            with _eager(self.unet), _skipped(self.unet, self.depth, self.boundary, kept):
                yield True
            return
        if not self.keep:
            with _eager(self.unet):
                yield False
            return
        captured: list[Tensor] = []
        upsampler = self.boundary.upsamplers[0]
        handle = upsampler.register_forward_pre_hook(_capture(captured), with_kwargs=True)
        try:
            with _eager(self.unet):
                yield False
        finally:
            handle.remove()
        rows = captured[-1].unflatten(0, (len(kinds), -1))  # (k*b*f, C, h, w) -> (k, b*f, C, h, w)
        for kind, features in zip(kinds, rows):
            if kind in self.keep:
                self.features[window, kind] = _to_host(features)


def _capture(captured: list[Tensor]):
    def hook(module, args, kwargs):
        captured.append(kwargs["hidden_states"] if "hidden_states" in kwargs else args[0])

    return hook


def _to_host(features: Tensor) -> Tensor:
    """A copy in host memory: pageable, not pinned (PyTorch's pinned-memory allocator rounds every block up to a
    power of two and keeps it until the process ends, which would hold up to twice what ``pipelines.memory``
    counts, for the life of an app)."""
    if features.device.type in ("cpu", "meta"):  # meta: FLOP counts (speed.flops)
        return features.clone()
    return features.to("cpu")


@contextlib.contextmanager
def _eager(unet: nn.Module) -> Iterator[None]:
    """The module's own ``forward`` for one call even when ``unet.compile()`` was applied (see the module doc)."""
    compiled = getattr(unet, "_compiled_call_impl", None)
    unet._compiled_call_impl = None
    try:
        yield
    finally:
        unet._compiled_call_impl = compiled


@contextlib.contextmanager
def _skipped(unet: nn.Module, depth: int, boundary: nn.Module, kept: Tensor) -> Iterator[None]:
    """Swap the forward of the inner blocks for one call: see the module doc."""
    levels = len(unet.down_blocks)
    swapped: list[nn.Module] = []

    def swap(module: nn.Module, forward) -> None:
        module.forward = forward  # an instance attribute shadows the class's forward
        swapped.append(module)

    def upsample_kept(hidden_states, *args, upsample_size=None, **kwargs):
        out = kept
        for upsampler in boundary.upsamplers:
            out = upsampler(hidden_states=out, output_size=upsample_size)
        return out

    for block in list(unet.down_blocks)[depth:]:
        skips = len(block.resnets) + (len(block.downsamplers) if block.downsamplers is not None else 0)
        swap(block, lambda hidden_states, *args, _n=skips, **kwargs: (hidden_states, (hidden_states,) * _n))
    if unet.mid_block is not None:
        swap(unet.mid_block, lambda hidden_states, *args, **kwargs: hidden_states)
    for block in list(unet.up_blocks)[: levels - 1 - depth]:
        swap(block, lambda hidden_states, *args, **kwargs: hidden_states)
    swap(boundary, upsample_kept)
    try:
        yield
    finally:
        for module in swapped:
            del module.forward
