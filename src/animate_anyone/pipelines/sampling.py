"""The denoising loop over a whole video, with overlapping temporal windows."""

from __future__ import annotations

import inspect
from typing import Callable

import torch
from torch import Tensor

from ..models import AnimateAnyone, ReferenceBank
from .context import window_schedule


@torch.no_grad()
def sample_video(
    model: AnimateAnyone,
    scheduler,
    latents: Tensor,
    image_embeds: Tensor,
    pose_features: Tensor | Callable[[Tensor], Tensor],
    reference: ReferenceBank,
    num_inference_steps: int,
    guidance_scale: float,
    context_frames: int = 24,
    context_overlap: int = 4,
    window_mode: str = "shifted",
    context_stride: int = 1,
    generator: torch.Generator | None = None,
    eta: float = 0.0,
    callback: Callable[[int, int], None] | None = None,
) -> Tensor:
    """Denoise ``latents`` (batch, 4, frames, h, w) from pure noise; returns the final latents.

    At every step each window is predicted (guided rows [uncond, cond]), predictions are averaged per frame
    with the windows' blend weights, then one scheduler step is taken on the whole video. ``callback(step,
    window)`` is called after every window (for progress bars).

    ``pose_features`` is either the whole video's (b, C0, frames, h, w) or a function from a window's frame
    indices to that window's features; the pipeline passes a function so that long videos never hold pose
    features for all frames at once.
    """
    pose_of = pose_features if callable(pose_features) else lambda idx: pose_features[:, :, idx]
    num_frames = latents.shape[2]
    scheduler.set_timesteps(num_inference_steps, device=latents.device)
    step_kwargs = {"eta": eta, "generator": generator} if "eta" in _step_parameters(scheduler) else {}
    for step_index, t in enumerate(scheduler.timesteps):
        # 1. Windows of this step and their blend weights.
        schedule = window_schedule(window_mode, num_frames, context_frames, context_overlap, step_index, context_stride)
        total = torch.zeros_like(latents, dtype=torch.float32)  # (b, 4, F, h, w)
        weight = torch.zeros(num_frames, device=latents.device, dtype=torch.float32)
        model_input = scheduler.scale_model_input(latents, t)
        # 2. Guided prediction per window, accumulated per frame.
        for window_index, (frames, weights) in enumerate(schedule):
            idx = torch.tensor(frames, device=latents.device)
            w = torch.tensor(weights, device=latents.device, dtype=torch.float32)
            pred = model.denoise(model_input[:, :, idx], t, image_embeds, pose_of(idx), reference, guidance_scale)
            total.index_add_(2, idx, pred.float() * w.view(1, 1, -1, 1, 1))
            weight.index_add_(0, idx, w)
            if callback is not None:
                callback(step_index, window_index)
        noise_pred = (total / weight.view(1, 1, -1, 1, 1)).to(latents.dtype)
        # 3. One scheduler step on the whole video.
        latents = scheduler.step(noise_pred, t, latents, **step_kwargs, return_dict=False)[0]
    return latents


def _step_parameters(scheduler) -> set[str]:
    return set(inspect.signature(scheduler.step).parameters)
