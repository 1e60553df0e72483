"""Files in, video out: the job behind ``animate-anyone animate``.

Inputs are checked before the model loads (a bad pose video fails in a second, not after a minute of
loading), frames are decoded in chunks and streamed to the writer, and the output appears only when it is
complete (the writer renames a temporary file on success).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL.Image
import torch
from tqdm.auto import tqdm

from .. import distributed
from ..capacity import check_memory
from ..devices import resolve_device, resolve_dtype
from ..distributed import Launch
from ..hub import resolve_model
from ..model_dir import ModelDirectory
from ..models.light_decoder import HOW_TO_GET_ONE
from ..pipelines.settings import SamplingSettings
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


def process_device(config: AnimateConfig, launch: Launch | None = None) -> torch.device:
    """This process's device for ``config.device``, resolved once: under a launcher (``launch``, from the front end
    that was launched), CUDA is this process's own GPU (``cuda:LOCAL_RANK``). Joins no process group."""
    return distributed.local_device(resolve_device(config.device), launch or Launch())


@dataclass
class CheckedJob:
    """What ``check_job`` found: the model directory, the sampling settings resolved for it, the reference image,
    the output size and the frame count."""

    directory: ModelDirectory
    settings: SamplingSettings
    image: PIL.Image.Image
    width: int
    height: int
    frames: int


def check_job(config: AnimateConfig, reference, pose, driver, names: Mapping[str, str] | None = None) -> CheckedJob:
    """Everything about one animation that can be checked before the model loads or any frame is decoded: the motion
    given once, the config's values, the model directory, the sampling settings (resolved once, for this model),
    the reference image, the output size, and the frame count against the motion's (read from its header). Raises a
    one-line ``ValueError`` / ``OSError`` naming the value; ``animate`` and ``batch`` (for every job line, before the
    first job) call it."""
    from ..media import load_image
    from ..pipelines.pipeline_animate_anyone import default_size
    from ..pipelines.settings import ModelDefaults

    name = (names or {}).get
    if (pose is None) == (driver is None):
        raise ValueError(
            f"give exactly one of {name('pose', 'pose')} (skeleton frames or a keypoint file) and "
            f"{name('driver', 'driver')} (a video of a person)"
        )
    if not config.model:
        raise ValueError(f"no model: name a model directory or a Hub id ({name('model', 'model')})")
    config.check()
    image = load_image(reference)
    directory = ModelDirectory(resolve_model(config.model, config.revision)).check()  # a Hub id: its snapshot
    if config.decoder == "light" and not (directory.path / "light_decoder").is_dir():
        raise ValueError(
            f"decoder=light: this model has no light_decoder; {HOW_TO_GET_ONE} (its DIR: {directory.path}), or use "
            "decoder=vae"
        )
    # The sampling settings, resolved and checked once, before the model loads; they go whole to the pipeline.
    settings = config.sampling.resolve(ModelDefaults.of_directory(directory))
    width, height = parse_size(config.size) or default_size(image, directory.default_short_side())
    available = _frame_count(pose, driver)
    if config.frames is not None and config.frames > available:  # before any count that grows with the frames
        raise frames_range(config.frames, driver if driver is not None else pose, available)
    return CheckedJob(directory, settings, image, width, height, config.frames or available)


def estimate_memory(
    config: AnimateConfig, reference=None, pose=None, driver=None, names: Mapping[str, str] | None = None
) -> dict:
    """``animate --estimate-memory``: the peak device memory of the call ``animate`` would make with ``config``
    (``pipelines.peak_memory``), counted from the model's configs on the meta device; nothing loads or runs. The size
    is ``config.size`` or the reference's default, the frame count ``config.frames`` or the motion's; the dtype is
    ``config.dtype`` on ``config.device`` (give ``dtype`` to count a GPU run on another machine)."""
    from ..media import load_image
    from ..pipelines.peak_memory import estimate_call_memory
    from ..pipelines.pipeline_animate_anyone import default_size
    from ..pipelines.settings import ModelDefaults

    name = (names or {}).get
    if not config.model:
        raise ValueError(f"no model: name a model directory or a Hub id ({name('model', 'model')})")
    config.check()
    directory = ModelDirectory(resolve_model(config.model, config.revision)).check()
    settings = config.sampling.resolve(ModelDefaults.of_directory(directory))
    size = parse_size(config.size)
    if size is None and reference is None:
        raise ValueError(f"the estimate needs the output size: give {name('size', 'size')} (or the reference image)")
    width, height = size or default_size(load_image(reference), directory.default_short_side())
    frames = config.frames
    if frames is None and pose is None and driver is None:
        raise ValueError(f"the estimate needs the frame count: give {name('frames', 'frames')} (or the motion)")
    frames = frames or _frame_count(pose, driver)
    dtype = resolve_dtype(config.dtype, resolve_device(config.device))
    return estimate_call_memory(
        directory.path,
        width=width,
        height=height,
        num_frames=frames,
        sampling=settings,
        dtype=dtype,
        optimisations=config.optimisations,
        decoder=config.decoder,
    )


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
    callback_on_step_end=None,
    overwrite: bool = False,
    device_lock=None,
    launch: Launch | None = None,
    names: Mapping[str, str] | None = None,
) -> Path:
    """Animate the character in ``reference`` with the model and settings of ``config`` and write ``out``
    (.mp4, .gif or a folder of PNGs).

    The motion is ``pose``: rendered skeletons (a video, a folder of images, one image) used as they are,
    or a keypoint file (.npz/.json) that is aligned to the reference and rendered; or ``driver``: an
    ordinary video of a person, whose pose is extracted, aligned and rendered. Returns ``out``.

    ``keypoints_out``: also save the driving keypoints (aligned; .npz or .json) when the motion came as keypoints
    or a driving video. ``pipe``: an already loaded pipeline to use instead of loading ``config.model`` (the
    app keeps one); ``hooks``: ``PipelineHooks`` that see the call's stages; ``callback_on_step_end``: the
    pipeline's (diffusers') step callback (progress, cancellation). An existing ``out`` or ``side_by_side`` is
    replaced only with ``overwrite``. ``device_lock``: held while the pipeline runs and the
    frames are written (callers that share ``pipe`` between threads; the checks and pose extraction run outside).
    ``launch``: what the launcher told this process (``distributed.Launch.from_env``, passed by the ``animate`` command
    only): under torchrun its processes join one group and share each step's windows, and the main one writes.
    Without it (or with ``pipe``) this process works alone, whatever process group exists. ``names``: the caller's
    names for the values its messages name (``out``, ``side_by_side``, ``overwrite``, ``pose``, ``driver``,
    ``model``: a command's flags; default these parameter names).
    """
    from ..media import VideoWriter, check_video_output
    from ..pipelines.loading import load_pipeline

    launch = launch or Launch()
    # 1. Check everything that can be checked before loading the model.
    job = check_job(config, reference, pose, driver, names)
    name = (names or {}).get
    switch = name("overwrite", "overwrite")
    check_video_output(out, name("out", "out"), overwrite, switch)
    if side_by_side is not None:
        check_video_output(side_by_side, name("side_by_side", "side_by_side"), overwrite, switch)
    directory, settings, image = job.directory, job.settings, job.image
    width, height, frames = job.width, job.height, job.frames
    warn_if_untrained(directory)
    if pipe is not None:
        ranks, device = distributed.Ranks(), pipe.device  # a caller's pipeline: this process alone
    else:  # under a launcher the processes join one group and share the video's windows
        with distributed.peers(launch, config.collective_timeout, "the other processes to join the group"):
            ranks, device = distributed.join(launch, resolve_device(config.device), config.collective_timeout)
    config.optimisations.check_device(device)
    # A device shared with other threads' jobs (device_lock) is measured when none of them holds it.
    with device_lock if device_lock is not None and device.type != "cpu" else nullcontext():
        _check_memory(directory, config, settings, width, height, frames, device, launch.local_world, names)
    # 2. Pose frames at the output size (uint8: 3 bytes a pixel, the only per-frame input kept in memory).
    pose_frames, pose_fps, keypoints = _pose_frames(
        pose, driver, image, (width, height), config.frames, config.pose, progress
    )
    if keypoints_out is not None and keypoints is not None:
        keypoints.save(keypoints_out)
    reference_frame = np.asarray(image.resize((width, height)))
    # 3. Load the pipeline.
    main = ranks.main  # under a launcher every rank samples; the main one alone writes
    if pipe is None:
        options = config.optimisations
        pipe = load_pipeline(directory.path, device, config.dtype, progress=progress and main, optimisations=options)
    # 4. Generate, streaming decoded frames to the writer(s).
    fps = config.fps or pose_fps
    generator = torch.Generator("cpu").manual_seed(config.seed)
    writing = VideoWriter(out, fps) if main else nullcontext()
    panel_writing = VideoWriter(side_by_side, fps) if side_by_side and main else nullcontext()
    waiting = "the other processes' windows of this video"
    peers = distributed.peers(launch, config.collective_timeout, waiting)
    with peers, device_lock or nullcontext(), writing as writer, panel_writing as panel:
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
            callback_on_step_end=callback_on_step_end,
            decoder=config.decoder,
            ranks=ranks,
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
        raise frames_range(frames, pose, info.num_frames)
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


def _check_memory(
    directory: ModelDirectory,
    config: AnimateConfig,
    settings,
    width,
    height,
    frames,
    device,
    local_world: int = 1,
    names: Mapping[str, str] | None = None,
) -> None:
    """Before anything loads: what the video keeps per frame (``pipelines.memory``: the denoising loop's latents on
    the device; the pose frames and any kept deep features on the host) for all its frames, plus one frame through
    the VAE decoder's last block (float32, input and output of a convolution at full resolution), must fit."""
    from ..pipelines.memory import per_frame_bytes, window_frames_per_frame
    from ..pipelines.sampling import step_schedules

    dtype_bytes = resolve_dtype(config.dtype, device).itemsize
    one_per_grid = list({step.grid: step for step in settings.plan}.values())  # steps on one grid: the same windows
    schedules = step_schedules(one_per_grid, settings, frames)
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
    # Under torchrun the ``local_world`` processes of a machine each hold the pose frames, and each its own windows'
    # features.
    host = (each.pose * local_world + each.cache) * frames
    size, frames_name = (names or {}).get("size", "size"), (names or {}).get("frames", "frames")  # the caller's words
    what = f"{size} {width}x{height} with {frames} frames"
    fix = f"use a smaller {size} (e.g. 512x768) or fewer {frames_name} (animate a long video in parts)"
    if device.type == "cpu":  # one memory
        check_memory(each.device * frames + host + decoder, what, fix, device)
    else:
        check_memory(each.device * frames + decoder, what, fix, device)
        check_memory(host, what + " (pose frames and kept features in host memory)", fix, None)
