"""File-level pose jobs behind ``animate-anyone pose ...`` and the pose input of ``animate``.

Each job reads its inputs, calls the pure functions of ``extract``, ``align`` and ``draw``, and writes its
output atomically.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import PIL.Image

from ..config import SettingError
from ..shapes import frames_range
from .keypoints import PoseSequence, is_pose_file, load_pose


def check_keypoint_output(path, what: str = "out", overwrite: bool = False, switch: str | None = None) -> None:
    """Before any work: a keypoint file suffix, and no silent replacement of an existing file. ``what`` / ``switch``:
    the caller's names for the path and for ``overwrite`` (``atomic.refuse_existing``)."""
    from ..atomic import refuse_existing

    if not is_pose_file(path):
        raise ValueError(f"{what} {path}: keypoint files are .npz or .json")
    refuse_existing(path, overwrite, what, switch)


def extract_file(
    source,
    out,
    *,
    backend: str = "mediapipe",
    det_model=None,
    pose_model=None,
    max_gap: int = 8,
    person: str | int | None = None,
    progress: bool = True,
    overwrite: bool = False,
):
    """Extract keypoints from a video, image folder or image and save them; returns (path, report)."""
    from .extract import extract_poses

    check_keypoint_output(out, "out", overwrite)
    if not Path(source).exists():
        raise FileNotFoundError(f"{source}: no such video, image or folder")

    pose, report = extract_poses(
        source, backend, det_model=det_model, pose_model=pose_model, max_gap=max_gap, person=person, progress=progress
    )
    return pose.save(out), report


def render_file(
    poses,
    out,
    *,
    size: tuple[int, int] | None = None,
    fps: float | None = None,
    hands: bool = True,
    face: bool = True,
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Render a keypoint file as OpenPose-style skeleton video (or GIF / PNG folder)."""
    from ..capacity import memory_shortfall
    from ..media import check_video_output
    from .draw import render_video

    check_video_output(out, "out", overwrite)
    if fps is not None and not (np.isfinite(fps) and fps > 0):
        raise SettingError("fps", fps, "must be a positive number of frames per second")
    pose = load_pose(poses)
    width, height = size or (pose.width, pose.height)
    shortfall = memory_shortfall(6 * width * height)  # a frame + its encoding
    if shortfall is not None:
        raise SettingError("size", f"{width}x{height}", f"{shortfall}; use a smaller one")
    return render_video(pose, out, size=size, fps=fps, progress=progress, hands=hands, face=face)


def reference_pose(
    image: PIL.Image.Image, *, backend: str = "mediapipe", det_model=None, pose_model=None
) -> PoseSequence:
    """The reference character's own pose (one frame), in its image's pixels."""
    from .extract import extract_image

    return extract_image(image, backend, det_model=det_model, pose_model=pose_model)


def align_file(
    reference,
    driver,
    out,
    *,
    backend: str = "mediapipe",
    smoothing: float = 1.0,
    overlay_out=None,
    video=None,
    det_model=None,
    pose_model=None,
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Retarget the driver's keypoints to the reference image's body; optionally write a before/after video
    (``overlay_out``), whose "before" panel is drawn over the driver's own ``video`` when given."""
    from ..media import VideoWriter, check_video_output, load_image
    from .align import retarget

    check_keypoint_output(out, "out", overwrite)
    if overlay_out is not None:
        check_video_output(overlay_out, "overlay_out", overwrite)
    if not (np.isfinite(smoothing) and smoothing >= 0):
        raise SettingError("smoothing", smoothing, "must be 0 (off) or a positive Gaussian sigma in frames")
    image = load_image(reference)
    drv = load_pose(driver)
    aligned = retarget(
        drv, reference_pose(image, backend=backend, det_model=det_model, pose_model=pose_model), smoothing=smoothing
    )
    if overlay_out is not None:
        with VideoWriter(overlay_out, drv.fps) as writer:
            for frame in before_after(drv, aligned, image, video):
                writer.write(frame)
    return aligned.save(out)


def before_after(
    driver: PoseSequence, aligned: PoseSequence, image: PIL.Image.Image, video=None
) -> Iterator[np.ndarray]:
    """Debug frames: [driver skeleton at its own proportions, over the driver ``video`` when given (else black) |
    aligned skeleton over the reference image]."""
    from ..media import iter_frames, probe_frames
    from .draw import draw_pose, overlay

    photo = np.asarray(image.convert("RGB"))
    height = photo.shape[0]
    width = max(2, round(driver.width * height / driver.height))
    if video is not None:
        info = probe_frames(video)
        if info.num_frames < driver.num_frames:
            raise SettingError("video", video, f"{info.num_frames} frames, the keypoints have {driver.num_frames}")
    frames = iter_frames(video, size=(width, height)) if video is not None else None
    for i in range(driver.num_frames):
        before = draw_pose(driver, i, (width, height), scale="auto")
        if frames is not None:
            before = overlay(next(frames), before)
        after = overlay(photo, draw_pose(aligned, i, (photo.shape[1], height), scale="auto"))
        yield np.concatenate([before, after], axis=1)  # (H, w_driver + W, 3)


def render_sequence(pose: PoseSequence, size: tuple[int, int]) -> np.ndarray:
    """(F, H, W, 3) uint8 skeletons of ``pose`` at ``size`` = (width, height), as the animation uses them."""
    from .draw import iter_rendered

    return np.stack(list(iter_rendered(pose, size, scale="auto")))


def animation_sequence(
    source,
    reference: PIL.Image.Image,
    frames: int | None = None,
    *,
    align: bool = True,
    backend: str = "mediapipe",
    det_model=None,
    pose_model=None,
    person: str | int | None = None,
    progress: bool = True,
) -> PoseSequence:
    """The keypoints that drive an animation: loaded from a keypoint file or extracted from a raw driving video,
    cut to ``frames`` and, unless ``align=False``, retargeted to the reference's body."""
    if person == "all":
        raise SettingError("person", person, "an animation follows one person; choose largest, center, N or a box")
    # The reference's pose first: a reference without a person is said before the driver is read.
    target = reference_pose(reference, backend=backend, det_model=det_model, pose_model=pose_model) if align else None
    if is_pose_file(source):
        pose = load_pose(source)
    else:
        from .extract import extract_poses

        pose, report = extract_poses(  # the frames the animation uses, no more (checked against the video's count)
            source, backend, det_model=det_model, pose_model=pose_model, person=person, progress=progress, count=frames
        )
        if report.switches:  # the animation goes on with whom it found, but says so
            print(f"warning: {report}", file=sys.stderr)
    if not (pose.body[..., 2] > 0).any():
        raise ValueError(
            f"no person was found in {source}: every body keypoint is missing; the motion needs a visible person "
            "(or give rendered skeletons as the pose)"
        )
    if frames is not None:
        if not 1 <= frames <= pose.num_frames:
            raise frames_range(frames, source, pose.num_frames)
        pose = pose.select(slice(0, frames))
    if target is not None:
        from .align import retarget

        pose = retarget(pose, target)
    return pose
