"""ReferenceNet -> denoising-UNet feature injection, as a pair of diffusers attention processors.

The paper's spatial attention: in every transformer block of the denoising UNet, self-attention takes its
queries from the frame's own (layer-normalised) tokens and its keys/values from the concatenation
``[own tokens, reference tokens]``, where the reference tokens are the same block's self-attention input
recorded by ReferenceNet on the reference image. The block's own projections are used for both parts.

* ``ReferenceWriteProcessor`` sits on ReferenceNet's ``attn1`` layers: it records the input and performs
  plain self-attention.
* ``ReferenceReadProcessor`` sits on the denoising UNet's spatial ``attn1`` layers.

Efficiency (exactly equal to the concatenation, up to float rounding):

* the bank has no frame axis: one row per reference image, shared by every frame;
* at inference the bank is projected to keys/values once per video (``ReferenceBank.keys_values``);
* attention over ``[own, reference]`` is computed as two attentions merged through their log-sum-exp,
  so the reference keys/values are never repeated per frame or concatenated;
* rows marked as not using the reference (the unconditional row of classifier-free guidance) never
  touch the reference tokens.

Both processors use a layer's fused QKV projection when it has one (``attn.fuse_projections()``, switched on
by ``pipelines.optimisations``): one GEMM instead of three, the same result up to float rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..meta_count import fused_kernels

# ---------------------------------------------------------------------------------------------------------
# Attention kernels
# ---------------------------------------------------------------------------------------------------------


def has_lse_kernel(device: torch.device) -> bool:
    """Whether :func:`attention_with_lse` has a fused kernel for this device (else it falls back to math)."""
    return device.type in ("cpu", "cuda") or (device.type == "meta" and fused_kernels())


def attention_with_lse(q: Tensor, k: Tensor, v: Tensor, scale: float) -> tuple[Tensor, Tensor]:
    """Scaled dot-product attention that also returns the log-sum-exp of the scores.

    Shapes: q (batch, heads, Lq, dim), k/v (batch, heads, Lk, dim) -> out like q, lse (batch, heads, Lq) fp32.
    Uses PyTorch's fused kernels (which compute the LSE anyway); no gradient flows through the LSE.
    """
    if q.device.type == "meta":  # inside meta_count.fused_attention: the fused kernels' outputs, for counting memory
        return q.new_empty((*q.shape[:-1], v.shape[-1])), q.new_empty(q.shape[:-1], dtype=torch.float32)
    if q.device.type == "cpu":
        out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, k, v, 0.0, False, scale=scale)
        return out, lse
    if q.device.type == "cuda":
        if q.dtype in (torch.float16, torch.bfloat16) and q.shape[-1] <= 256:
            res = torch.ops.aten._scaled_dot_product_flash_attention(q, k, v, 0.0, False, False, scale=scale)
            return res[0], res[1]
        res = torch.ops.aten._scaled_dot_product_efficient_attention(q, k, v, None, True, 0.0, False, scale=scale)
        return res[0], res[1][..., : q.shape[2]]  # the kernel pads the LSE to a multiple of 32
    return _attention_with_lse_math(q, k, v, scale)


def _attention_with_lse_math(q: Tensor, k: Tensor, v: Tensor, scale: float) -> tuple[Tensor, Tensor]:
    scores = torch.matmul(q.float(), k.float().transpose(-1, -2)) * scale  # (b, h, Lq, Lk)
    lse = torch.logsumexp(scores, dim=-1)
    out = torch.matmul(torch.softmax(scores, dim=-1), v.float()).to(q.dtype)
    return out, lse


def merge_attention(out_a: Tensor, lse_a: Tensor, out_b: Tensor, lse_b: Tensor) -> Tensor:
    """Combine two attentions of the same queries over disjoint key sets into attention over their union.

    softmax over [a, b] = w * softmax_a + (1 - w) * softmax_b with w = exp(lse_a) / (exp(lse_a) + exp(lse_b)).
    out_* (..., L, dim), lse_* (..., L).
    """
    w = torch.sigmoid(lse_a - lse_b).unsqueeze(-1)  # (..., L, 1), fp32
    return (out_b.float() + w * (out_a.float() - out_b.float())).to(out_a.dtype)


# ---------------------------------------------------------------------------------------------------------
# The bank and the per-call state
# ---------------------------------------------------------------------------------------------------------


@dataclass
class ReferenceBank:
    """What ReferenceNet recorded for a set of reference images.

    ``tokens[block]``: (rows, tokens, channels), the layer-normalised self-attention input of that transformer
    block, one row per reference image (no frame axis). ``keys_values[block]``: the same tokens projected by
    the paired denoising-UNet block to (rows, heads, tokens, head_dim) keys and values, or ``None`` when
    the projection is to be done at every call (training, where the projections receive gradients).
    """

    tokens: dict[str, Tensor]
    keys_values: dict[str, tuple[Tensor, Tensor]] | None = None


@dataclass
class ReferenceRead:
    """One denoising call's view of the bank: which video rows use it and how many frames each row has."""

    bank: ReferenceBank
    num_frames: int
    rows: Tensor | slice | None = None  # bool (batch,) or a slice of rows; None = every row uses the reference


class ReferenceState:
    """Mutable holder shared by the processors of one UNet; set only for the duration of one forward."""

    def __init__(self) -> None:
        self.recording: dict[str, Tensor] | None = None  # ReferenceNet: where writers record
        self.read: ReferenceRead | None = None  # denoising UNet: what readers attend to


# ---------------------------------------------------------------------------------------------------------
# Processors
# ---------------------------------------------------------------------------------------------------------


def split_heads(x: Tensor, heads: int) -> Tensor:
    """(batch, tokens, heads * dim) -> (batch, heads, tokens, dim)."""
    b, n, c = x.shape
    return x.view(b, n, heads, c // heads).transpose(1, 2)


def merge_heads(x: Tensor) -> Tensor:
    """(batch, heads, tokens, dim) -> (batch, tokens, heads * dim)."""
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


def _check_plain_self_attention(attn) -> None:
    unsupported = [
        name
        for name, bad in (
            ("spatial_norm", attn.spatial_norm is not None),
            ("group_norm", attn.group_norm is not None),
            ("residual_connection", attn.residual_connection),
            ("rescale_output_factor", attn.rescale_output_factor != 1.0),
            ("norm_q/norm_k", getattr(attn, "norm_q", None) is not None),
            ("cross-attention", attn.is_cross_attention),
        )
        if bad
    ]
    if unsupported:
        raise ValueError(f"reference attention supports plain self-attention only; this layer has {unsupported}")


def _project_qkv(attn, hidden_states: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(batch, tokens, channels) -> q, k, v (batch, heads, tokens, dim); one GEMM when the projections are fused."""
    if getattr(attn, "fused_projections", False) and getattr(attn, "to_qkv", None) is not None:
        q, k, v = attn.to_qkv(hidden_states).chunk(3, dim=-1)
    else:
        q, k, v = attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)
    return split_heads(q, attn.heads), split_heads(k, attn.heads), split_heads(v, attn.heads)


def _output(attn, out: Tensor) -> Tensor:
    """(batch, heads, tokens, dim) -> output projection -> (batch, tokens, channels)."""
    return attn.to_out[1](attn.to_out[0](merge_heads(out)))


class ReferenceWriteProcessor:
    """ReferenceNet ``attn1``: record the (normalised) input in the bank, then plain self-attention."""

    def __init__(self, name: str, state: ReferenceState):
        self.name = name
        self.state = state

    def __call__(self, attn, hidden_states: Tensor, encoder_hidden_states=None, attention_mask=None, **kwargs):
        # hidden_states: (batch, tokens, channels), already passed through the block's norm1
        if self.state.recording is not None:
            self.state.recording[self.name] = hidden_states
        q, k, v = _project_qkv(attn, hidden_states)  # (b, heads, tokens, dim)
        return _output(attn, F.scaled_dot_product_attention(q, k, v, scale=attn.scale))


class ReferenceReadProcessor:
    """Denoising-UNet spatial ``attn1``: self-attention whose keys/values also include the reference tokens."""

    def __init__(self, name: str, state: ReferenceState):
        self.name = name
        self.state = state

    def __call__(self, attn, hidden_states: Tensor, encoder_hidden_states=None, attention_mask=None, **kwargs):
        # 1. Project the frame tokens. hidden_states: (batch * frames, tokens, channels), normalised.
        q, k, v = _project_qkv(attn, hidden_states)  # (b*f, heads, L, dim)

        read = self.state.read
        if read is None or read.bank.tokens[self.name].shape[1] == 0:
            return _output(attn, F.scaled_dot_product_attention(q, k, v, scale=attn.scale))

        # 2. Reference keys/values: cached at inference, projected here (with gradients) in training.
        k_ref, v_ref = reference_keys_values(attn, read.bank, self.name)  # (rows_ref, heads, Lr, dim)

        # 3. Attention over [own tokens, reference tokens] for the rows that use the reference.
        out = reference_attention(q, k, v, k_ref, v_ref, read.num_frames, read.rows, attn.scale)
        return _output(attn, out)


def reference_keys_values(attn, bank: ReferenceBank, name: str) -> tuple[Tensor, Tensor]:
    if bank.keys_values is not None:
        return bank.keys_values[name]
    tokens = bank.tokens[name]  # (rows, Lr, channels)
    return split_heads(attn.to_k(tokens), attn.heads), split_heads(attn.to_v(tokens), attn.heads)


def reference_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    k_ref: Tensor,
    v_ref: Tensor,
    num_frames: int,
    rows: Tensor | None,
    scale: float,
) -> Tensor:
    """Self-attention of every frame over ``[own tokens, reference tokens of its video row]``.

    q, k, v: (batch * frames, heads, L, dim). k_ref, v_ref: (R_bank, heads, Lr, dim) where R_bank is either
    the number of rows that use the reference or 1 (one reference shared by all of them). ``rows``: bool
    (batch,) selecting the rows that use the reference (None: all); the others get plain self-attention.
    Returns (batch * frames, heads, L, dim).
    """
    bf, heads, length, dim = q.shape
    batch = bf // num_frames
    n_ref = _count_rows(rows, batch)
    if k_ref.shape[0] not in (n_ref, 1):
        raise ValueError(
            f"reference bank has {k_ref.shape[0]} rows but {n_ref} video rows use it (expected {n_ref} or 1)"
        )
    use_merge = has_lse_kernel(q.device) and not (torch.is_grad_enabled() and (q.requires_grad or k_ref.requires_grad))
    if use_merge:
        return _reference_attention_merged(q, k, v, k_ref, v_ref, num_frames, rows, scale)
    return _reference_attention_concat(q, k, v, k_ref, v_ref, num_frames, _row_mask(rows, batch, q.device), scale)


def _count_rows(rows: Tensor | slice | None, batch: int) -> int:
    """How many rows use the reference. A slice (what guidance passes) is counted without reading a tensor, so
    ``torch.compile`` sees static shapes; a bool tensor (training's dropout) needs its values."""
    if rows is None:
        return batch
    if isinstance(rows, slice):
        return len(range(*rows.indices(batch)))
    return int(rows.sum())


def _row_mask(rows: Tensor | slice | None, batch: int, device) -> Tensor | None:
    """The selection as a bool (batch,) tensor (None stays None)."""
    if not isinstance(rows, slice):
        return rows
    mask = torch.zeros(batch, dtype=torch.bool, device=device)
    mask[rows] = True
    return mask


def _reference_attention_merged(q, k, v, k_ref, v_ref, num_frames, rows, scale):
    bf, heads, length, dim = q.shape
    batch = bf // num_frames
    # 1. Plain self-attention for every row; its LSE is kept for the merge.
    out, lse = attention_with_lse(q, k, v, scale)  # (b*f, h, L, d), (b*f, h, L)
    out = out.view(batch, num_frames, heads, length, dim)
    lse = lse.view(batch, num_frames, heads, length)
    out_r = out if rows is None else out[rows]  # (R, f, h, L, d)
    lse_r = lse if rows is None else lse[rows]
    n_ref = out_r.shape[0]
    # 2. All queries of a bank row attend to that row's reference tokens in one call (no per-frame copies).
    q_r = q.view(batch, num_frames, heads, length, dim)
    q_r = q_r if rows is None else q_r[rows]  # (R, f, h, L, d)
    if k_ref.shape[0] == n_ref:
        q_g = q_r.permute(0, 2, 1, 3, 4).reshape(n_ref, heads, num_frames * length, dim)  # (R, h, f*L, d)
    else:  # one bank row shared by all R rows
        q_g = q_r.permute(2, 0, 1, 3, 4).reshape(1, heads, n_ref * num_frames * length, dim)  # (1, h, R*f*L, d)
    out_g, lse_g = attention_with_lse(q_g.contiguous(), k_ref, v_ref, scale)
    if k_ref.shape[0] == n_ref:
        out_g = out_g.view(n_ref, heads, num_frames, length, dim).permute(0, 2, 1, 3, 4)  # (R, f, h, L, d)
        lse_g = lse_g.view(n_ref, heads, num_frames, length).permute(0, 2, 1, 3)  # (R, f, h, L)
    else:
        out_g = out_g.view(heads, n_ref, num_frames, length, dim).permute(1, 2, 0, 3, 4)
        lse_g = lse_g.view(heads, n_ref, num_frames, length).permute(1, 2, 0, 3)
    # 3. Merge [own, reference] for those rows.
    merged = merge_attention(out_r, lse_r, out_g, lse_g)
    if rows is None:
        return merged.reshape(bf, heads, length, dim)
    out = out.clone()
    out[rows] = merged
    return out.view(bf, heads, length, dim)


def _reference_attention_concat(q, k, v, k_ref, v_ref, num_frames, rows, scale):
    """Differentiable path: explicit concatenation (what training uses; gradients reach the bank)."""
    bf, heads, length, dim = q.shape
    batch = bf // num_frames
    q5, k5, v5 = (t.view(batch, num_frames, heads, -1, dim) for t in (q, k, v))
    sel = slice(None) if rows is None else rows
    q_r, k_r, v_r = q5[sel], k5[sel], v5[sel]  # (R, f, h, L, d)
    n_ref = q_r.shape[0]
    k_ref = k_ref.unsqueeze(1).expand(n_ref, num_frames, -1, -1, -1)  # (R, f, h, Lr, d)
    v_ref = v_ref.unsqueeze(1).expand(n_ref, num_frames, -1, -1, -1)
    k_all = torch.cat([k_r, k_ref], dim=3).flatten(0, 1)  # (R*f, h, L+Lr, d)
    v_all = torch.cat([v_r, v_ref], dim=3).flatten(0, 1)
    out_r = F.scaled_dot_product_attention(q_r.flatten(0, 1), k_all, v_all, scale=scale)  # (R*f, h, L, d)
    if rows is None:
        return out_r
    out = q.new_empty(batch, num_frames, heads, length, dim)
    out[rows] = out_r.view(n_ref, num_frames, heads, length, dim)
    if bool((~rows).any()):
        q_p, k_p, v_p = (t[~rows].flatten(0, 1) for t in (q5, k5, v5))
        out[~rows] = F.scaled_dot_product_attention(q_p, k_p, v_p, scale=scale).view(-1, num_frames, heads, length, dim)
    return out.view(bf, heads, length, dim)


def install_processors(unet, state: ReferenceState, processor_cls) -> list[str]:
    """Put ``processor_cls(block_path, state)`` on every spatial self-attention of ``unet``.

    Spatial transformer blocks live under ``*.attentions.*``; temporal layers (``*.motion_modules.*``) keep
    their stock processors. Returns the block paths, e.g. ``down_blocks.0.attentions.0.transformer_blocks.0``.
    """
    names = []
    for path, module in unet.named_modules():
        if path.endswith(".attn1") and ".attentions." in path:
            _check_plain_self_attention(module)
            block = path[: -len(".attn1")]
            module.set_processor(processor_cls(block, state))
            names.append(block)
    return names
