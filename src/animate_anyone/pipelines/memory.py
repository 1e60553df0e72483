"""What one video keeps per frame while it is animated, on the device and on the host: the part of the memory that
grows with the video's length (the networks, their activations for one window and the decoder's chunk do not).

Counted from the model's configs (nothing loads), for the pre-run memory check of ``animate`` and the table in
docs/performance.md. Per frame of the video:

* device: the video's latents and what the denoising loop holds beside them (its input to the UNet, the prediction,
  the float32 sum of the windows' predictions and the scheduler's temporaries and history): counted as 6 float32
  and 6 model-dtype copies of one frame's latents, an upper bound of what the loop allocates with the allocator's
  slack (the mini model on the CPU grows by about 10 float32 copies per frame; tests/integration/test_memory.py
  holds the measured growth of every preset to this count; in bfloat16 DPM-Solver++ computes its step in
  float32, hence half of them float32);
* host: the pose frames (uint8 at the output size, one window at a time goes to the device) and, with feature
  caching, the kept deep features (``pipelines.feature_cache``: the model dtype, before the boundary block's
  upsampler, for the row kinds kept and every frame of the refresh step's windows, overlaps counted twice).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..model_dir import vae_scale_factor
from .feature_cache import boundary_block
from .settings import SamplingSettings

FLOAT32_COPIES, DTYPE_COPIES = 6, 6  # see the module doc


@dataclass(frozen=True)
class PerFrame:
    """Bytes per frame of the video, by where they live and what they are."""

    latents: int  # device: the denoising loop's state
    pose: int  # host: the pose frames
    cache: int  # host: the kept deep features (0 without caching)

    @property
    def device(self) -> int:
        return self.latents

    @property
    def host(self) -> int:
        return self.pose + self.cache


def per_frame_bytes(
    unet_config: Mapping[str, Any],
    vae_config: Mapping[str, Any],
    settings: SamplingSettings,
    width: int,
    height: int,
    dtype_bytes: int,
    window_frames: float = 1.0,
) -> PerFrame:
    """``window_frames``: frames held in windows per frame of the video (1 for one window; about
    ``context_frames / (context_frames - context_overlap)`` for long videos; ``window_frames_per_frame``). A
    ``cache_depth`` the UNet cannot take raises ValueError here, before any weights load."""
    factor = vae_scale_factor(vae_config)
    h, w = height // factor, width // factor
    latents = unet_config["in_channels"] * h * w * (FLOAT32_COPIES * 4 + DTYPE_COPIES * dtype_bytes)
    cache = 0
    plan = settings.plan
    kinds = max((len(step.keep) for step in plan if step.refresh), default=0)
    if kinds:
        _, channels, scale = boundary_block(unet_config["block_out_channels"], settings.cache_depth)
        values = channels * (h // scale) * (w // scale)  # before the boundary block's upsampler
        cache = round(kinds * values * dtype_bytes * window_frames)
    return PerFrame(latents=latents, pose=3 * width * height, cache=cache)


def window_frames_per_frame(schedules: list[list[tuple[list[int], list[float]]]], num_frames: int) -> float:
    """The most frames any step's windows hold, per frame of the video (``sampling.step_schedules``)."""
    return max(sum(len(frames) for frames, _ in schedule) for schedule in schedules) / num_frames
