"""The accelerator memory one training process needs, counted on the meta device at full network size (nothing is
allocated or computed, seconds even for SD-1.5): ``animate-anyone train ... --estimate-memory SIZE``.

Counted:

1. Weights held: every network the stage keeps on the device, in float32 as the training loop keeps them (the
   trained ones, the frozen ReferenceNet / Pose Guider, the VAE and CLIP image encoder; for ``stage: distill`` also
   the teacher's three networks and the target network).
2. Training state of the trained parameters: gradients (float32), AdamW's two moments (float32, or one byte each
   with ``optim.adam_8bit``), the EMA copy (``ema_decay``).
3. Activations kept for the backward pass of one micro-batch (``batch_size`` x ``data.frames`` at
   ``data.resolution``): every tensor autograd saves in the training forward, each storage once, in the compute
   dtype (bfloat16 / float16 under ``mixed_precision``). Attention is counted as a fused kernel (FlashAttention,
   what PyTorch's SDPA runs on a GPU): it keeps its inputs, output and log-sum-exp, not the attention matrix. With
   ``gradient_checkpointing``: the inputs of every checkpointed call, plus the largest call's recomputed
   activations (the peak of its backward).

Not counted: the no-grad forwards (teacher, target network, VAE encode; transient, each far below the training
forward's activations), the activation gradients in flight during the backward, allocator fragmentation and the
CUDA context (about 0.5-1 GB). Keep 10-20 % headroom over the estimate.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ..meta_count import fused_attention
from .config import TrainConfig

GIB = 2**30
MIXED = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass
class SavedTensors:
    """Bytes of the distinct storages autograd saves (pack hook): tensors are kept alive so that no address is
    reused while counting."""

    storages: dict[int, int] = field(default_factory=dict)
    keep: list[Tensor] = field(default_factory=list)

    def add(self, tensor: Tensor) -> None:
        storage = tensor.untyped_storage()
        self.storages[storage._cdata] = storage.nbytes()
        self.keep.append(tensor)

    @property
    def bytes(self) -> int:
        return sum(self.storages.values())


@contextlib.contextmanager
def counting(saved: SavedTensors):
    def pack(tensor: Tensor) -> Tensor:
        saved.add(tensor)
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        yield saved


def parameter_bytes(module: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters())


def estimate_training_memory(config: TrainConfig, size: str) -> dict[str, Any]:
    """The memory of one training process for ``config`` with the networks of model size ``size`` (``models.sizes``),
    by part, in bytes (module docstring)."""
    from diffusers import AutoencoderKL
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from ..model_dir import vae_scale_factor
    from ..models.sizes import build_networks, get_size
    from .setup import apply_stage

    if config.stage == 1:
        raise ValueError("the memory estimate counts stage 2 and distill (stage 1 checks weights that meta lacks)")
    preset = get_size(size)
    meta = torch.device("meta")
    model = build_networks(preset.networks(), device=meta)
    params = apply_stage(model, config.stage, use_reference_net=config.model.reference_net)
    with meta:
        vae = AutoencoderKL(**preset.vae)
        clip = CLIPVisionModelWithProjection(CLIPVisionConfig(**preset.image_encoder))
    trained = sum(p.numel() for p in params)
    held = {
        "networks (ReferenceNet, UNet, Pose Guider)": parameter_bytes(model),
        "vae": parameter_bytes(vae),
        "image_encoder": parameter_bytes(clip),
    }
    if config.stage == "distill":
        held["teacher (three networks)"] = parameter_bytes(model)
        held["target network (denoising UNet)"] = parameter_bytes(model.denoising_unet)
    state = {
        "gradients": 4 * trained,
        "optimizer (AdamW moments)": (2 if config.optim.adam_8bit else 8) * trained,
    }
    if config.ema_decay is not None:
        state["ema"] = 4 * trained
    kept, recompute = training_activations(model, config, vae_scale_factor(preset.vae))
    activations = {"kept for the backward": kept, "largest recomputed call (checkpointing)": recompute}
    parts = {**held, **state, **activations}
    return {
        "size": size,
        "stage": config.stage,
        "batch_size": config.batch_size,
        "frames": config.data.frames,
        "resolution": list(config.data.resolution),
        "mixed_precision": config.mixed_precision,
        "gradient_checkpointing": config.gradient_checkpointing,
        "trained_parameters": trained,
        "bytes": parts,
        "total_bytes": sum(parts.values()),
    }


def training_activations(model, config: TrainConfig, factor: int) -> tuple[int, int]:
    """(bytes kept between forward and backward, bytes of the largest checkpointed call's recomputation) of the
    training forward on one micro-batch, on the meta device in the compute dtype."""
    dtype = MIXED[config.mixed_precision]
    model.to(dtype)
    width, height = config.data.resolution
    b, f, h, w = config.batch_size, config.data.frames, height // factor, width // factor
    embed_dim = model.denoising_unet.config.cross_attention_dim
    meta = dict(device="meta", dtype=dtype)
    inputs = (
        torch.empty(b, 4, f, h, w, **meta),  # noisy latents
        torch.zeros(b, dtype=torch.long, device="meta"),  # timesteps
        torch.empty(b, 4, h, w, **meta),  # reference latents
        torch.empty(b, 1, embed_dim, **meta),  # image embeddings
        torch.empty(b, 3, f, height, width, **meta),  # pose images
    )
    kept = SavedTensors()
    largest = 0

    def checkpoint(module, *args):  # torch's non-reentrant checkpoint, with its inputs and recomputation counted
        nonlocal largest
        for arg in args:
            if isinstance(arg, Tensor):
                kept.add(arg)
        with counting(SavedTensors()) as inner:
            module(*args)
        largest = max(largest, inner.bytes)
        return torch.utils.checkpoint.checkpoint(module, *args, use_reentrant=False)

    if config.gradient_checkpointing:
        for net in (model.reference_net, model.denoising_unet):
            net.enable_gradient_checkpointing(gradient_checkpointing_func=checkpoint)
    model.train()
    with fused_attention(), counting(kept):
        model(*inputs)
    return kept.bytes, largest
