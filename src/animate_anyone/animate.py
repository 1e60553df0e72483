"""Files in, video out: the job behind ``animate-anyone animate``.

Inputs are checked before the model loads (a bad pose video fails in a second, not after a minute of
loading), frames are decoded in chunks and streamed to the writer, and the output appears only when it is
complete (the writer renames a temporary file on success).
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

def resolve_device(device: str | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """``auto``: float16 on CUDA (as the public checkpoints were run), float32 elsewhere."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in (None, "auto"):
        return torch.float16 if device.type == "cuda" else torch.float32
    names = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16, "fp16": torch.float16, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}
    if dtype not in names:
        raise ValueError(f"unknown dtype {dtype!r}; use one of auto, {', '.join(names)}")
    return names[dtype]


def parse_size(size: str | None) -> tuple[int, int] | None:
    """``"512x768"`` -> (512, 768) = (width, height); both must be positive multiples of 8."""
    if size is None:
        return None
    try:
        width, height = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size must look like WIDTHxHEIGHT (e.g. 512x768), got {size!r}") from None
    for name, v in (("width", width), ("height", height)):
        if v <= 0 or v % 8:
            raise ValueError(f"--size {size}: {name} {v} is not a positive multiple of 8; try {max(8, round(v / 8) * 8)}")
    return width, height


def set_scheduler(pipe, name: str | None) -> None:
    """Swap in another diffusers scheduler with the model's noise schedule (betas, prediction type, SNR)."""
    if name is None or name == "ddim":
        return
    import diffusers

    choices = {"dpm++": "DPMSolverMultistepScheduler", "euler": "EulerDiscreteScheduler", "unipc": "UniPCMultistepScheduler"}
    if name not in choices:
        raise ValueError(f"unknown scheduler {name!r}; choose ddim, {', '.join(choices)}")
    pipe.scheduler = getattr(diffusers, choices[name]).from_config(pipe.scheduler.config)


@dataclass
class PoseOptions:
    """How keypoint files and raw driving videos become pose frames."""

    align: bool = True  # retarget the driver's skeleton to the reference's body proportions
    backend: str = "mediapipe"  # pose extractor for the reference (and a raw driving video): mediapipe or dwpose
    det_model: str | None = None  # DWPose ONNX files (default: $ANIMATE_ANYONE_DWPOSE_DET / _POSE)
    pose_model: str | None = None


def animate(
    model: str | Path,
    reference: str | Path,
    pose: str | Path | None,
    out: str | Path,
    *,
    driver: str | Path | None = None,
    seed: int = 0,
    steps: int = 25,
    guidance: float = 3.5,
    frames: int | None = None,
    size: str | None = None,
    device: str | None = None,
    dtype: str | None = None,
    side_by_side: str | Path | None = None,
    context_frames: int = 24,
    context_overlap: int = 4,
    window_mode: str = "shifted",
    scheduler: str | None = None,
    fps: float | None = None,
    pose_options: PoseOptions | None = None,
    progress: bool = True,
) -> Path:
    """Animate the character in ``reference`` and write ``out`` (.mp4, .gif or a folder of PNGs).

    The motion is ``pose``: rendered skeletons (a video, a folder of images, one image) used as they are,
    or a keypoint file (.npz/.json) that is aligned to the reference and rendered; or ``driver``: an
    ordinary video of a person, whose pose is extracted, aligned and rendered. Returns ``out``.
    """
    from .media import VideoWriter, load_image
    from .pipelines.pipeline_animate_anyone import AnimateAnyonePipeline, check_model_directory, default_size

    # 1. Check everything that can be checked before loading the model.
    if (pose is None) == (driver is None):
        raise ValueError("give exactly one of --pose (skeleton frames or a keypoint file) and --driver (a video of a person)")
    image = load_image(reference)
    check_model_directory(model)
    _check_window(model, context_frames)
    width, height = parse_size(size) or default_size(image, _config(model, "vae")["sample_size"])
    # 2. Pose frames at the output size (uint8: 3 bytes a pixel, the only per-frame input kept in memory).
    pose_frames, pose_fps = _pose_frames(pose, driver, image, (width, height), frames, pose_options or PoseOptions(), progress)
    reference_frame = np.asarray(image.resize((width, height)))
    # 3. Load the pipeline.
    dev = resolve_device(device)
    if not progress:
        import diffusers
        import transformers

        diffusers.utils.logging.disable_progress_bar()
        transformers.utils.logging.disable_progress_bar()
    pipe = AnimateAnyonePipeline.from_pretrained(model, dtype=resolve_dtype(dtype, dev)).to(dev)
    pipe.set_progress_bar_config(disable=not progress, desc="denoising (steps x windows)")
    set_scheduler(pipe, scheduler)
    # 4. Generate, streaming decoded frames to the writer(s).
    fps = fps or pose_fps
    generator = torch.Generator("cpu").manual_seed(seed)
    with VideoWriter(out, fps) as writer, (VideoWriter(side_by_side, fps) if side_by_side else nullcontext()) as panel:
        bar = tqdm(total=len(pose_frames), desc="decoding", disable=not progress)
        index = 0

        def sink(frame: np.ndarray) -> None:
            nonlocal index
            writer.write(frame)
            if panel is not None:
                panel.write(np.concatenate([reference_frame, pose_frames[index], frame], axis=1))  # (H, 3W, 3)
            index += 1
            bar.update()

        pipe(
            image, pose_frames, height=height, width=width, num_inference_steps=steps, guidance_scale=guidance,
            generator=generator, context_frames=context_frames, context_overlap=context_overlap,
            window_mode=window_mode, frame_sink=sink,
        )  # fmt: skip
        bar.close()
    return Path(out)


def _pose_frames(pose, driver, image, size, frames, options: PoseOptions, progress: bool) -> tuple[np.ndarray, float]:
    """(F, H, W, 3) uint8 pose frames at ``size`` and their fps, from whichever pose source was given."""
    from .media import iter_frames, probe_frames
    from .pose.keypoints import is_pose_file

    if driver is not None or is_pose_file(pose):
        from .pose.jobs import animation_poses

        return animation_poses(
            driver if driver is not None else pose, image, size, frames, align=options.align, backend=options.backend,
            det_model=options.det_model, pose_model=options.pose_model, progress=progress,
        )  # fmt: skip
    info = probe_frames(pose)
    count = info.num_frames if frames is None else frames
    if not 1 <= count <= info.num_frames:
        raise ValueError(f"--frames {frames}: the pose sequence {pose} has {info.num_frames} frames")
    return np.stack(list(iter_frames(pose, size=size, count=count))), info.fps  # (F, H, W, 3)


def _config(model: str | Path, component: str) -> dict:
    import json

    return json.loads((Path(model) / component / "config.json").read_text())


def _check_window(model: str | Path, context_frames: int) -> None:
    """The temporal layers' positional-encoding limit, read from the config before any weights load."""
    limit = _config(model, "denoising_unet")["motion_max_seq_length"]
    if context_frames > limit:
        raise ValueError(
            f"--context-frames {context_frames} exceeds the temporal layers' positional-encoding limit of {limit} "
            f"frames in {model}; use --context-frames {limit} or less"
        )
