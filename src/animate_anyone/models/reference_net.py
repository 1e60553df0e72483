"""ReferenceNet: an SD-1.5-shaped 2D UNet that records the self-attention input of its transformer blocks."""

from __future__ import annotations

import functools

import torch
from diffusers import UNet2DConditionModel
from torch import Tensor, nn

from .reference_attention import ReferenceBank, ReferenceState, ReferenceWriteProcessor, install_processors


class ReferenceNet(UNet2DConditionModel):
    """diffusers' ``UNet2DConditionModel`` without its output head, with recording ``attn1`` processors.

    Its state dict is a stock SD-1.5 UNet's minus ``conv_norm_out.*`` / ``conv_out.*`` (the bank is all that
    is used, so the output head would be dead weight), exactly like the public ``reference_unet.pth``.
    Note SD-1.5's legacy naming: its ``attention_head_dim`` is the number of heads.
    """

    # Same constructor (and so the same config.json) as the parent: a stock SD-1.5 ``unet/config.json`` builds
    # a ReferenceNet. ``wraps`` keeps the parent's signature visible to diffusers' config loader.
    @functools.wraps(UNet2DConditionModel.__init__)
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # No output head: the parent's forward skips a None conv_norm_out and Identity has no weights.
        self.conv_norm_out = None
        self.conv_out = nn.Identity()
        self.reference_state = ReferenceState()
        self.bank_blocks = install_processors(self, self.reference_state, ReferenceWriteProcessor)

    def forward(self, latents: Tensor, encoder_hidden_states: Tensor) -> ReferenceBank:  # type: ignore[override]
        """Run on reference-image latents (batch, 4, h, w) at timestep 0 and return the recorded bank.

        encoder_hidden_states: (batch, tokens, cross_attention_dim), the image embedding.
        """
        timestep = torch.zeros((), dtype=torch.long, device=latents.device)
        self.reference_state.recording = {}
        try:
            super().forward(latents, timestep, encoder_hidden_states, return_dict=False)
            tokens = self.reference_state.recording
        finally:
            self.reference_state.recording = None
        missing = [b for b in self.bank_blocks if b not in tokens]
        if missing:
            raise RuntimeError(f"ReferenceNet recorded nothing for {missing}; were its attention processors replaced?")
        return ReferenceBank(tokens=tokens)
