"""A small VAE for the miniature model, trained on the synthetic frames (SD's VAE is too large for a CPU demo).

It is a stock diffusers ``AutoencoderKL`` with 4 latent channels like SD's but 4x downsampling instead of 8x (at
64 px an 8x latent grid of 8x8 cannot hold a character's limbs), trained with an L1 + MSE reconstruction loss and a
small KL term, so the rest of the project uses it exactly like SD's VAE (the pipeline reads the downsampling
factor from the VAE config; the miniature Pose Guider downsamples 4x to match). After
training, ``scaling_factor`` is set to 1 / std of the latents over the training frames (SD's 0.18215 plays
the same role), so diffusion sees unit-variance latents.

A decoder fine-tune can add the two losses the public SD VAEs were trained with (Rombach et al., 2022, after
Esser et al.'s VQGAN): a perceptual loss (the project's own LPIPS network, ``evaluation/lpips.py``; VGG by default,
so the benchmark's AlexNet LPIPS is not the training objective) and a patch adversarial loss (a small PatchGAN
discriminator with the hinge loss, its weight on the decoder scaled by the ratio of the reconstruction and
adversarial gradients at the decoder's last layer). Reconstruction alone averages every plausible texture into
blur; these two make the decoder commit to one.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from animate_anyone.data.frames import load_frames, random_frames
from animate_anyone.training.small_loop import CHECKPOINT_EVERY, SmallLoop

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
    perceptual_weight: float = 0.0,
    perceptual_net: str = "vgg",
    adversarial_weight: float = 0.0,
    adversarial_start: int = 500,
    resume: bool = False,
    checkpoint_every: int = CHECKPOINT_EVERY,
    names: Mapping[str, str] | None = None,
) -> Path:
    """Train the ``mini`` preset's VAE on frames of the datasets in ``data_dirs``; save it (diffusers folder) at
    ``out``. ``init``: continue from this VAE instead of a fresh one. ``decoder_only`` (needs ``init``): train
    the decoder alone; the encoder, and so the latent space and ``scaling_factor``, stay exactly as they are, so
    a model already trained on ``init``'s latents can use the result (SD's ft-MSE VAE was made this way).
    ``perceptual_weight``: weight of LPIPS (``perceptual_net``) in the loss; ``adversarial_weight``: weight of the
    patch adversarial loss (scaled adaptively, see the module), which reaches the VAE from step
    ``adversarial_start`` on (the discriminator trains from step 0). Both 0: L1 + MSE only, as before.
    ``resume``: continue from the checkpoint in ``OUT.checkpoints`` (written every ``checkpoint_every`` steps,
    ``animate_anyone.training.small_loop``). ``names``: the caller's names for ``out``, ``resume`` and ``overwrite``
    in messages (a command's flags)."""
    from diffusers import AutoencoderKL

    from animate_anyone.atomic import atomic_directory, refuse_existing
    from animate_anyone.models.sizes import SIZES

    if decoder_only and init is None:
        raise ValueError("decoder_only fine-tunes an existing VAE's decoder; give the VAE to start from (init)")
    if perceptual_weight < 0 or adversarial_weight < 0 or adversarial_start < 0:
        raise ValueError(
            f"perceptual_weight={perceptual_weight}, adversarial_weight={adversarial_weight} and "
            f"adversarial_start={adversarial_start} must be >= 0"
        )
    settings = dict(
        data=[str(Path(d).resolve()) for d in data_dirs],
        size=size,
        batch_size=batch_size,
        lr=lr,
        kl_weight=kl_weight,
        seed=seed,
        init=None if init is None else str(Path(init).resolve()),
        decoder_only=decoder_only,
        perceptual_weight=perceptual_weight,
        perceptual_net=perceptual_net,
        adversarial_weight=adversarial_weight,
        adversarial_start=adversarial_start,
    )
    names = names or {}
    loop = SmallLoop(out, settings, steps, every=checkpoint_every, resume=resume, overwrite=overwrite, names=names)
    refuse_existing(out, overwrite, names.get("out", "out"), names.get("overwrite"))  # before training, not after
    torch.manual_seed(seed)
    pool = load_frames(data_dirs, size)  # (N, 3, size, size) uint8, every frame of every clip
    generator = torch.Generator().manual_seed(seed)

    def batch(_step: int) -> torch.Tensor:
        return random_frames(pool, batch_size, generator)

    if init is not None:
        vae = AutoencoderKL.from_pretrained(init)
    else:
        vae = AutoencoderKL(**dict(SIZES["mini"].vae, sample_size=size))
        with torch.no_grad():  # quant_conv maps to (mean, logvar); the default logvar of 0 (std 1) drowns the image
            vae.quant_conv.bias[vae.config.latent_channels :] = LOGVAR_INIT
    if decoder_only:
        vae.encoder.requires_grad_(False)
        vae.quant_conv.requires_grad_(False)
    params = [p for p in vae.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=steps, pct_start=0.05)
    perceptual = discriminator = d_optimizer = None
    with torch.random.fork_rng(devices=[]):  # the extra networks leave the latent noise stream as it was
        if perceptual_weight > 0:
            from animate_anyone.evaluation.lpips import load_lpips

            perceptual = load_lpips(net=perceptual_net)  # frozen, eval mode
        if adversarial_weight > 0:
            torch.manual_seed(seed + 1)
            discriminator = PatchDiscriminator()
            d_optimizer = torch.optim.Adam(discriminator.parameters(), lr=lr, betas=(0.5, 0.9))

    # 1. Training: reconstruction (+ perceptual) (+ adversarial, with the discriminator's own step).
    def step(i: int) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        images = batch(i)
        with torch.set_grad_enabled(not decoder_only):
            posterior = vae.encode(images).latent_dist
        reconstruction = vae.decode(posterior.sample()).sample
        error = reconstruction - images
        loss = error.abs().mean() + error.pow(2).mean()
        if not decoder_only:
            loss = loss + kl_weight * posterior.kl().mean()
        if perceptual is not None:
            loss = loss + perceptual_weight * perceptual(reconstruction, images).mean()
        if discriminator is None:
            return loss
        if i >= adversarial_start:
            fooling = -discriminator(reconstruction).mean()  # the hinge loss's generator side
            weight = adaptive_weight(loss, fooling, vae.decoder.conv_out.weight)
            loss = loss + adversarial_weight * weight * fooling
        # The discriminator's loss, for its own step after the VAE's (the VAE's step leaves its weights as they are).
        return loss, hinge_discriminator_loss(discriminator(images), discriminator(reconstruction.detach()))

    updates, modules = [(optimizer, schedule)], {"vae": vae}
    if discriminator is not None:
        updates, modules = [*updates, (d_optimizer, None)], {**modules, "discriminator": discriminator}
    loop.run(step, updates, modules, {"frames": generator}, desc="autoencoder", progress=progress)
    # 2. Latent scale: 1 / std over fresh batches, so the diffusion model sees unit variance (kept when the
    #    encoder did not train).
    vae.eval()
    if not decoder_only:
        with torch.no_grad():
            latents = [vae.encode(batch(steps + i)).latent_dist.mean for i in range(4)]
        vae.register_to_config(scaling_factor=float(1.0 / torch.cat(latents).std()))
    with atomic_directory(out, overwrite=overwrite) as tmp:
        vae.save_pretrained(tmp)
    loop.finish()
    return Path(out)


class PatchDiscriminator(torch.nn.Module):
    """A PatchGAN discriminator (Isola et al., 2017) sized for 64 px frames: (b, 3, H, W) in [-1, 1] -> (b, 1, h, w)
    realness logits, one per overlapping patch (receptive field 34 px, about half a frame)."""

    def __init__(self, channels: int = 32):
        super().__init__()
        nn = torch.nn
        c = channels
        self.layers = nn.Sequential(
            nn.Conv2d(3, c, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(c, 2 * c, 4, stride=2, padding=1),
            nn.GroupNorm(8, 2 * c),
            nn.LeakyReLU(0.2),
            nn.Conv2d(2 * c, 4 * c, 4, stride=1, padding=1),
            nn.GroupNorm(8, 4 * c),
            nn.LeakyReLU(0.2),
            nn.Conv2d(4 * c, 1, 4, stride=1, padding=1),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.layers(images)  # (b, 1, H/4 - 2, W/4 - 2)


def hinge_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """The discriminator's hinge loss: real patches pushed above +1, reconstructed ones below -1."""
    return 0.5 * (torch.relu(1 - real_logits).mean() + torch.relu(1 + fake_logits).mean())


def adaptive_weight(reconstruction_loss: torch.Tensor, adversarial_loss: torch.Tensor, last_layer: torch.Tensor):
    """How much the adversarial loss weighs against the reconstruction loss: the ratio of their gradient norms
    at ``last_layer`` (VQGAN's rule), so neither drowns the other whatever their scales; clamped to [0, 1e4] and
    detached (a weight, not a term to minimise)."""
    rec = torch.autograd.grad(reconstruction_loss, last_layer, retain_graph=True)[0]
    adv = torch.autograd.grad(adversarial_loss, last_layer, retain_graph=True)[0]
    return (rec.norm() / (adv.norm() + 1e-4)).clamp(0.0, 1e4).detach()


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
