"""The inference recipe of ``animate`` as typed dataclasses (YAML instances in ``configs/animate/``).

    config = load_config(AnimateConfig, "configs/animate/default.yaml", ["steps=30", "optimisations.window_batch=2"])

The ``animate`` flags (``--steps``, ``--guidance``, ...) are shortcuts for these keys; precedence is the defaults,
then the YAML file, then the flags, then ``key=value`` overrides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..pipelines.optimisations import Optimisations


@dataclass
class PoseOptions:
    """How keypoint files and raw driving videos become pose frames."""

    align: bool = True  # retarget the driver's skeleton to the reference's body proportions
    backend: Literal["mediapipe", "dwpose"] = "mediapipe"  # extractor for the reference (and a raw driving video)
    det_model: str | None = None  # DWPose ONNX files (default: $ANIMATE_ANYONE_DWPOSE_DET / _POSE)
    pose_model: str | None = None
    person: str | None = None  # whom to follow in a driving video: largest (None), center, N, or x0,y0,x1,y1
    fit: Literal["pad", "crop", "stretch"] = "pad"  # skeleton frames of another aspect ratio than the output


@dataclass
class AnimateConfig:
    model: str = ""  # model directory (convert moore, init-model, a training export)
    seed: int = 0
    # Sampling (pipelines.presets): a preset, then its fields overridden one by one (None: the preset's value).
    preset: str | None = None  # a name of pipelines.presets.PRESETS; None: the model directory's default_preset
    steps: int | None = None  # denoising steps (quality: 25)
    guidance: float | None = None  # classifier-free guidance scale (<= 1: off; quality: 3.5)
    scheduler: str | None = None  # a name of pipelines.presets.SCHEDULERS ("model": the directory's own)
    guidance_interval: tuple[float, float] | None = None  # (start, end) fractions of the steps that are guided
    cache_interval: int | None = None  # deep UNet features recomputed every N steps (1: no caching)
    cache_depth: int | None = None  # outer UNet levels recomputed at every step when caching
    frames: int | None = None  # None: every pose frame
    size: str | None = None  # WIDTHxHEIGHT; None: the reference's aspect ratio, shorter side = the model's resolution
    device: str = "auto"  # runtime.resolve_device
    dtype: str = "auto"  # runtime.resolve_dtype
    context_frames: int = 24  # temporal window length (at most the temporal layers' 32 positions)
    context_overlap: int = 4
    window_mode: Literal["shifted", "moore", "anchored"] = "shifted"  # pipelines.context.WINDOW_MODES
    fps: float | None = None  # None: the pose video's
    pose: PoseOptions = field(default_factory=PoseOptions)
    optimisations: Optimisations = field(default_factory=Optimisations)


# The flags of ``animate`` for the keys that have one (the others are set as key=value).
FLAGS = {
    "seed": "--seed",
    "steps": "--steps",
    "guidance": "--guidance",
    "frames": "--frames",
    "fps": "--fps",
    "context_frames": "--context-frames",
    "context_overlap": "--context-overlap",
}


def _name(key: str) -> str:
    return FLAGS.get(key, f"{key}=")


def check(config: AnimateConfig) -> None:
    """ValueError naming the flag (or key), the value and the valid range, for any value that cannot work: called
    before any file is read or any model loads."""
    import math

    def bad(key: str, rule: str) -> ValueError:
        return ValueError(f"{_name(key)} {getattr(config, key)}: {rule}")

    for key in ("steps", "frames", "context_frames", "cache_interval"):
        value = getattr(config, key)
        if value is not None and value < 1:
            raise bad(
                key, "must be at least 1" + (" (leave --frames out for every pose frame)" if key == "frames" else "")
            )
    if not 0 <= config.seed < 2**63:
        raise bad("seed", "must be between 0 and 2**63 - 1")
    if config.guidance is not None and not (math.isfinite(config.guidance) and config.guidance >= 0):
        raise bad("guidance", "must be a finite number >= 0 (<= 1 turns classifier-free guidance off)")
    if config.fps is not None and not (math.isfinite(config.fps) and config.fps > 0):
        raise bad("fps", "must be a positive number of frames per second (leave it out for the pose video's)")
    if not 0 <= config.context_overlap < config.context_frames:
        raise bad("context_overlap", f"must be at least 0 and less than --context-frames ({config.context_frames})")
    if config.cache_depth is not None and config.cache_depth < 0:
        raise bad("cache_depth", "must be at least 0")
    if config.guidance_interval is not None:
        start, end = config.guidance_interval
        if not 0 <= start <= end <= 1:
            raise bad("guidance_interval", "must be [start, end] with 0 <= start <= end <= 1")
