"""The diffusion training objective as pure functions (no module state, no global RNG)."""

from __future__ import annotations

import torch
from torch import Tensor


def sample_noise(
    shape: tuple[int, ...], generators: list[torch.Generator], noise_offset: float = 0.0, device=None
) -> Tensor:
    """Gaussian noise, one generator per sample (so a sample's noise does not depend on its batch).

    ``noise_offset`` adds a per-sample, per-channel constant of that std (the "offset noise" recipe).
    shape: (batch, channels, ...) with batch == len(generators).
    """
    noise = torch.stack([torch.randn(shape[1:], generator=g) for g in generators])
    if noise_offset:
        offset = torch.stack([torch.randn(shape[1], generator=g) for g in generators])  # (b, c)
        noise = noise + noise_offset * offset.view(*offset.shape, *([1] * (len(shape) - 2)))
    return noise.to(device)


def diffusion_target(scheduler, latents: Tensor, noise: Tensor, timesteps: Tensor) -> tuple[Tensor, Tensor]:
    """(noisy latents, regression target) for the scheduler's prediction type."""
    noisy = scheduler.add_noise(latents, noise, timesteps)
    prediction_type = scheduler.config.prediction_type
    if prediction_type == "epsilon":
        return noisy, noise
    if prediction_type == "v_prediction":
        return noisy, scheduler.get_velocity(latents, noise, timesteps)
    raise ValueError(f"unsupported prediction_type {prediction_type!r}; use epsilon or v_prediction")


def snr(alphas_cumprod: Tensor, timesteps: Tensor) -> Tensor:
    """Signal-to-noise ratio alpha_bar / (1 - alpha_bar) at each timestep."""
    a = alphas_cumprod.to(timesteps.device)[timesteps].float()
    return a / (1 - a)


def diffusion_loss(
    pred: Tensor,
    target: Tensor,
    timesteps: Tensor,
    alphas_cumprod: Tensor,
    prediction_type: str,
    min_snr_gamma: float | None = None,
) -> Tensor:
    """Mean squared error, optionally weighted per sample by min-SNR-gamma (Hang et al., 2023).

    Weights: min(SNR, gamma) / SNR for epsilon, min(SNR, gamma) / (SNR + 1) for v-prediction; at zero
    terminal SNR the epsilon weight is taken as 1.
    """
    per_sample = (pred.float() - target.float()).pow(2).flatten(1).mean(1)  # (b,)
    if min_snr_gamma is None:
        return per_sample.mean()
    s = snr(alphas_cumprod, timesteps)
    clipped = torch.clamp(s, max=min_snr_gamma)
    if prediction_type == "v_prediction":
        weight = clipped / (s + 1)
    else:
        weight = torch.where(s > 0, clipped / s.clamp(min=1e-12), torch.ones_like(s))
    return (per_sample * weight).mean()


def x0_and_noise(pred: Tensor, noisy: Tensor, alphas_cumprod: Tensor, timesteps: Tensor, prediction_type: str):
    """(clean-sample estimate, noise estimate) from a model output at ``timesteps`` (b,) for noisy (b, ...)."""
    a = alphas_cumprod.to(noisy.device)[timesteps].float().view(-1, *([1] * (noisy.ndim - 1)))
    pred, noisy = pred.float(), noisy.float()
    if prediction_type == "v_prediction":
        return a.sqrt() * noisy - (1 - a).sqrt() * pred, (1 - a).sqrt() * noisy + a.sqrt() * pred
    if prediction_type == "epsilon":
        return (noisy - (1 - a).sqrt() * pred) / a.sqrt(), pred
    raise ValueError(f"unsupported prediction_type {prediction_type!r}; use epsilon or v_prediction")


def consistency_loss(student: Tensor, target: Tensor, huber_c: float = 0.001, weight: Tensor | None = None) -> Tensor:
    """Pseudo-Huber distance sqrt(d^2 + c^2) - c per element, averaged (LCM); ``huber_c=0``: squared error.

    ``weight`` (broadcast to the elements, e.g. (b, 1, f, h, w) from ``moving_region_weight``): a weighted mean,
    sum(w * distance) / sum(w), so the loss keeps its scale whatever the weights."""
    d = student.float() - target.float()
    distance = d.pow(2) if not huber_c else (d.pow(2) + huber_c**2).sqrt() - huber_c
    if weight is None:
        return distance.mean()
    weight = weight.float().expand_as(distance)
    return (weight * distance).sum() / weight.sum()


def frame_differences(video: Tensor) -> Tensor:
    """Each frame minus the one before: (b, c, f, h, w) -> (b, c, f - 1, h, w)."""
    return video[:, :, 1:] - video[:, :, :-1]


def moving_region_weight(latents: Tensor, extra: float) -> Tensor:
    """1 + ``extra`` x the moving region, from the clean clip's own frame differences (any data, no masks).

    The moving region of frame i is the channel mean of |x_i - x_(i-1)| and |x_(i+1) - x_i|, the larger of the
    two (the first and last frame have one neighbour), divided by its maximum over the clip: 1 where the clip
    changes most, 0 where nothing moves. latents (b, c, f, h, w) -> weight (b, 1, f, h, w)."""
    change = frame_differences(latents.float()).abs().mean(1, keepdim=True)  # (b, 1, f - 1, h, w)
    before = torch.cat([change[:, :, :1], change], dim=2)  # (b, 1, f, h, w): frame i's change from i - 1
    after = torch.cat([change, change[:, :, -1:]], dim=2)  # (b, 1, f, h, w): frame i's change to i + 1
    region = torch.maximum(before, after)
    region = region / region.amax(dim=(2, 3, 4), keepdim=True).clamp(min=1e-12)
    return 1 + extra * region
