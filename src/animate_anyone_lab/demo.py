"""The offline demo: the packaged miniature model animates a held-out synthetic character with a held-out motion.

Nothing is downloaded: the model directory ships inside the package (``animate_anyone/assets/mini``, trained on
the synthetic benchmark, docs/benchmark.md) and the character, its motion and the ground truth are rendered on
the spot by the generator. The output is a side-by-side video: reference | pose | result | ground truth.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from animate_anyone.assets import packaged_model
from animate_anyone.pipelines.settings import SamplingRequest

PathLike = str | os.PathLike[str]
DEMO_SEED = 0  # the benchmark's dataset seed: held-out pools of that seed were never trained on


@dataclass
class DemoResult:
    path: Path
    psnr: float  # dB, result vs ground truth, every frame (the metric of animate_anyone.evaluation.metrics.psnr)
    copy_psnr: float  # dB, the reference image repeated vs ground truth: the baseline with no motion at all
    frames: int
    seconds: float  # model loading + sampling + decoding (not the rendering of the ground truth)
    result: np.ndarray  # (F, H, W, 3) uint8, the animation alone
    truth: np.ndarray  # (F, H, W, 3) uint8, the ground truth


def demo_clip(index: int = 0, frames: int = 24, size: int = 64, fps: float = 12.0, seed: int = DEMO_SEED):
    """(reference (H, W, 3), ground-truth frames (F, H, W, 3), pose images (F, H, W, 3)) of held-out character
    ``index`` doing held-out motion ``index`` on a stage drawn for the demo; all uint8."""
    from .render import Stage, background, pose_images, reference_image, render_clip
    from .splits import character, motion

    who = character(seed, "heldout", index)
    what = motion(seed, "heldout", index, frames / fps)
    stage = Stage.random(np.random.default_rng([seed, 77, index]), (size, size), who)
    backdrop = background(stage)
    truth, keypoints, _ = render_clip(who, what, stage, frames, fps, backdrop=backdrop)
    return reference_image(who, stage, backdrop), truth, pose_images(keypoints)


def run_demo(
    out: PathLike,
    *,
    model: PathLike | None = None,
    index: int = 0,
    frames: int = 24,
    sampling: SamplingRequest | None = None,
    seed: int = 0,
    scale: int = 4,
    device: str = "auto",
    dtype: str = "auto",
    progress: bool = True,
    overwrite: bool = False,
) -> DemoResult:
    """Animate the demo clip and write ``reference | pose | result | ground truth`` (each panel upscaled
    ``scale`` times, nearest neighbour) to ``out`` (.mp4, .gif or a folder), atomically; an existing ``out`` is
    replaced only with ``overwrite``. ``sampling``: as the benchmark samples (``benchmark.benchmark_request``: without
    a preset, 20 steps at guidance 2 with the request's fields over them)."""
    from PIL import Image

    from animate_anyone.evaluation.metrics import psnr
    from animate_anyone.media import check_video_output, write_video
    from animate_anyone.model_dir import ModelDirectory, default_short_side
    from animate_anyone.pipelines.loading import load_pipeline
    from animate_anyone.pipelines.settings import ModelDefaults, SettingError

    from .settings import benchmark_request

    for name, value, high in (("frames", frames, 240), ("scale", scale, 16)):
        if not 1 <= value <= high:
            raise SettingError(name, value, f"must be between 1 and {high}")
    if index < 0:
        raise SettingError("index", index, "must be 0 or more")
    check_video_output(out, "out", overwrite)
    directory = ModelDirectory(model or packaged_model()).check()
    defaults = ModelDefaults.of_directory(directory)
    settings = benchmark_request(sampling, defaults.distilled).resolve(defaults)  # checked before the model loads
    start = time.perf_counter()
    pipe = load_pipeline(directory.path, device, dtype, progress=progress)
    size = default_short_side(pipe.denoising_unet.config, pipe.vae.config)  # the model's own resolution, square
    reference, truth, poses = demo_clip(index, frames, size)
    result = pipe(
        Image.fromarray(reference),
        poses,
        settings,
        height=size,
        width=size,
        generator=torch.Generator().manual_seed(seed),
        output_type="np",
    ).frames
    seconds = time.perf_counter() - start
    still = np.broadcast_to(reference, truth.shape)  # the reference as every frame: the copy baseline
    panels = [still, poses, result, truth]  # each (F, H, W, 3)
    video = np.concatenate(panels, axis=2).repeat(scale, axis=1).repeat(scale, axis=2)  # (F, s*H, 4*s*W, 3)
    path = write_video(out, list(video), 12.0)
    return DemoResult(Path(path), psnr(result, truth), psnr(still, truth), frames, seconds, result, truth)
