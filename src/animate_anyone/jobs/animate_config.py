"""The inference recipe of ``animate`` as typed dataclasses (YAML instances in ``configs/animate/``).

    config = load_config(AnimateConfig, "configs/animate/default.yaml", ["steps=30", "optimisations.window_batch=2"])

The ``animate`` flags (``--steps``, ``--guidance``, ...) are shortcuts for these keys; precedence is the defaults,
then the YAML file, then the flags, then ``key=value`` overrides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from ..config import inline
from ..distributed import DEFAULT_TIMEOUT_S
from ..pipelines.optimisations import Optimisations
from ..pipelines.settings import SamplingRequest, SettingError


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
    """One animation job: the sampling request, held whole (``sampling``: a ``SamplingRequest``, declared and
    checked in its own type; its keys, preset, steps, guidance, scheduler, guidance_interval, cache_interval,
    cache_depth, context_frames, context_overlap and window_mode, are written at this level: ``steps: 30``), then
    the job's own fields."""

    model: str = ""  # model directory (convert, init-model, a training export), or a Hugging Face Hub id org/name
    sampling: SamplingRequest = inline(SamplingRequest)
    revision: str | None = None  # with a Hub id as model: its branch, tag or commit (None: its main branch)
    seed: int = 0
    frames: int | None = None  # None: every pose frame
    size: str | None = None  # WIDTHxHEIGHT; None: the reference's aspect ratio, shorter side = the model's resolution
    device: str = "auto"  # devices.resolve_device
    dtype: str = "auto"  # devices.resolve_dtype
    fps: float | None = None  # None: the pose video's
    decoder: Literal["vae", "light"] = "vae"  # light: the model's light decoder (faster decode, not exact)
    # Under torchrun (the processes share the video): seconds a process waits in a collective for the others before
    # the command ends with one line (a process that died or hangs).
    collective_timeout: float = DEFAULT_TIMEOUT_S
    pose: PoseOptions = field(default_factory=PoseOptions)
    optimisations: Optimisations = field(default_factory=Optimisations)

    def check(self) -> None:
        """``SettingError`` naming the field, the value and the rule, for a job value that cannot work: called
        before any file is read or any model loads (the sampling fields are checked when resolved)."""
        if self.frames is not None and self.frames < 1:
            raise SettingError("frames", self.frames, "must be at least 1 (leave it unset for every pose frame)")
        if not 0 <= self.seed < 2**63:
            raise SettingError("seed", self.seed, "must be between 0 and 2**63 - 1")
        if not (math.isfinite(self.collective_timeout) and self.collective_timeout > 0):
            raise SettingError("collective_timeout", self.collective_timeout, "must be a positive number of seconds")
        if self.fps is not None and not (math.isfinite(self.fps) and self.fps > 0):
            raise SettingError(
                "fps", self.fps, "must be a positive number of frames per second (leave it out for the pose video's)"
            )
