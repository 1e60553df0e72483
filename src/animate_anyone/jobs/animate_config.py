"""The inference recipe of ``animate`` as typed dataclasses (YAML instances in ``configs/animate/``).

    config = load_config(AnimateConfig, "configs/animate/default.yaml", ["steps=30", "optimisations.window_batch=2"])

The ``animate`` flags (``--steps``, ``--guidance``, ...) are shortcuts for these keys; precedence is the defaults,
then the YAML file, then the flags, then ``key=value`` overrides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..pipelines.optimisations import Optimisations

SCHEDULERS = {  # name -> diffusers class; ddim is the model directory's own (Moore's inference_v2)
    "ddim": None,
    "dpm++": "DPMSolverMultistepScheduler",
    "euler": "EulerDiscreteScheduler",
    "unipc": "UniPCMultistepScheduler",
}


@dataclass
class PoseOptions:
    """How keypoint files and raw driving videos become pose frames."""

    align: bool = True  # retarget the driver's skeleton to the reference's body proportions
    backend: Literal["mediapipe", "dwpose"] = "mediapipe"  # extractor for the reference (and a raw driving video)
    det_model: str | None = None  # DWPose ONNX files (default: $ANIMATE_ANYONE_DWPOSE_DET / _POSE)
    pose_model: str | None = None


@dataclass
class AnimateConfig:
    model: str = ""  # model directory (convert moore, init-model, a training export)
    seed: int = 0
    steps: int = 25  # denoising steps
    guidance: float = 3.5  # classifier-free guidance scale (<= 1: off)
    frames: int | None = None  # None: every pose frame
    size: str | None = None  # WIDTHxHEIGHT; None: the reference's aspect ratio, shorter side = the VAE's sample_size
    device: str = "auto"  # runtime.resolve_device
    dtype: str = "auto"  # runtime.resolve_dtype
    scheduler: Literal["ddim", "dpm++", "euler", "unipc"] = "ddim"
    context_frames: int = 24  # temporal window length (at most the temporal layers' 32 positions)
    context_overlap: int = 4
    window_mode: Literal["shifted", "moore"] = "shifted"
    fps: float | None = None  # None: the pose video's
    pose: PoseOptions = field(default_factory=PoseOptions)
    optimisations: Optimisations = field(default_factory=Optimisations)
