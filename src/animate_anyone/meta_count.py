"""Counting memory on the meta device, where nothing is allocated or computed: the attention kernel as a GPU runs it,
and the bytes of the tensors alive at each moment of a forward (``LiveBytes``). Used by the training estimate
(``training/memory.py``) and the inference estimate (``pipelines/peak_memory.py``)."""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterable

import torch
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class FusedAttention(torch.autograd.Function):
    """Scaled dot-product attention as a fused kernel keeps it for the backward: q, k, v, the output, the
    log-sum-exp per query (float32) and the mask, if any (a causal one is not a tensor). Meta tensors only."""

    @staticmethod
    def forward(ctx, q, k, v, mask):
        out = q.new_empty((*q.shape[:-1], v.shape[-1]))  # (..., L_q, d_v)
        logsumexp = q.new_empty(q.shape[:-1], dtype=torch.float32)  # (..., L_q)
        ctx.save_for_backward(q, k, v, out, logsumexp, *([] if mask is None else [mask]))
        return out

    @staticmethod
    def backward(ctx, grad):
        q, k, v, *_ = ctx.saved_tensors
        return torch.empty_like(q), torch.empty_like(k), torch.empty_like(v), None


@contextlib.contextmanager
def fused_attention():
    """``F.scaled_dot_product_attention`` as ``FusedAttention`` for the duration (the meta device's own SDPA is the
    math path, which would count the attention matrix: 270 GiB at SD-1.5 512x768x24); the reference attention's
    fused log-sum-exp kernels are then taken as present on the meta device too (``fused_kernels``)."""
    global _FUSED
    functional = torch.nn.functional
    original, before = functional.scaled_dot_product_attention, _FUSED

    def sdpa(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, **_):
        return FusedAttention.apply(q, k, v, attn_mask)

    functional.scaled_dot_product_attention, _FUSED = sdpa, True
    try:
        yield
    finally:
        functional.scaled_dot_product_attention, _FUSED = original, before


_FUSED = False  # inside fused_attention()


def fused_kernels() -> bool:
    """Whether meta tensors stand for a device with fused attention kernels now (inside ``fused_attention``): what
    ``models.reference_attention`` asks before it takes its fused path on the meta device. Outside (e.g. counting
    FLOPs) the meta device runs the math path, whose operations a FLOP counter sees."""
    return _FUSED


class LiveBytes(TorchDispatchMode):
    """The bytes of the distinct storages made by the ops run under it and still alive, and their peak (``peak``,
    restarted by ``reset_peak``). A storage counts once, however many tensors view it, until the last of them is
    gone. Storages of ``exclude`` (the networks' weights, counted apart) are never counted."""

    def __init__(self, exclude: Iterable[Tensor] = ()):
        super().__init__()
        self.live = self.peak = 0
        self._storages: dict[int, list[int]] = {}  # storage -> [bytes, tensors alive that view it]
        self._excluded = {t.untyped_storage()._cdata for t in exclude}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in tree_flatten(out)[0]:
            if isinstance(tensor, Tensor):
                self._track(tensor)
        return out

    def _track(self, tensor: Tensor) -> None:
        storage = tensor.untyped_storage()
        key = storage._cdata
        if key in self._excluded:
            return
        entry = self._storages.get(key)
        if entry is None:
            entry = self._storages[key] = [storage.nbytes(), 0]
            self.live += entry[0]
            self.peak = max(self.peak, self.live)
        entry[1] += 1
        weakref.finalize(tensor, self._release, key)

    def _release(self, key: int) -> None:
        entry = self._storages[key]
        entry[1] -= 1
        if entry[1] == 0:
            self.live -= entry[0]
            del self._storages[key]

    def reset_peak(self) -> None:
        self.peak = self.live
