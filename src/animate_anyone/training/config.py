"""The training recipe as typed dataclasses (YAML instances in ``configs/train/``); ``TrainConfig.check`` holds every
rule a value must keep, checked once before anything loads."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from ..config import ConfigError
from ..distributed import DEFAULT_TIMEOUT_S


@dataclass
class ModelConfig:
    pretrained: str = (
        ""  # a complete model directory to start from (init-model, convert moore/assemble, stage 1's export)
    )
    sd15_unet: str | None = (
        None  # stage 1: SD-1.5 UNet weights (diffusers folder, unet/ folder or single file) for both UNets
    )
    motion_module: str | None = (
        None  # stage 2: AnimateDiff motion module (mm_sd_v15_v2.ckpt) or Moore motion_module.pth
    )
    reference_net: bool = (
        True  # false: the ablation without ReferenceNet (image embedding only); recorded in the export
    )
    reset_temporal: bool = (
        False  # true: zero the temporal layers' output projections first (identities again), so stage 1 can
        # continue a stage-2 export (a fine-tune of a finished model); its stage 2 then trains them again
    )


@dataclass
class DataConfig:
    root: str = ""  # dataset directory with manifest.jsonl (animate-anyone data prepare)
    resolution: tuple[int, int] = (512, 768)  # (width, height), multiples of 8
    frames: int = 1  # frames per sample: 1 in stage 1, e.g. 24 in stage 2
    stride: int = 1  # frame stride within a clip (stage 2)
    augment: bool = True  # random crops (the same box for video and pose)
    num_workers: int = 0


@dataclass
class NoiseConfig:
    """Overrides of the model directory's scheduler (the same configuration is then exported for inference)."""

    prediction_type: Literal["epsilon", "v_prediction"] | None = None  # None: the model directory's
    zero_snr: bool | None = None  # rescale betas to zero terminal SNR; None: the model directory's
    noise_offset: float = 0.0  # std of a per-channel offset added to the noise (0: off)
    min_snr_gamma: float | None = None  # min-SNR-gamma loss weighting (e.g. 5.0); None: plain MSE
    reference_dropout: float = 0.1  # fraction of samples trained without reference and image embedding (for guidance)


@dataclass
class OptimConfig:
    lr: float = 1e-5
    weight_decay: float = 1e-2
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    adam_8bit: bool = False  # bitsandbytes AdamW8bit (needs a CUDA machine with bitsandbytes installed)
    max_grad_norm: float = 1.0
    lr_scheduler: str = "constant_with_warmup"  # any diffusers.optimization scheduler name
    warmup_steps: int = 1


@dataclass
class DistillConfig:
    """``stage: distill`` (training/distill.py): consistency distillation of a few-step student without guidance."""

    teacher: str = ""  # model directory of the teacher; "": model.pretrained (the student starts as the teacher)
    guidance: float = 3.5  # the teacher's guidance scale, folded into the student
    solver_steps: int = 50  # the teacher's DDIM grid; each sample takes one step of it (LCM's skipping step)
    huber_c: float = 0.001  # pseudo-Huber loss constant (LCM); 0: plain squared error
    target_decay: float = 0.95  # EMA decay of the target network
    # 0: plain latent consistency distillation (an LCM student, 4 steps); K > 0: phased consistency distillation
    # (PCM): the timesteps split into K phases, each distilled to its own lower edge, so the student samples K
    # DDIM steps that stay on the teacher's trajectory. (num_train_timesteps / K) must be a multiple of the grid's
    # spacing (num_train_timesteps / solver_steps), so that every phase edge is a grid step.
    phases: int = 0
    # Extra loss weight on the moving region (DanceLCM): each latent's weight is 1 + motion_weight x its share of
    # the clip's frame-to-frame change (losses.moving_region_weight); 0: every latent weighs the same.
    motion_weight: float = 0.0
    # A temporal-consistency term: the same distance between the student's and the target's frame-to-frame
    # differences, times temporal_weight, added to the loss; 0: none.
    temporal_weight: float = 0.0
    # Supervision from the training video: the same distance between the frame-to-frame differences of the
    # student's clean estimate x0(x_t, t) and of the clip's own latents, times real_temporal_weight; 0: none.
    real_temporal_weight: float = 0.0


@dataclass
class TrainConfig:
    stage: Literal[1, 2, "distill"] = 1
    output_dir: str = "runs/stage1"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    max_steps: int = 30000  # optimizer steps
    batch_size: int = 4  # per device, per micro-batch
    gradient_accumulation: int = 1
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    gradient_checkpointing: bool = False
    ema_decay: float | None = None  # e.g. 0.9999; None: no EMA
    seed: int = 42
    checkpoint_every: int = 1000  # steps; also written at the end and on SIGINT/SIGTERM
    checkpoints_kept: int = 2
    validate_every: int | None = None  # steps; writes a sample video to output_dir/validation/ (0 or None: off)
    validation_steps: int = 20  # denoising steps of the validation sample
    log_every: int = 10  # steps; the mean loss since the last line goes to output_dir/train_log.jsonl (and the tracker)
    log_with: Literal["tensorboard", "none"] = "tensorboard"
    # Under several processes: seconds a process waits in a collective for the others (the main process's
    # validation video and checkpoint write included) before the run ends with one line naming a dead or hung one.
    collective_timeout: float = DEFAULT_TIMEOUT_S

    def check(self, section: str = "") -> None:
        """``ConfigError`` naming the first value that cannot work ("optim.lr -1.0: must be > 0"), before any file
        is read or any model loads; ``section`` (e.g. "distill."): only the keys that start with it. The checks that
        need the files (model directory, dataset, the distillation's grid against the model's scheduler) are
        ``training.preflight``'s."""
        for key, value, ok, rule in _rules(self):
            if key.startswith(section) and not ok:
                shown = list(value) if isinstance(value, tuple) else value
                raise ConfigError(f"{key} {shown}: {rule}")


def _real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _rules(c: TrainConfig) -> list[tuple[str, Any, bool, str]]:
    """(key, value, the rule holds, the rule in words) for every checked field."""
    d, n, o, s = c.data, c.noise, c.optim, c.distill
    positive = "must be a number > 0"
    return [
        ("output_dir", c.output_dir, bool(c.output_dir), "must name a folder for checkpoints and the export"),
        ("model.pretrained", c.model.pretrained, bool(c.model.pretrained), "must name a model directory to start from"),
        ("data.root", d.root, bool(d.root), "must name a dataset directory (animate-anyone data prepare)"),
        (
            "data.resolution",
            d.resolution,
            all(v >= 8 and v % 8 == 0 for v in d.resolution),
            "must be [width, height], multiples of 8",
        ),
        ("data.frames", d.frames, d.frames >= 1, "must be at least 1"),
        ("data.stride", d.stride, d.stride >= 1, "must be at least 1"),
        ("data.num_workers", d.num_workers, d.num_workers >= 0, "must be 0 or more"),
        ("noise.noise_offset", n.noise_offset, _real(n.noise_offset) and n.noise_offset >= 0, "must be >= 0 (0: off)"),
        (
            "noise.min_snr_gamma",
            n.min_snr_gamma,
            n.min_snr_gamma is None or _real(n.min_snr_gamma) and n.min_snr_gamma > 0,
            "must be > 0, or null for plain MSE",
        ),
        (
            "noise.reference_dropout",
            n.reference_dropout,
            _real(n.reference_dropout) and 0 <= n.reference_dropout < 1,
            "must be in [0, 1)",
        ),
        ("optim.lr", o.lr, _real(o.lr) and o.lr > 0, positive),
        ("optim.weight_decay", o.weight_decay, _real(o.weight_decay) and o.weight_decay >= 0, "must be >= 0"),
        ("optim.betas", o.betas, all(_real(b) and 0 <= b < 1 for b in o.betas), "must be two numbers in [0, 1)"),
        ("optim.eps", o.eps, _real(o.eps) and o.eps > 0, positive),
        (
            "optim.max_grad_norm",
            o.max_grad_norm,
            _real(o.max_grad_norm) and o.max_grad_norm >= 0,
            "must be >= 0 (0: off)",
        ),
        ("optim.warmup_steps", o.warmup_steps, o.warmup_steps >= 0, "must be 0 or more"),
        ("distill.guidance", s.guidance, _real(s.guidance) and s.guidance >= 1, "must be >= 1 (1: no guidance)"),
        ("distill.solver_steps", s.solver_steps, s.solver_steps >= 1, "must be at least 1 (e.g. 50)"),
        ("distill.huber_c", s.huber_c, _real(s.huber_c) and s.huber_c >= 0, "must be >= 0 (0: squared error)"),
        (
            "distill.target_decay",
            s.target_decay,
            _real(s.target_decay) and 0 <= s.target_decay <= 1,
            "must be in [0, 1]",
        ),
        ("distill.phases", s.phases, s.phases >= 0, "must be 0 (plain consistency distillation) or more"),
        ("distill.motion_weight", s.motion_weight, _real(s.motion_weight) and s.motion_weight >= 0, "must be >= 0"),
        (
            "distill.temporal_weight",
            s.temporal_weight,
            _real(s.temporal_weight) and s.temporal_weight >= 0,
            "must be >= 0",
        ),
        (
            "distill.real_temporal_weight",
            s.real_temporal_weight,
            _real(s.real_temporal_weight) and s.real_temporal_weight >= 0,
            "must be >= 0",
        ),
        (
            "max_steps",
            c.max_steps,
            c.max_steps >= 1,
            "must be at least 1 (a run of 0 steps would export untrained weights as a trained model)",
        ),
        ("batch_size", c.batch_size, c.batch_size >= 1, "must be at least 1"),
        ("gradient_accumulation", c.gradient_accumulation, c.gradient_accumulation >= 1, "must be at least 1"),
        (
            "ema_decay",
            c.ema_decay,
            c.ema_decay is None or _real(c.ema_decay) and 0 < c.ema_decay < 1,
            "must be in (0, 1), e.g. 0.9999, or null for no EMA",
        ),
        ("seed", c.seed, 0 <= c.seed < 2**63, "must be between 0 and 2**63 - 1"),
        ("checkpoint_every", c.checkpoint_every, c.checkpoint_every >= 1, "must be at least 1 (steps)"),
        ("checkpoints_kept", c.checkpoints_kept, c.checkpoints_kept >= 1, "must be at least 1"),
        (
            "validate_every",
            c.validate_every,
            c.validate_every is None or c.validate_every >= 0,
            "must be a number of steps, or 0 / null for no validation",
        ),
        ("validation_steps", c.validation_steps, c.validation_steps >= 1, "must be at least 1"),
        ("log_every", c.log_every, c.log_every >= 1, "must be at least 1 (steps)"),
        (
            "collective_timeout",
            c.collective_timeout,
            _real(c.collective_timeout) and c.collective_timeout > 0,
            "must be a number of seconds > 0",
        ),
    ]
