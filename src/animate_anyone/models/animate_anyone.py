"""The Animate Anyone model: ReferenceNet + Pose Guider + denoising UNet, and the ONE forward they share.

Training calls ``model(...)`` (reference pass with gradients, every step). Inference calls
``encode_reference`` and ``encode_pose`` once per video and then ``denoise`` at every step; both routes end
in the same ``AnimateAnyoneUNet.forward``.

Classifier-free guidance layout (as the public checkpoints were trained): rows [unconditional, conditional];
the unconditional rows use an all-zero image embedding AND plain self-attention without reference tokens;
pose features are used in both.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .denoising_unet import AnimateAnyoneUNet
from .pose_guider import PoseGuider
from .reference_attention import ReferenceBank
from .reference_net import ReferenceNet

# The model's three networks, by attribute name (also their folder in a model directory and their key in a size's
# constructor arguments), in constructor order: the one list of them (model_dir, models.sizes, convert use it).
NETWORKS = {"reference_net": ReferenceNet, "denoising_unet": AnimateAnyoneUNet, "pose_guider": PoseGuider}


class AnimateAnyone(nn.Module):
    def __init__(self, reference_net: ReferenceNet, denoising_unet: AnimateAnyoneUNet, pose_guider: PoseGuider):
        super().__init__()
        self.reference_net = reference_net
        self.denoising_unet = denoising_unet
        self.pose_guider = pose_guider
        unpaired = sorted(set(denoising_unet.reference_blocks) - set(reference_net.bank_blocks))
        if unpaired:
            raise ValueError(f"denoising-UNet blocks without a ReferenceNet partner: {unpaired}")

    # -- pieces -----------------------------------------------------------------------------------------
    def encode_reference(
        self, ref_latents: Tensor, image_embeds: Tensor, cache_keys_values: bool = True
    ) -> ReferenceBank:
        """ref_latents (rows, 4, h, w), scaled like the VAE latents; image_embeds (rows, tokens, C)."""
        bank = self.reference_net(ref_latents, image_embeds)
        return self.denoising_unet.project_reference(bank) if cache_keys_values else bank

    def encode_pose(self, pose_images: Tensor) -> Tensor:
        """pose_images (batch, 3, frames, H, W) in [0, 1] -> (batch, C0, frames, H/8, W/8)."""
        return self.pose_guider(pose_images.to(self.pose_guider.dtype))

    # -- training: the whole forward ----------------------------------------------------------------------
    def forward(
        self,
        noisy_latents: Tensor,
        timesteps: Tensor,
        ref_latents: Tensor,
        image_embeds: Tensor,
        pose_images: Tensor,
        use_reference: Tensor | None = None,
    ) -> Tensor:
        """Prediction for a training batch.

        noisy_latents (b, 4, f, h, w); timesteps (b,); ref_latents (b, 4, h, w); image_embeds (b, tokens, C)
        (the caller zeroes them for rows trained unconditionally); pose_images (b, 3, f, 8h, 8w);
        use_reference bool (b,) (False: the row attends to itself only, as the unconditional row).
        """
        # 1. Pose features for every row.
        pose_features = self.encode_pose(pose_images)  # (b, C0, f, h, w)
        # 2. Reference pass for the rows that keep the reference (no caching: projections get gradients).
        rows = None if use_reference is None or bool(use_reference.all()) else use_reference
        bank = None
        if rows is None or bool(rows.any()):
            sel = slice(None) if rows is None else rows
            bank = self.encode_reference(ref_latents[sel], image_embeds[sel], cache_keys_values=False)
        # 3. Denoising pass.
        return self.denoising_unet(noisy_latents, timesteps, image_embeds, pose_features, bank, rows)

    # -- inference: one step ----------------------------------------------------------------------------
    def denoise(
        self,
        latents: Tensor,
        timestep: Tensor | int,
        image_embeds: Tensor,
        pose_features: Tensor,
        reference: ReferenceBank,
        guidance: float = 1.0,
        return_rows: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """One guided prediction. latents (b, 4, f, h, w); timestep scalar or (b,); image_embeds (b or 1, tokens, C);
        pose_features (b or 1, C0, f, h, w); reference: bank of b or 1 rows (from ``encode_reference``).

        With guidance > 1 the UNet runs on [uncond, cond] rows and returns
        uncond + g * (cond - uncond) (and, with ``return_rows``, also the raw (2b, ...) predictions).
        """
        b = latents.shape[0]
        image_embeds = image_embeds.expand(b, -1, -1)
        pose_features = pose_features.expand(b, -1, -1, -1, -1)
        if guidance <= 1.0:
            pred = self.denoising_unet(latents, timestep, image_embeds, pose_features, reference)
            return (pred, pred) if return_rows else pred
        # 1. Batch rows [uncond x b, cond x b]; only the cond rows use the reference.
        if isinstance(timestep, Tensor) and timestep.ndim == 1 and len(timestep) == b > 1:
            timestep = timestep.repeat(2)  # a timestep per row (training-time distillation): (2b,)
        latent_in = torch.cat([latents, latents])  # (2b, 4, f, h, w)
        embeds_in = torch.cat([torch.zeros_like(image_embeds), image_embeds])
        pose_in = torch.cat([pose_features, pose_features])
        rows = slice(b, 2 * b)  # a static selection: no tensor is read, so compiled steps have no graph break
        pred = self.denoising_unet(latent_in, timestep, embeds_in, pose_in, reference, rows)
        # 2. Guidance.
        uncond, cond = pred.chunk(2)
        guided = uncond + guidance * (cond - uncond)
        return (guided, pred) if return_rows else guided
