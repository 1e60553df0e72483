"""Denoising UNet: diffusers' motion UNet (SD-1.5 2D UNet + AnimateDiff temporal layers) with two seams.

1. Pose seam: ``conv_in`` adds the Pose Guider features to its output (the route of the public checkpoints).
2. Reference seam: every spatial ``attn1`` is a ``ReferenceReadProcessor``.
3. The temporal layers' GroupNorm is per frame (``FrameGroupNorm``), as in AnimateDiff.
4. Gradient checkpointing covers the temporal layers of the down and up blocks too (``CheckpointedTemporal``):
   diffusers' motion blocks recompute only their resnets, and at 24 frames the temporal layers hold most of the
   activations (``training/memory.py``).

Everything else (blocks, temporal layers, the forward) is diffusers' ``UNetMotionModel``.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from diffusers import UNetMotionModel
from diffusers.models.unets.unet_motion_model import AnimateDiffTransformer3D
from torch import Tensor, nn

from .reference_attention import (
    ReferenceBank,
    ReferenceRead,
    ReferenceReadProcessor,
    ReferenceState,
    install_processors,
    split_heads,
)


class CheckpointedTemporal(AnimateDiffTransformer3D):
    """AnimateDiff's temporal transformer, recomputed in the backward pass when gradient checkpointing is on."""

    def forward(
        self,
        hidden_states,
        encoder_hidden_states=None,
        timestep=None,
        class_labels=None,
        num_frames: int = 1,
        cross_attention_kwargs=None,
    ):
        args = (hidden_states, encoder_hidden_states, timestep, class_labels, num_frames, cross_attention_kwargs)
        if torch.is_grad_enabled() and self.gradient_checkpointing:
            return self._gradient_checkpointing_func(super().forward, *args)
        return super().forward(*args)


class PoseConditionedConv2d(nn.Conv2d):
    """A Conv2d that adds ``pose_features`` (batch*frames, C, h, w) to its output when they are set."""

    pose_features: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        out = super().forward(x)
        return out if self.pose_features is None else out + self.pose_features


class FrameGroupNorm(nn.GroupNorm):
    """GroupNorm over each frame separately, for the temporal layers' (batch, C, frames, h, w) input.

    AnimateDiff (whose weights the public checkpoints carry) normalises ``(b f) c h w``, i.e. per frame;
    diffusers' ``AnimateDiffTransformer3D`` normalises over all frames jointly. Same parameters, so the swap
    keeps the state dict.
    """

    def forward(self, x: Tensor) -> Tensor:
        b, c, f, h, w = x.shape
        y = F.group_norm(x.transpose(1, 2).reshape(b * f, c, h, w), self.num_groups, self.weight, self.bias, self.eps)
        return y.view(b, f, c, h, w).transpose(1, 2)  # (b, c, f, h, w)


class AnimateAnyoneUNet(UNetMotionModel):
    """The denoising UNet: ``UNetMotionModel`` with the pose seam and reference readers installed."""

    # Same constructor (and so the same config.json) as the parent; ``wraps`` keeps the parent's signature
    # visible to diffusers' config loader.
    @functools.wraps(UNetMotionModel.__init__)
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        conv = self.conv_in
        self.conv_in = PoseConditionedConv2d(
            conv.in_channels, conv.out_channels, conv.kernel_size, padding=conv.padding
        )
        for path, module in list(self.named_modules()):
            if ".motion_modules." in path and path.endswith(".norm") and isinstance(module, nn.GroupNorm):
                parent = self.get_submodule(path.rsplit(".", 1)[0])
                parent.norm = FrameGroupNorm(module.num_groups, module.num_channels, module.eps, module.affine)
        self.reference_state = ReferenceState()
        self.reference_blocks = install_processors(self, self.reference_state, ReferenceReadProcessor)
        for block in [*self.down_blocks, *self.up_blocks]:  # the mid block checkpoints its own temporal layers
            for module in getattr(block, "motion_modules", []):
                module.__class__ = CheckpointedTemporal  # same parameters and keys; only the forward differs
                module.gradient_checkpointing = False  # switched by enable_gradient_checkpointing with the rest

    def forward(  # type: ignore[override]
        self,
        sample: Tensor,
        timestep: Tensor | int,
        encoder_hidden_states: Tensor,
        pose_features: Tensor | None = None,
        reference: ReferenceBank | None = None,
        reference_rows: Tensor | slice | None = None,
    ) -> Tensor:
        """Predict for a batch of videos.

        sample (batch, 4, frames, h, w); timestep scalar or (batch,); encoder_hidden_states (batch, tokens, C);
        pose_features (batch, C0, frames, h, w) or None; reference: the bank the rows attend to, or None;
        reference_rows: bool (batch,) of the rows that use the reference, or a slice of them (static: what
        guidance passes); None: all rows, if a bank is given.
        Returns the prediction (batch, 4, frames, h, w).
        """
        batch, _, frames, h, w = sample.shape
        if frames > self.config.motion_max_seq_length:
            raise ValueError(
                f"{frames} frames in one window exceed the temporal layers' positional-encoding limit "
                f"({self.config.motion_max_seq_length}); use shorter context windows"
            )
        # 1. Pose seam: (b, C0, f, h, w) -> (b*f, C0, h, w), the layout conv_in sees.
        if pose_features is not None:
            if pose_features.shape[0] != batch or pose_features.shape[2:] != (frames, h, w):
                raise ValueError(
                    f"pose_features {tuple(pose_features.shape)} do not match the latents {tuple(sample.shape)}"
                )
            pose_features = pose_features.permute(0, 2, 1, 3, 4).reshape(batch * frames, -1, h, w)
        # 2. Reference seam.
        read = None
        if reference is not None:
            self._check_bank(reference)
            read = ReferenceRead(bank=reference, num_frames=frames, rows=reference_rows)
        # 3. The image embedding for every frame: (b, tokens, C) -> (b*f, tokens, C).
        encoder_hidden_states = encoder_hidden_states.repeat_interleave(frames, dim=0)
        # 4. diffusers' motion UNet forward with both seams set for this call only.
        self.conv_in.pose_features, self.reference_state.read = pose_features, read
        try:
            return super().forward(sample, timestep, encoder_hidden_states, return_dict=False)[0]
        finally:
            # Without gradients the seams are cleared now. With gradients they stay set until the next forward
            # replaces them: gradient checkpointing recomputes blocks during backward and must read the same
            # bank (every forward sets both seams, so nothing carries over to another micro-batch).
            if not torch.is_grad_enabled():
                self.conv_in.pose_features, self.reference_state.read = None, None

    def _check_bank(self, bank: ReferenceBank) -> None:
        missing = [b for b in self.reference_blocks if b not in bank.tokens]
        if missing:
            raise ValueError(f"reference bank lacks blocks {missing}; ReferenceNet and denoising UNet do not pair")

    def project_reference(self, bank: ReferenceBank) -> ReferenceBank:
        """Return the bank with keys/values projected once by each block's own ``to_k``/``to_v`` (inference)."""
        self._check_bank(bank)
        keys_values = {}
        for module in self.modules():
            processor = getattr(module, "processor", None)
            if isinstance(processor, ReferenceReadProcessor):
                tokens = bank.tokens[processor.name]  # (rows, Lr, C)
                keys_values[processor.name] = (
                    split_heads(module.to_k(tokens), module.heads),  # (rows, heads, Lr, dim)
                    split_heads(module.to_v(tokens), module.heads),
                )
        return ReferenceBank(tokens=bank.tokens, keys_values=keys_values)


def zero_init_motion_modules(unet: AnimateAnyoneUNet) -> None:
    """Zero the temporal layers' output projections so each is the identity (AnimateDiff's initialisation)."""
    for name, module in unet.named_modules():
        if name.endswith("proj_out") and ".motion_modules." in name:
            nn.init.zeros_(module.weight)
            nn.init.zeros_(module.bias)
