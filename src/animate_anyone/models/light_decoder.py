"""A light decoder: latents -> frames at a fraction of the VAE decoder's cost (TAESD's design, Bohan 2023).

diffusers' ``DecoderTiny`` (the TAESD decoder: 3x3 convolutions and nearest upsampling, no attention, no group
norm) on the latents the denoiser produces (already multiplied by the VAE's ``scaling_factor``): the public TAESD
decoder for SD-1.x latents converted by ``animate-anyone convert light-decoder`` (``convert/light_decoder.py``), or
one trained by ``animate-anyone train light-decoder`` to reproduce the model's own VAE decoder on its training frames
(``training/light_decoder.py``). A model directory may carry one as its ``light_decoder`` component; a call chooses
it with ``decoder="light"`` (not exact: its quality cost is measured in docs/benchmark.md).
"""

from __future__ import annotations

import math

from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from diffusers.models.autoencoders.vae import DecoderTiny
from torch import Tensor

# How a model directory gets one, for the messages that find none.
HOW_TO_GET_ONE = (
    "convert the public TAESD decoder into it (`animate-anyone convert light-decoder --taesd DIR --model DIR`) "
    "or train one (`animate-anyone train light-decoder --model DIR --data DATASET`)"
)


class LightDecoder(ModelMixin, ConfigMixin):
    """``upsampling``: the VAE's downsampling factor (8 for SD, 4 for the miniature VAE); one level of
    ``blocks`` residual blocks of ``channels`` channels per factor of 2, then a last level of one block.
    TAESD's own decoder is ``LightDecoder(upsampling=8, channels=64, blocks=3)``."""

    @register_to_config
    def __init__(
        self, latent_channels: int = 4, out_channels: int = 3, upsampling: int = 8, channels: int = 64, blocks: int = 3
    ):
        super().__init__()
        levels = int(math.log2(upsampling)) + 1
        if 2 ** (levels - 1) != upsampling or channels < 1 or blocks < 1:
            raise ValueError(
                f"LightDecoder: upsampling={upsampling} must be a power of 2; channels={channels} and "
                f"blocks={blocks} must be >= 1"
            )
        self.decoder = DecoderTiny(
            in_channels=latent_channels,
            out_channels=out_channels,
            num_blocks=(blocks,) * (levels - 1) + (1,),
            block_out_channels=(channels,) * levels,
            upsampling_scaling_factor=2,
            act_fn="relu",
            upsample_fn="nearest",
        )

    def forward(self, latents: Tensor) -> Tensor:
        """latents (n, 4, h, w), as the denoiser makes them (scaled) -> frames (n, 3, h x up, w x up) in [-1, 1]."""
        return self.decoder(latents)
