"""Files in, video out: the job behind ``animate-anyone animate``.

Inputs are checked before the model loads (a bad pose video fails in a second, not after a minute of
loading), frames are decoded in chunks and streamed to the writer, and the output appears only when it is
complete (the writer renames a temporary file on success).
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import distributed
from ..capacity import check_memory
from ..devices import resolve_device, resolve_dtype
from ..model_dir import ModelDirectory
from ..shapes import frames_range, parse_size
from .animate_config import AnimateConfig, PoseOptions

_WARNED: set[str] = set()


def warn_if_untrained(directory: ModelDirectory) -> None:
    """One line on stderr, once per directory and process, when its networks were never trained."""
    import sys

    key = str(directory.path.resolve())
    if directory.random_weights and key not in _WARNED:
        _WARNED.add(key)
        print(
            f"warning: {directory.path} holds random weights (made by init-model, never trained): the video will be "
            "noise; train it (animate-anyone train) or convert trained weights (animate-anyone convert moore)",
            file=sys.stderr,
        )


def process_device(config: AnimateConfig, share_videos: bool = True) -> torch.device:
    """This process's device for ``config.device``, resolved once. Under torchrun, ``share_videos`` joins the
    processes so that each video's windows are split between them (``animate``); without it every process works
    alone on its own device (``batch``)."""
    device = resolve_device(config.device)
    if share_videos:
        return distributed.init_from_env(device)[1]
    return distributed.local_device(device)


def animate(
    config: AnimateConfig,
    reference: str | Path,
    pose: str | Path | None,
    out: str | Path,
    *,
    driver: str | Path | None = None,
    side_by_side: str | Path | None = None,
    keypoints_out: str | Path | None = None,
    progress: bool = True,
    pipe=None,
    hooks=None,
    overwrite: bool = False,
    device_lock=None,
) -> Path:
    """Animate the character in ``reference`` with the model and settings of ``config`` and write ``out``
    (.mp4, .gif or a folder of PNGs).

    The motion is ``pose``: rendered skeletons (a video, a folder of images, one image) used as they are,
    or a keypoint file (.npz/.json) that is aligned to the reference and rendered; or ``driver``: an
    ordinary video of a person, whose pose is extracted, aligned and rendered. Returns ``out``.

    ``keypoints_out``: also save the driving keypoints (aligned; .npz or .json) when the motion came as keypoints
    or a driving video. ``pipe``: an already loaded pipeline to use instead of loading ``config.model`` (the
    app keeps one); ``hooks``: ``PipelineHooks`` that see the call (progress, cancellation). An existing ``out``
    or ``side_by_side`` is replaced only with ``overwrite``. ``device_lock``: held while the pipeline runs and the
    frames are written (callers that share ``pipe`` between threads; the checks and pose extraction run outside).
    """
    from ..media import VideoWriter, check_video_output, load_image
    from ..pipelines.loading import load_pipeline
    from ..pipelines.pipeline_animate_anyone import default_size
    from ..pipelines.settings import ModelDefaults

    # 1. Check everything that can be checked before loading the model.
    if (pose is None) == (driver is None):
        raise ValueError(
            "give exactly one of --pose (skeleton frames or a keypoint file) and --driver (a video of a person)"
        )
    if not config.model:
        raise ValueError("no model: pass --model DIR (or model: DIR in the --config file)")
    config.check()
    check_video_output(out, "--out", overwrite)
    if side_by_side is not None:
        check_video_output(side_by_side, "--side-by-side", overwrite)
    image = load_image(reference)
    directory = ModelDirectory(config.model).check()
    warn_if_untrained(directory)
    # The sampling settings, resolved and checked once, before the model loads; they go whole to the pipeline.
    settings = config.resolve(ModelDefaults.of_directory(directory))
    device = pipe.device if pipe is not None else process_device(config)  # an unusable device fails here
    width, height = parse_size(config.size) or default_size(image, directory.default_short_side())
    frames = config.frames or _frame_count(pose, driver)
    # A device shared with other threads' jobs (device_lock) is measured when none of them holds it.
    with device_lock if device_lock is not None and device.type != "cpu" else nullcontext():
        _check_memory(directory, config, settings, width, height, frames, device)
    # 2. Pose frames at the output size (uint8: 3 bytes a pixel, the only per-frame input kept in memory).
    pose_frames, pose_fps, keypoints = _pose_frames(
        pose, driver, image, (width, height), config.frames, config.pose, progress
    )
    if keypoints_out is not None and keypoints is not None:
        keypoints.save(keypoints_out)
    reference_frame = np.asarray(image.resize((width, height)))
    # 3. Load the pipeline.
    if pipe is None:
        main = distributed.current().main
        options = config.optimisations
        pipe = load_pipeline(config.model, device, config.dtype, progress=progress and main, optimisations=options)
    # 4. Generate, streaming decoded frames to the writer(s).
    fps = config.fps or pose_fps
    generator = torch.Generator("cpu").manual_seed(config.seed)
    main = distributed.current().main  # under torchrun every rank samples; the main one alone writes
    writing = VideoWriter(out, fps) if main else nullcontext()
    panel_writing = VideoWriter(side_by_side, fps) if side_by_side and main else nullcontext()
    with device_lock or nullcontext(), writing as writer, panel_writing as panel:
        bar = tqdm(total=len(pose_frames), desc="decoding", disable=not (progress and main))
        index = 0

        def sink(frame: np.ndarray) -> None:
            nonlocal index
            writer.write(frame)
            if panel is not None:
                panel.write(np.concatenate([reference_frame, pose_frames[index], frame], axis=1))  # (H, 3W, 3)
            index += 1
            bar.update()

        pipe(
            image,
            pose_frames,
            settings,
            height=height,
            width=width,
            generator=generator,
            frame_sink=sink,
            hooks=hooks,
            decoder=config.decoder,
        )
        bar.close()
    return Path(out)


def _pose_frames(pose, driver, image, size, frames, options: PoseOptions, progress: bool):
    """(F, H, W, 3) uint8 pose frames at ``size``, their fps, and the keypoints they were drawn from (None for
    rendered skeletons), from whichever pose source was given."""
    from ..media import iter_frames, probe_frames
    from ..pose.keypoints import is_pose_file

    if driver is not None or is_pose_file(pose):
        from ..pose.sequences import animation_sequence, render_sequence

        keypoints = animation_sequence(
            driver if driver is not None else pose,
            image,
            frames,
            align=options.align,
            backend=options.backend,
            det_model=options.det_model,
            pose_model=options.pose_model,
            person=options.person,
            progress=progress,
        )
        return render_sequence(keypoints, size), keypoints.fps, keypoints
    info = probe_frames(pose)
    count = info.num_frames if frames is None else frames
    if not 1 <= count <= info.num_frames:
        raise ValueError(frames_range(frames, pose, info.num_frames))
    out = np.empty((count, size[1], size[0], 3), dtype=np.uint8)  # (F, H, W, 3), filled without a second copy
    for i, frame in enumerate(iter_frames(pose, size=size, count=count, fit=options.fit)):
        out[i] = frame
    return out, info.fps, None


def _frame_count(pose, driver) -> int:
    """The frames the motion has, read from its header (a keypoint file: its arrays), before any decoding."""
    from ..media import probe_frames
    from ..pose.keypoints import is_pose_file, load_pose

    if driver is None and is_pose_file(pose):
        return load_pose(pose).num_frames
    return probe_frames(driver if driver is not None else pose).num_frames


def _check_memory(directory: ModelDirectory, config: AnimateConfig, settings, width, height, frames, device) -> None:
    """Before anything loads: what the video keeps per frame (``pipelines.memory``: the denoising loop's latents on
    the device; the pose frames and any kept deep features on the host) for all its frames, plus one frame through
    the VAE decoder's last block (float32, input and output of a convolution at full resolution), must fit."""
    from ..pipelines.memory import per_frame_bytes, window_frames_per_frame
    from ..pipelines.sampling import step_schedules

    dtype_bytes = resolve_dtype(config.dtype, device).itemsize
    schedules = step_schedules(settings.plan, settings, frames)
    each = per_frame_bytes(
        directory.config("denoising_unet"),
        directory.config("vae"),
        settings,
        width,
        height,
        dtype_bytes,
        window_frames_per_frame(schedules, frames),
    )
    decoder = 2 * 4 * directory.config("vae")["block_out_channels"][0] * width * height
    # Under torchrun the processes of a machine each hold the pose frames, and each its own windows' features.
    host = (each.pose * int(os.environ.get("LOCAL_WORLD_SIZE", 1)) + each.cache) * frames
    what = f"--size {width}x{height} with {frames} frames"
    fix = "use a smaller --size (e.g. 512x768) or fewer --frames (animate a long video in parts)"
    if device.type == "cpu":  # one memory
        check_memory(each.device * frames + host + decoder, what, fix, device)
    else:
        check_memory(each.device * frames + decoder, what, fix, device)
        check_memory(host, what + " (pose frames and kept features in host memory)", fix, None)
