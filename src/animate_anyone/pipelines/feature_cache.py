"""DeepCache-style feature reuse across denoising steps (Ma et al., 2023), for the denoising UNet.

Between neighbouring steps the UNet's deep, low-resolution features change little; the outer levels, which
see the fresh latents through their skip connections, do the fine work. On a refresh step the UNet runs whole
and the cache keeps the features entering its ``depth`` outermost up-blocks (the output of the up-block just
inside them). On the other steps only the ``depth`` outermost down-blocks and up-blocks run; the inner
down-blocks, the mid-block and the inner up-blocks are skipped, and the kept features stand in for them.

Where the paper's parts fall: the outer levels keep everything they own, so the pose features (added at
``conv_in``), the reference attention of the outer transformer blocks and the outer temporal layers are
recomputed at every step; the inner levels' reference attention and temporal layers are reused from the last
refresh step. Windows: features are kept per frame of the whole video (and per guidance row, unconditional or
conditional), so shifted windows and long videos reuse them too. A call whose frames or rows have nothing
kept yet runs whole and keeps its features.

The skipping is done by swapping the ``forward`` of the skipped blocks for the length of one UNet call
(diffusers' ``UNetMotionModel.forward`` then runs unchanged): skipped down-blocks hand on their input and
placeholders for their skip connections (which only the skipped up-blocks would read), the mid-block and inner
up-blocks hand on their input, and the last inner up-block returns the kept features.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor, nn

ROW_KINDS = ("uncond", "cond")


class DeepFeatureCache:
    """Kept deep features of one video. ``depth``: how many outer UNet levels run at every step (1 = only the
    outermost level, the most reuse; must leave at least one level inside)."""

    def __init__(self, unet: nn.Module, num_frames: int, depth: int = 1):
        levels = len(unet.down_blocks)
        if not 1 <= depth < levels:
            raise ValueError(
                f"cache_depth must be between 1 and {levels - 1} for a UNet of {levels} levels, got {depth}"
            )
        self.unet, self.num_frames, self.depth = unet, num_frames, depth
        self.boundary = unet.up_blocks[levels - 1 - depth]  # its output enters the outer up-blocks
        self.features: dict[str, Tensor] = {}  # kind -> (batch, num_frames, C, h, w)
        self.kept: dict[str, Tensor] = {}  # kind -> bool (num_frames,)

    def has(self, frames: Tensor, kinds: tuple[str, ...]) -> bool:
        return all(kind in self.kept and bool(self.kept[kind][frames.cpu()].all()) for kind in kinds)

    @contextlib.contextmanager
    def call(self, frames: Tensor, kinds: tuple[str, ...], reuse: bool) -> Iterator[bool]:
        """Around one UNet call on the window ``frames`` (frame indices) whose batch is ``kinds`` (row kinds, in
        order, each ``batch`` rows). With ``reuse`` and features kept for every frame and kind, the deep levels
        are skipped; otherwise the call runs whole and keeps its features. Yields whether it reused."""
        unknown = set(kinds) - set(ROW_KINDS)
        if unknown:
            raise ValueError(f"unknown row kinds {sorted(unknown)}; known: {ROW_KINDS}")
        reusing = reuse and self.has(frames, kinds)
        f = len(frames)
        if reusing:
            kept = torch.cat([self.features[kind][:, frames] for kind in kinds])  # (k*b, f, C, h, w)
            kept = kept.flatten(0, 1)  # (k*b*f, C, h, w): the (batch frames) rows of the UNet's 2-D layers
            with _skipped(self.unet, self.depth, kept):
                yield True
            return
        captured: list[Tensor] = []
        handle = self.boundary.register_forward_hook(lambda module, args, output: captured.append(output))
        try:
            yield False
        finally:
            handle.remove()
        out = captured[-1]  # (k*b*f, C, h, w)
        out = out.view(len(kinds), -1, f, *out.shape[1:])  # (k, b, f, C, h, w)
        for kind, rows in zip(kinds, out):
            if kind not in self.features:
                self.features[kind] = rows.new_zeros(rows.shape[0], self.num_frames, *rows.shape[2:])
                self.kept[kind] = torch.zeros(self.num_frames, dtype=torch.bool)
            self.features[kind][:, frames] = rows
            self.kept[kind][frames.cpu()] = True


@contextlib.contextmanager
def _skipped(unet: nn.Module, depth: int, kept: Tensor) -> Iterator[None]:
    """Swap the forward of the inner blocks for one call: see the module doc."""
    levels = len(unet.down_blocks)
    swapped: list[nn.Module] = []

    def swap(module: nn.Module, forward) -> None:
        module.forward = forward  # an instance attribute shadows the class's forward
        swapped.append(module)

    for block in list(unet.down_blocks)[depth:]:
        skips = len(block.resnets) + (len(block.downsamplers) if block.downsamplers is not None else 0)
        swap(block, lambda hidden_states, *args, _n=skips, **kwargs: (hidden_states, (hidden_states,) * _n))
    if unet.mid_block is not None:
        swap(unet.mid_block, lambda hidden_states, *args, **kwargs: hidden_states)
    for block in list(unet.up_blocks)[: levels - 1 - depth]:
        swap(block, lambda hidden_states, *args, **kwargs: hidden_states)
    swap(unet.up_blocks[levels - 1 - depth], lambda hidden_states, *args, **kwargs: kept)
    try:
        yield
    finally:
        for module in swapped:
            del module.forward
