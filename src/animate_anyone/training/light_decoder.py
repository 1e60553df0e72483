"""``animate-anyone train light-decoder``: a light decoder (``models.LightDecoder``, TAESD's design) distilled from a
model directory's own VAE decoder, written into that directory as its ``light_decoder`` component.

Per step: a batch of random training frames (random horizontal flips), resized to ``size`` x ``size``; the VAE
encodes them (the posterior mean, scaled as the denoiser's latents are) and decodes them again; the light decoder
learns to reproduce that decode (L1 + squared error), so it replaces the decoder and nothing else: its target is
what the VAE would have drawn from the same latents, not the frames. The VAE stays frozen.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from ..config import SettingError
from .small_loop import CHECKPOINT_EVERY, SmallLoop


def train_light_decoder(
    model: str | Path,
    data_dirs: list[str | Path],
    *,
    size: int | None = None,
    steps: int = 3000,
    batch_size: int = 8,
    lr: float = 1e-3,
    channels: int = 64,
    blocks: int = 3,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = True,
    resume: bool = False,
    checkpoint_every: int = CHECKPOINT_EVERY,
    names: Mapping[str, str] | None = None,
) -> dict:
    """Train a light decoder for the model directory ``model`` on the frames of the datasets ``data_dirs`` and
    write it to ``model/light_decoder`` (model_index.json lists it). ``size``: the square training frames' side
    (default: the model's resolution, at most 256; the decoder is convolutional, any output size works).
    ``resume``: continue from the checkpoint in ``model/light_decoder.checkpoints`` (written every
    ``checkpoint_every`` steps, ``small_loop.SmallLoop``). Returns a report: the final loss and the PSNR of the light
    decoder against the VAE's decode on a held batch. ``names``: the caller's names for ``model``, ``resume`` and
    ``overwrite`` in messages (a command's flags; default the parameters'); a bad value is a ``SettingError``."""
    from ..data.frames import load_frames, random_frames
    from ..model_dir import ModelDirectory, vae_scale_factor
    from ..models import LightDecoder

    directory = ModelDirectory(model).check()
    out = directory.path / "light_decoder"
    for name, value, ok, rule in (
        ("steps", steps, steps >= 1, "must be at least 1"),
        ("batch_size", batch_size, batch_size >= 1, "must be at least 1"),
        ("lr", lr, lr > 0, "must be > 0"),
    ):
        if not ok:
            raise SettingError(name, value, rule)
    names = names or {}
    size = size or min(256, directory.default_short_side())
    data = [str(Path(d).resolve()) for d in data_dirs]
    settings = dict(data=data, size=size, batch_size=batch_size, lr=lr, channels=channels, blocks=blocks, seed=seed)
    loop = SmallLoop(out, settings, steps, every=checkpoint_every, resume=resume, overwrite=overwrite, names=names)
    refuse_light_decoder(directory, overwrite, names, "train a new one in its place")
    vae = directory.load_component("vae").eval().requires_grad_(False)
    factor, scale = vae_scale_factor(vae.config), vae.config.scaling_factor
    if size % factor:
        raise SettingError("size", size, f"must be a multiple of the VAE's downsampling factor {factor}")
    torch.manual_seed(seed)
    pool = load_frames(data_dirs, size)  # (N, 3, size, size) uint8
    generator = torch.Generator().manual_seed(seed)
    decoder = LightDecoder(vae.config.latent_channels, 3, factor, channels, blocks)
    optimizer = torch.optim.AdamW(decoder.parameters(), lr=lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=steps, pct_start=0.05)

    @torch.no_grad()
    def batch() -> tuple[torch.Tensor, torch.Tensor]:  # (latents (b, 4, h, w) scaled, the VAE's decode in [-1, 1])
        latents = vae.encode(random_frames(pool, batch_size, generator)).latent_dist.mean * scale
        return latents, vae.decode(latents / scale).sample.clamp(-1, 1)

    def step(_: int) -> torch.Tensor:
        latents, target = batch()
        error = decoder(latents) - target
        return error.abs().mean() + error.pow(2).mean()

    held = batch()  # drawn first, never trained on
    modules, generators = {"decoder": decoder}, {"frames": generator}
    loss = loop.run(step, [(optimizer, schedule)], modules, generators, desc="light decoder", progress=progress)
    decoder.eval()
    with torch.no_grad():
        mse = ((decoder(held[0]).clamp(-1, 1) - held[1]) / 2).pow(2).mean()  # on [0, 1]
    write_light_decoder(directory, decoder, overwrite)
    loop.finish()
    return {
        "light_decoder": str(out),
        "steps": steps,
        "final_loss": loss,
        "psnr_vs_vae_decode": float(10 * torch.log10(1 / mse)),
        "parameters": sum(p.numel() for p in decoder.parameters()),
    }


def refuse_light_decoder(directory, overwrite: bool, names: Mapping[str, str] | None = None, doing: str = "") -> Path:
    """Before any work: the path of the model directory's ``light_decoder`` (a ``ModelDirectory``), which may be
    written: ``FileExistsError`` when it exists and ``overwrite`` is false (``doing``: what ``overwrite`` would do,
    in the message), an ``OSError`` when the directory cannot be written. ``names``: the caller's names for ``model``
    and ``overwrite`` (a command's flags)."""
    from ..atomic import check_writable

    names = names or {}
    out = directory.path / "light_decoder"
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass {names.get('overwrite', 'overwrite')} to {doing or 'replace it'}")
    model_name = names.get("model", "model")
    check_writable(directory.path, f"{model_name} {directory.path}", "copy the model directory where you may write")
    return out


def write_light_decoder(directory, decoder, overwrite: bool = False) -> Path:
    """Write ``decoder`` (a ``LightDecoder``) as the ``light_decoder`` component of the model directory ``directory``
    (a ``ModelDirectory``; atomically) and list it in model_index.json: the one writer of that component, behind
    ``train light-decoder`` and ``convert light-decoder``. Returns the component's folder."""
    import json

    from ..atomic import atomic_directory, write_text
    from ..model_dir import read_json

    out = directory.path / "light_decoder"
    with atomic_directory(out, overwrite=overwrite) as tmp:
        decoder.save_pretrained(tmp, safe_serialization=True)
    index = read_json(directory.path / "model_index.json")
    index["light_decoder"] = ["animate_anyone.models", "LightDecoder"]
    write_text(directory.path / "model_index.json", json.dumps(index, indent=2) + "\n")
    return out
