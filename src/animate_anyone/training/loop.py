"""The one training loop (stage 1, stage 2 and distillation) on accelerate, and the training step it repeats.

Every random choice of a sample (frames, crop, noise, timestep, reference dropout) is seeded by the sample's
position in the run (``sampling.py``), so the run is a pure function of the config: gradient accumulation
sees the same samples as a larger batch, and a resumed run continues bit for bit.
"""

from __future__ import annotations

import logging
import signal
import sys
import time
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..config import dotted, to_dict
from ..distributed import Launch, peers
from .batch_sampler import ResumableBatchSampler
from .checkpoint import export_model, latest_checkpoint, latest_complete_checkpoint, load_checkpoint, save_checkpoint
from .config import TrainConfig
from .losses import diffusion_loss, diffusion_target, sample_noise
from .preflight import LOG_FILE, preflight, remove_earlier_run
from .setup import apply_stage, load_components

logger = logging.getLogger(__name__)


def training_step(model, vae, image_encoder, feature_extractor, scheduler, batch: dict, config: TrainConfig) -> Tensor:
    """Loss of one micro-batch. batch: pixels (b, 3, f, H, W) in [-1, 1], pose (b, 3, f, H, W) in [0, 1],
    reference (b, 3, H, W) in [-1, 1], reference_image (b, H, W, 3) uint8, seed (b,)."""
    device = batch["pixels"].device
    generators = sample_generators(batch)
    b = batch["pixels"].shape[0]
    # 1. Frozen encoders.
    latents, ref_latents, image_embeds = encode_batch(vae, image_encoder, feature_extractor, batch, generators)
    # 2. Per-sample noise, timestep and reference dropout.
    noise = sample_noise(tuple(latents.shape), generators, config.noise.noise_offset, device).to(latents.dtype)
    timesteps = torch.stack(
        [torch.randint(0, scheduler.config.num_train_timesteps, (), generator=g) for g in generators]
    ).to(device)
    keep = torch.stack([torch.rand((), generator=g) >= config.noise.reference_dropout for g in generators]).to(device)
    image_embeds = image_embeds * keep.view(b, 1, 1).to(image_embeds.dtype)  # dropped rows: zero embedding
    use_reference = keep & config.model.reference_net  # the no-ReferenceNet ablation never attends to it
    noisy, target = diffusion_target(scheduler, latents, noise, timesteps)
    # 3. The shared forward and the pure loss.
    pred = model(noisy, timesteps, ref_latents, image_embeds, batch["pose"], use_reference)
    return diffusion_loss(
        pred, target, timesteps, scheduler.alphas_cumprod, scheduler.config.prediction_type, config.noise.min_snr_gamma
    )


def sample_generators(batch: dict) -> list[torch.Generator]:
    """One generator per sample, seeded by the sample's position in the run: every random choice draws from it."""
    return [torch.Generator().manual_seed(int(s)) for s in batch["seed"]]


@torch.no_grad()
def encode_batch(vae, image_encoder, feature_extractor, batch: dict, generators: list[torch.Generator]):
    """The frozen encoders: video latents (b, 4, f, h, w) sampled from the VAE posterior, reference latents
    (b, 4, h, w) and the CLIP image embedding (b, 1, C)."""
    device = batch["pixels"].device
    b, _, f, height, width = batch["pixels"].shape
    frames = batch["pixels"].transpose(1, 2).reshape(b * f, 3, height, width)  # (b*f, 3, H, W)
    latents = _sample_latents(vae, frames, [g for g in generators for _ in range(f)])
    latents = latents.reshape(b, f, *latents.shape[1:]).transpose(1, 2)  # (b, 4, f, h, w)
    ref_latents = _sample_latents(vae, batch["reference"], generators)
    clip = feature_extractor(images=list(batch["reference_image"].cpu().numpy()), return_tensors="pt").pixel_values
    image_embeds = image_encoder(clip.to(device, image_encoder.dtype)).image_embeds.unsqueeze(1)  # (b, 1, C)
    return latents, ref_latents, image_embeds


def _sample_latents(vae, images: Tensor, generators: list[torch.Generator]) -> Tensor:
    posterior = vae.encode(images.to(vae.dtype)).latent_dist
    eps = torch.stack([torch.randn(posterior.mean.shape[1:], generator=g) for g in generators]).to(posterior.mean)
    return (posterior.mean + posterior.std * eps) * vae.config.scaling_factor


class TrainingStopped(Exception):
    """A run stopped by SIGINT/SIGTERM after writing its checkpoint; ``resume`` continues it exactly (``resume_name``:
    the caller's name for it, a command's flag)."""

    def __init__(self, checkpoint: Path, signum: int, resume_name: str = "resume"):
        self.checkpoint, self.signum = checkpoint, signum
        name = signal.Signals(signum).name
        super().__init__(f"stopped by {name}; saved {checkpoint}; continue with {resume_name} and the same config")


class _StopRequest:
    """SIGINT/SIGTERM set a flag; the loop checkpoints at the next optimizer step and stops."""

    def __init__(self):
        self.requested = False
        self.signum = signal.SIGTERM
        self._previous = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        self.requested, self.signum = True, signum

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False


def train(
    config: TrainConfig,
    resume: str | None = None,
    progress: bool = True,
    overwrite: bool = False,
    launch: Launch | None = None,
    names: Mapping[str, str] | None = None,
) -> Path:
    """Run (or continue) a training stage; returns the exported model directory (``output_dir/final``).
    Stopped by SIGINT/SIGTERM, it writes a checkpoint and raises :class:`TrainingStopped`. ``launch``: what the
    launcher told this process (``distributed.Launch.from_env``, from the ``train`` command); accelerate joins the
    launch's processes, with ``config.collective_timeout`` for every collective. ``names``: the caller's names for
    ``resume`` and ``overwrite`` in messages (a command's flags; default the parameters')."""
    launch, names = launch or Launch(), names or {}
    # 0. Everything checkable, before anything loads or is written.
    dataset = preflight(config, resume, overwrite, names)
    warn_about_restarts(launch)
    with peers(launch, config.collective_timeout):
        return _train(config, dataset, resume, progress, overwrite, launch, names)


def _train(
    config: TrainConfig,
    dataset,
    resume: str | None,
    progress: bool,
    overwrite: bool,
    launch: Launch,
    names: Mapping[str, str],
) -> Path:
    from accelerate import Accelerator, DistributedDataParallelKwargs, InitProcessGroupKwargs
    from diffusers.optimization import get_scheduler

    from ..data.dataset import collate
    from ..devices import resolve_device

    out = Path(config.output_dir)
    resume_name = names.get("resume", "resume")  # in messages
    timeout = InitProcessGroupKwargs(timeout=timedelta(seconds=config.collective_timeout))
    accelerator = Accelerator(
        # Without an accelerator, say so: accelerate then joins torchrun's processes with gloo (MULTI_CPU).
        cpu=resolve_device("auto").type == "cpu",
        gradient_accumulation_steps=config.gradient_accumulation,
        mixed_precision=config.mixed_precision,
        log_with=None if config.log_with == "none" else config.log_with,
        project_dir=str(out),
        # find_unused_parameters: the rows that dropped their reference leave ReferenceNet unused
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True), timeout],
    )
    if overwrite and resume is None:  # the earlier run goes (checked in preflight), once, before anyone writes
        if accelerator.is_main_process:
            remove_earlier_run(out)
        accelerator.wait_for_everyone()
    torch.manual_seed(config.seed)
    # 1. Components, what trains, and the optimizer.
    model, vae, image_encoder, feature_extractor, scheduler = load_components(config)
    params = apply_stage(model, config.stage, use_reference_net=config.model.reference_net)
    distill = None
    if config.stage == "distill":
        from .distill import ConsistencyDistillation

        distill = ConsistencyDistillation(config, model, scheduler, accelerator.device)
        accelerator.register_for_checkpointing(distill.target_unet)  # the target network resumes exactly
    if config.gradient_checkpointing:
        model.reference_net.enable_gradient_checkpointing()
        model.denoising_unet.enable_gradient_checkpointing()
    vae.requires_grad_(False).eval().to(accelerator.device)
    image_encoder.requires_grad_(False).eval().to(accelerator.device)
    optimizer = _optimizer(params, config)
    lr_scheduler = get_scheduler(
        config.optim.lr_scheduler,
        optimizer,
        num_warmup_steps=config.optim.warmup_steps,
        num_training_steps=config.max_steps,
    )
    ema = None
    if config.ema_decay is not None:
        from diffusers.training_utils import EMAModel

        ema = EMAModel(params, decay=config.ema_decay)
    model, optimizer, lr_scheduler = accelerator.prepare(model, optimizer, lr_scheduler)
    model.train()
    # 2. Resume.
    step = 0
    if resume is not None:
        path, skipped = Path(resume), []
        if resume == "auto":  # the main process reads and checks the checkpoints once; the others take its choice
            from accelerate.utils import broadcast_object_list

            found = [latest_complete_checkpoint(out) if accelerator.is_main_process else None]
            path, skipped = broadcast_object_list(found)[0] if accelerator.num_processes > 1 else found[0]
        if accelerator.is_main_process:
            for line in skipped:
                print(f"{resume_name}: {line}", file=sys.stderr)
        if path is None and accelerator.is_main_process:
            print(f"{resume_name}: no checkpoint in {out / 'checkpoints'} yet; starting at step 0", file=sys.stderr)
        if path is not None:
            step = load_checkpoint(accelerator, path, ema)
            logger.info("resumed from %s at step %d", path, step)
    if ema is not None:
        ema.to(accelerator.device)
    # 3. Data (read and checked in preflight) from the sample position after the last completed optimizer step.
    d = config.data
    sampler = ResumableBatchSampler(
        len(dataset),
        config.batch_size,
        config.seed,
        step * config.gradient_accumulation,
        accelerator.process_index,
        accelerator.num_processes,
    )
    loader = torch.utils.data.DataLoader(
        _Seeded(dataset), batch_sampler=sampler, collate_fn=_collate_with(collate), num_workers=d.num_workers
    )
    if accelerator.is_main_process and config.log_with != "none":
        scalars = {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in dotted(config).items()}
        accelerator.init_trackers(f"stage{config.stage}", config=scalars)
    # 4. The loop: micro-batches, accumulation, optimizer steps, checkpoints, validation.
    bar = tqdm(
        total=config.max_steps,
        initial=step,
        desc=f"stage {config.stage}",
        disable=not (progress and accelerator.is_main_process),
    )
    batches = iter(loader)
    window: list[float] = []  # this process's losses since the last log line
    with _StopRequest() as stop:
        while step < config.max_steps:
            batch = {k: v.to(accelerator.device) if isinstance(v, Tensor) else v for k, v in next(batches).items()}
            with accelerator.accumulate(model):
                with accelerator.autocast():
                    if distill is None:
                        loss = training_step(model, vae, image_encoder, feature_extractor, scheduler, batch, config)
                    else:
                        generators = sample_generators(batch)
                        encoded = encode_batch(vae, image_encoder, feature_extractor, batch, generators)
                        loss = distill.loss(model, *encoded, batch["pose"], generators)
                accelerator.backward(loss)
                if accelerator.sync_gradients and config.optim.max_grad_norm:
                    accelerator.clip_grad_norm_(params, config.optim.max_grad_norm)
                optimizer.step()
                lr_scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            if not accelerator.sync_gradients:
                continue
            step += 1
            if distill is not None:
                distill.update_target()
            if ema is not None:
                ema.step(params)
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.4f}")
            window.append(loss.item())
            if step % config.log_every == 0 or step == config.max_steps:
                record = {"step": step, "loss": sum(window) / len(window), "lr": lr_scheduler.get_last_lr()[0]}
                accelerator.log(record, step=step)
                if accelerator.is_main_process:
                    _append_log(out / LOG_FILE, {**record, "time": round(time.time(), 1)})
                window.clear()
            stopping = _agreed(accelerator, stop.requested)  # every process stops at the same step
            if stopping or step % config.checkpoint_every == 0:
                extra = {"config": to_dict(config)}
                save_checkpoint(accelerator, out, step, ema, config.checkpoints_kept, extra, resume_name=resume_name)
            if stopping:
                bar.close()
                accelerator.end_training()
                raise TrainingStopped(latest_checkpoint(out), stop.signum, resume_name)
            if config.validate_every and step % config.validate_every == 0:
                sampler_of_run = scheduler if distill is None else distill.student_scheduler
                networks = accelerator.unwrap_model(model)
                video = out / "validation" / f"step-{step:06d}.mp4"
                encoders = (vae, image_encoder, feature_extractor)
                _validate(accelerator, launch, config, networks, encoders, sampler_of_run, dataset, video)
    bar.close()
    # 5. Final checkpoint and export (EMA weights when EMA is on).
    extra = {"config": to_dict(config)}
    save_checkpoint(accelerator, out, step, ema, config.checkpoints_kept, extra, resume_name=resume_name)
    final = out / "final"
    if accelerator.is_main_process:
        networks = accelerator.unwrap_model(model)
        if ema is not None:
            ema.store(params)
            ema.copy_to(params)
        if distill is None:
            export_model(
                networks, config.model.pretrained, scheduler, final, use_reference_net=config.model.reference_net
            )
        else:
            steps = config.distill.phases or None  # a phased student samples one DDIM step per phase
            scheduler = distill.student_scheduler
            export_model(
                networks, config.model.pretrained, scheduler, final, default_preset="student", student_steps=steps
            )
        if ema is not None:
            ema.restore(params)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return final


def _validate(accelerator, launch: Launch, config: TrainConfig, networks, encoders, scheduler, dataset, video: Path):
    """The validation video, made by the main process alone: the pipeline is handed no ranks, so it waits for no other
    process. The others wait for it at a barrier (``collective_timeout`` covers it), so every process starts the next
    step together, and training is the same with or without validation."""
    from .validation import write_validation_video

    if accelerator.is_main_process:
        write_validation_video(networks, *encoders, scheduler, dataset, video, config)
    with peers(launch, config.collective_timeout, f"the main process's validation video {video.name}"):
        accelerator.wait_for_everyone()


def warn_about_restarts(launch: Launch) -> None:
    """One line on the first start of a torchrun group that may restart without a fresh rendezvous store per
    restart: with torch 2.13 the restarted group then reads the killed workers' addresses from the shared store
    and fails to connect (measured with gloo; pytorch/pytorch#167288 reports it with NCCL)."""
    first_start = launch.restart == 0 and launch.main
    if launch.max_restarts > 0 and first_start and not launch.fresh_store:
        print(
            "warning: torchrun may restart this group, but a restarted group cannot reconnect through the shared "
            "rendezvous store (torch 2.13); set TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 in torchrun's environment",
            file=sys.stderr,
        )


def _agreed(accelerator, requested: bool) -> bool:
    """True on every process when any process was asked to stop (signals reach the processes of a launcher at
    different moments; stopping at different steps would leave the others waiting in a collective)."""
    if accelerator.num_processes == 1:
        return requested
    flag = torch.tensor([1.0 if requested else 0.0], device=accelerator.device)
    return bool(accelerator.reduce(flag, reduction="sum").item() > 0)


def _append_log(path: Path, record: dict) -> None:
    """One JSON line, appended and flushed (a resumed run continues the same file)."""
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def _optimizer(params, config: TrainConfig):
    o = config.optim
    if o.adam_8bit:
        try:
            import bitsandbytes as bnb
        except ImportError:
            raise ValueError("optim.adam_8bit needs bitsandbytes (pip install bitsandbytes, CUDA only)") from None
        return bnb.optim.AdamW8bit(params, lr=o.lr, betas=o.betas, eps=o.eps, weight_decay=o.weight_decay)
    return torch.optim.AdamW(params, lr=o.lr, betas=o.betas, eps=o.eps, weight_decay=o.weight_decay)


class _Seeded(torch.utils.data.Dataset):
    """The dataset keyed by (clip index, sample seed); the seed travels with the sample."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, key):
        return {**self.dataset[key], "seed": key[1]}


def _collate_with(collate):
    def run(items):
        seeds = torch.tensor([item.pop("seed") for item in items], dtype=torch.int64)
        return {**collate(items), "seed": seeds}

    return run
