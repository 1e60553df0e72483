"""A small VAE for the miniature model, trained on the synthetic frames (SD's VAE is too large for a CPU demo).

It is a stock diffusers ``AutoencoderKL`` with 4 latent channels like SD's but 4x downsampling instead of 8x (at
64 px an 8x latent grid of 8x8 cannot hold a character's limbs), trained with an L1 + MSE reconstruction loss and a
small KL term, so the rest of the project uses it exactly like SD's VAE (the pipeline reads the downsampling
factor from the VAE config; the miniature Pose Guider downsamples 4x to match). After
training, ``scaling_factor`` is set to 1 / std of the latents over the training frames (SD's 0.18215 plays
the same role), so diffusion sees unit-variance latents.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tqdm.auto import tqdm

LOGVAR_INIT = -8.0  # posterior log-variance at the start (std 0.02): sampled latents carry the image from step 1


def train_autoencoder(
    data_dirs: list[str | Path],
    out: str | Path,
    *,
    size: int = 64,
    steps: int = 6000,
    batch_size: int = 8,
    lr: float = 5e-4,
    kl_weight: float = 1e-6,
    seed: int = 0,
    init: str | Path | None = None,
    decoder_only: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Train the ``mini`` preset's VAE on frames of the datasets in ``data_dirs``; save it (diffusers folder) at
    ``out``. ``init``: continue from this VAE instead of a fresh one. ``decoder_only`` (needs ``init``): train
    the decoder alone; the encoder, and so the latent space and ``scaling_factor``, stay exactly as they are, so
    a model already trained on ``init``'s latents can use the result (SD's ft-MSE VAE was made this way)."""
    from diffusers import AutoencoderKL

    from ..atomic import atomic_directory, refuse_existing
    from ..models.presets import PRESETS

    if decoder_only and init is None:
        raise ValueError("decoder_only fine-tunes an existing VAE's decoder; give the VAE to start from (init)")
    refuse_existing(out, overwrite)  # say so before training, not after
    torch.manual_seed(seed)
    pool = load_frames(data_dirs, size)  # (N, 3, size, size) uint8, every frame of every clip
    generator = torch.Generator().manual_seed(seed)

    def batch(_step: int) -> torch.Tensor:  # (b, 3, H, W) in [-1, 1], random frames, random horizontal flips
        images = pool[torch.randint(len(pool), (batch_size,), generator=generator)].float() / 127.5 - 1
        flip = torch.rand(batch_size, generator=generator) < 0.5
        return torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)

    if init is not None:
        vae = AutoencoderKL.from_pretrained(init)
    else:
        vae = AutoencoderKL(**dict(PRESETS["mini"].vae, sample_size=size))
        with torch.no_grad():  # quant_conv maps to (mean, logvar); the default logvar of 0 (std 1) drowns the image
            vae.quant_conv.bias[vae.config.latent_channels :] = LOGVAR_INIT
    if decoder_only:
        vae.encoder.requires_grad_(False)
        vae.quant_conv.requires_grad_(False)
    params = [p for p in vae.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=steps, pct_start=0.05)
    # 1. Reconstruction training.
    bar = tqdm(range(steps), desc="autoencoder", disable=not progress)
    for step in bar:
        images = batch(step)
        with torch.set_grad_enabled(not decoder_only):
            posterior = vae.encode(images).latent_dist
        reconstruction = vae.decode(posterior.sample()).sample
        error = reconstruction - images
        loss = error.abs().mean() + error.pow(2).mean()
        if not decoder_only:
            loss = loss + kl_weight * posterior.kl().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        bar.set_postfix(loss=f"{loss.item():.4f}")
    # 2. Latent scale: 1 / std over fresh batches, so the diffusion model sees unit variance (kept when the
    #    encoder did not train).
    vae.eval()
    if not decoder_only:
        with torch.no_grad():
            latents = [vae.encode(batch(steps + i)).latent_dist.mean for i in range(4)]
        vae.register_to_config(scaling_factor=float(1.0 / torch.cat(latents).std()))
    with atomic_directory(out, overwrite=overwrite) as tmp:
        vae.save_pretrained(tmp)
    return Path(out)


def train_and_report(data_dirs: list[str | Path], out: str | Path, **kwargs) -> tuple[Path, str]:
    """``train_autoencoder`` (same arguments), then its cost and the reconstruction PSNR on up to 256 training
    frames as one line: what ``synthetic autoencoder`` prints."""
    import time

    from diffusers import AutoencoderKL

    start = time.perf_counter()
    out = train_autoencoder(data_dirs, out, **kwargs)
    seconds = time.perf_counter() - start
    pool = load_frames(data_dirs, kwargs.get("size", 64))
    frames = pool[:: max(1, len(pool) // 256)][:256]
    psnr = reconstruction_psnr(AutoencoderKL.from_pretrained(out).eval(), frames.float() / 127.5 - 1)
    steps = kwargs.get("steps", 6000)
    return out, f"{steps} steps in {seconds:.0f} s; reconstruction PSNR {psnr:.2f} dB on {len(frames)} training frames"


@torch.no_grad()
def reconstruction_psnr(vae, images: torch.Tensor) -> float:
    """PSNR (dB, images in [-1, 1] mapped to [0, 1]) of encode -> decode with the posterior mean."""
    reconstruction = vae.decode(vae.encode(images).latent_dist.mean).sample.clamp(-1, 1)
    mse = ((reconstruction - images) / 2).pow(2).mean()
    return float(10 * torch.log10(1 / mse))


def load_frames(data_dirs: list[str | Path], size: int) -> torch.Tensor:
    """Every frame of every clip in the datasets' manifests, resized to size x size: (N, 3, size, size) uint8."""
    import numpy as np

    from ..data.manifest import read_manifest
    from ..media import iter_frames

    frames = [
        frame for d in data_dirs for clip in read_manifest(d) for frame in iter_frames(clip.video, size=(size, size))
    ]
    if not frames:
        raise ValueError(f"no frames found in {', '.join(map(str, data_dirs))}")
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous()
