"""What the app does, without any UI: one loaded pipeline, a pose preview, animation jobs, cancellation.

The Gradio page (``app/ui.py``) only turns widgets into calls of ``AnimateService``; the job itself is
``jobs.animate.animate``, the one behind the ``animate`` command, so the app has no pipeline code of its own.
Jobs may be called from several threads at once: they share the one pipeline and take the device one at a
time (their checks and pose extraction run meanwhile). Each job has its own folder in ``workdir``, removed when
the job fails or is cancelled, and by ``release`` once its files have been handed over.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..pipelines.pipeline_animate_anyone import PipelineHooks

MOTION_KINDS = {
    "pose video": "rendered skeletons (a video or image of OpenPose-style stick figures), used as they are",
    "video of a person": "an ordinary video: the pose is extracted and retargeted to the reference",
    "keypoint file": "keypoints (.npz / .json from `animate-anyone pose extract`), retargeted to the reference",
}


class JobCancelled(Exception):
    """Raised between denoising steps after ``AnimateService.cancel()``."""


@dataclass
class AppResult:
    video: Path
    side_by_side: Path | None
    keypoints: Path | None  # the driving keypoints (aligned), when the motion was a video of a person or keypoints
    frames: int
    steps: int  # denoising steps run (the preset's unless overridden)
    seconds: float


class _Cancellable(PipelineHooks):
    """Stops the job when it reaches the device (a ``PipelineHooks`` stage), or at the step after ``flag`` is set
    (the pipeline's ``callback_on_step_end``); counts the steps run."""

    def __init__(self, flag: threading.Event):
        self.flag, self.steps = flag, 0

    def stage(self, name: str):
        if name == "reference" and self.flag.is_set():
            raise JobCancelled("cancelled before it started")
        return super().stage(name)

    def __call__(self, pipe, step: int, timestep, tensors: dict) -> dict:
        self.steps += 1
        if self.flag.is_set():
            raise JobCancelled("cancelled")
        return tensors


class AnimateService:
    """``model``: a model directory or a Hugging Face Hub id (default: the packaged miniature model). The pipeline
    loads on first use and stays loaded; jobs write into ``workdir`` (default: a new temporary folder, removed by
    ``close``), one sub-folder each."""

    def __init__(self, model=None, device: str = "auto", dtype: str = "auto", workdir=None):
        from ..assets import packaged_model
        from ..hub import resolve_model
        from ..model_dir import ModelDirectory

        self.model = resolve_model(model) if model else packaged_model()  # a Hub id: its local snapshot
        self.directory = ModelDirectory(self.model).check()  # a wrong path fails at start-up, not at first use
        self.device, self.dtype = device, dtype
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="animate-anyone-app-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._pipe = None
        self._load_lock = threading.Lock()
        self._device_lock = threading.Lock()  # one job on the device at a time, even while a cancelled one stops
        self._running: set[threading.Event] = set()  # the cancel flag of each job in flight
        self._jobs = itertools.count(1)

    def config(self, **settings):
        """An ``AnimateConfig`` for this model from the page's settings (None values keep the defaults); a bad
        type raises ``ValueError`` naming it (bad sampling values: ``jobs.animate.animate``, before it loads)."""
        from ..config import load_config
        from ..jobs.animate_config import AnimateConfig

        values = {k: v for k, v in settings.items() if v is not None}
        config = load_config(AnimateConfig, None, [], {"model": str(self.model), **values})
        config.device, config.dtype = self.device, self.dtype
        return config

    def pipeline(self):
        from ..jobs.animate import process_device
        from ..pipelines.loading import load_pipeline

        with self._load_lock:
            if self._pipe is None:
                config = self.config()
                self._pipe = load_pipeline(
                    self.model, process_device(config), self.dtype, optimisations=config.optimisations
                )
        return self._pipe

    # -- the pose preview -------------------------------------------------------------------------------------
    def preview(self, reference, motion, kind: str, frame: int = 0) -> np.ndarray:
        """The skeleton of motion frame ``frame`` over the reference (H, W, 3) uint8: retargeted for a video
        of a person or keypoints (what the animation will follow), as given for a rendered pose video."""
        from ..media import iter_frames, load_image
        from ..pose.draw import draw_pose, overlay

        _check_inputs(reference, motion, kind)
        image = load_image(reference)
        photo = np.asarray(image)
        if kind == "pose video":
            skeleton = next(iter_frames(motion, size=image.size, start=frame, count=1), None)
            if skeleton is None:
                raise ValueError(f"the pose video has no frame {frame}")
        else:
            from ..pose.sequences import animation_sequence

            pose = animation_sequence(motion, image, progress=False)
            skeleton = draw_pose(pose, min(frame, pose.num_frames - 1), image.size, scale="auto")
        return overlay(photo, skeleton)

    # -- a job ------------------------------------------------------------------------------------------------
    def animate(
        self, reference, motion, kind: str, side_by_side: bool = True, cancel: threading.Event | None = None, **settings
    ) -> AppResult:
        """Animate ``reference`` with ``motion`` (see ``MOTION_KINDS``); ``settings`` are ``AnimateConfig``
        fields (steps, guidance, preset, seed, frames, size, context_frames, context_overlap, ...). Setting
        ``cancel`` (or calling ``cancel()``) stops this job at its next denoising step with ``JobCancelled``."""
        from ..jobs.animate import animate

        _check_inputs(reference, motion, kind)
        config = self.config(**settings)
        job = self.workdir / f"job-{next(self._jobs):04d}"  # next() of a count is atomic: one number per job
        job.mkdir(parents=True, exist_ok=True)
        keypoints = job / "keypoints.npz" if kind != "pose video" else None
        panel = job / "side_by_side.mp4" if side_by_side else None
        cancelled = cancel if cancel is not None else threading.Event()
        hooks = _Cancellable(cancelled)
        self._running.add(cancelled)
        start = time.perf_counter()
        try:
            out = animate(
                config,
                reference,
                motion if kind != "video of a person" else None,
                job / "animation.mp4",
                driver=motion if kind == "video of a person" else None,
                side_by_side=panel,
                keypoints_out=keypoints,
                progress=True,
                pipe=self.pipeline(),
                hooks=hooks,
                callback_on_step_end=hooks,
                device_lock=self._device_lock,
            )
            if cancelled.is_set():  # cancelled after its last step: nobody takes the result
                raise JobCancelled("cancelled")
            from ..media import probe_frames

            frames = probe_frames(out).num_frames
        except BaseException:
            shutil.rmtree(job, ignore_errors=True)  # a failed or cancelled job leaves nothing behind
            raise
        finally:
            self._running.discard(cancelled)
        return AppResult(out, panel, keypoints, frames, hooks.steps, time.perf_counter() - start)

    def cancel(self) -> None:
        """Stop every job in flight at its next denoising step (they raise ``JobCancelled``); later jobs run."""
        for flag in list(self._running):
            flag.set()

    def release(self, result: AppResult) -> None:
        """Remove a finished job's folder (once its files have been copied or served)."""
        folder = result.video.parent
        if folder.parent == self.workdir:
            shutil.rmtree(folder, ignore_errors=True)

    def close(self) -> None:
        """Stop the jobs in flight and remove the working folder if this service made it."""
        self.cancel()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _check_inputs(reference, motion, kind: str) -> None:
    if kind not in MOTION_KINDS:
        raise ValueError(f"unknown motion kind {kind!r}; choose one of {', '.join(MOTION_KINDS)}")
    if not reference:
        raise ValueError("upload a reference image of the character first")
    if not motion:
        raise ValueError(f"upload the motion first: {MOTION_KINDS[kind]}")
    from ..pose.keypoints import is_pose_file

    if (kind == "keypoint file") != is_pose_file(motion):
        expected = "a keypoint file (.npz or .json)" if kind == "keypoint file" else "a video or image"
        raise ValueError(f"the motion is {Path(motion).name}, but '{kind}' needs {expected}; pick the matching kind")
