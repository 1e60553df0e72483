"""The training recipe as typed dataclasses (YAML instances in ``configs/train/``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


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
    validate_every: int | None = None  # steps; writes a sample video to output_dir/validation/
    validation_steps: int = 20  # denoising steps of the validation sample
    log_every: int = 10  # steps; the mean loss since the last line goes to output_dir/train_log.jsonl (and the tracker)
    log_with: Literal["tensorboard", "none"] = "tensorboard"
