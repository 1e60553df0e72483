"""``make_toy_dataset``: a tiny dataset directory of synthetic stick-figure videos with their exact keypoints.

No pose detector is involved: the keypoints are the ones the frames were drawn from. Each clip is a stick
figure walking left and right over a colour-gradient background, arms and legs swinging:

* limbs: thick near-white segments between the COCO-18 joints 0-13 (``TOY_LIMBS``);
* markers: discs of distinct saturated colours (``MARKERS``) centred on the nose, both wrists and both ankles,
  so a test can find a joint in a (cropped) video frame by colour and compare it with the drawn pose;
* eyes and ears (14-17) are not drawn and are missing (confidence 0) in the keypoints.

Coordinates follow the keypoint format: continuous pixels, pixel ``(i, j)`` covering ``[i, i + 1) x [j, j + 1)``;
a pixel is painted when its centre lies within the shape, so a marker's pixel centroid is its keypoint.

Layout written under ``out``: ``videos/<id>.mp4`` (H.264, near-lossless), ``poses/<id>.npz`` (keypoints),
``manifest.jsonl`` (video paths relative), an empty ``quarantine.jsonl``; with ``rendered_pose`` also
``poses/<id>.mp4`` or ``poses/<id>/`` (PNG frames): the skeleton drawn by ``pose.draw`` at ``pose_size``,
which the manifest then names as the pose instead of the keypoints.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from animate_anyone.data.manifest import QUARANTINE_NAME, Clip, write_manifest
from animate_anyone.jsonl import write_jsonl
from animate_anyone.media import write_video
from animate_anyone.pose.draw import BODY_LIMBS
from animate_anyone.pose.keypoints import PoseSequence

NOSE, NECK, R_WRIST, L_WRIST, R_ANKLE, L_ANKLE = 0, 1, 4, 7, 10, 13
TOY_LIMBS = BODY_LIMBS[:13]  # the OpenPose limbs among joints 0-13 (no eyes or ears), in its order
MARKERS: dict[int, tuple[int, int, int]] = {  # joint -> colour of its disc in the video
    NOSE: (235, 40, 40),
    R_WRIST: (40, 200, 40),
    L_WRIST: (50, 70, 240),
    R_ANKLE: (240, 220, 30),
    L_ANKLE: (230, 40, 230),
}
LIMB_COLOR = (235, 235, 235)
LIMB_HALF_WIDTH, MARKER_RADIUS = 0.04, 0.06  # fractions of the frame's shorter side
TOY_CRF = 6  # near-lossless H.264 (yuv420p still halves the colour resolution)

PathLike = str | os.PathLike[str]


def toy_body(t: float, phase: float = 0.0) -> np.ndarray:
    """(18, 3) keypoints in *normalised* coordinates (x, y in [0, 1]) at time ``t`` (radians of the gait)."""
    cx, bob = 0.5 + 0.12 * math.sin(0.5 * t + phase), 0.01 * math.cos(2 * t)
    body = np.zeros((18, 3))

    def limb(start: np.ndarray, length: float, angle: float) -> np.ndarray:  # angle from straight down, + = outwards
        return start + length * np.array([math.sin(angle), math.cos(angle)])

    body[NOSE, :2] = (cx, 0.17 + bob)
    body[NECK, :2] = (cx, 0.30 + bob)
    for side, (shoulder, elbow, wrist, hip, knee, ankle) in ((-1, (2, 3, 4, 8, 9, 10)), (1, (5, 6, 7, 11, 12, 13))):
        swing = math.sin(t + phase + (0 if side < 0 else math.pi))
        body[shoulder, :2] = (cx + side * 0.10, 0.32 + bob)
        body[elbow, :2] = limb(body[shoulder, :2], 0.13, side * (0.35 + 0.45 * swing))
        body[wrist, :2] = limb(body[elbow, :2], 0.12, side * (0.55 + 0.45 * swing))
        body[hip, :2] = (cx + side * 0.06, 0.56 + bob)
        body[knee, :2] = limb(body[hip, :2], 0.16, side * (0.08 + 0.20 * swing))
        body[ankle, :2] = limb(body[knee, :2], 0.16, side * (0.04 + 0.12 * swing))
    body[:14, 2] = 1.0
    return body


def draw_toy_frame(body: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An HxWx3 uint8 frame of the figure whose keypoints (in pixels of ``size`` = (width, height)) are ``body``."""
    width, height = size
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
    frame = np.empty((height, width, 3), np.float64)
    frame[..., 0] = 30 + 70 * xs / width  # a gradient, so that crops differ
    frame[..., 1] = 40 + 50 * ys / height
    frame[..., 2] = 80 + 30 * (xs + ys) / (width + height)
    short = min(width, height)
    half, radius = max(1.0, LIMB_HALF_WIDTH * short), max(2.0, MARKER_RADIUS * short)
    for a, b in TOY_LIMBS:
        (x0, y0), (x1, y1) = body[a, :2], body[b, :2]
        dx, dy = x1 - x0, y1 - y0
        t = np.clip(((xs - x0) * dx + (ys - y0) * dy) / max(dx * dx + dy * dy, 1e-12), 0.0, 1.0)
        frame[(xs - x0 - t * dx) ** 2 + (ys - y0 - t * dy) ** 2 <= half * half] = LIMB_COLOR
    for joint, colour in MARKERS.items():
        x, y = body[joint, :2]
        frame[(xs - x) ** 2 + (ys - y) ** 2 <= radius * radius] = colour
    return np.rint(frame).astype(np.uint8)


def toy_pose(frames: int, size: tuple[int, int], fps: float = 8.0, phase: float = 0.0) -> PoseSequence:
    """The keypoints (in pixels of ``size``) of a toy clip of ``frames`` frames."""
    width, height = size
    body = np.stack([toy_body(2 * math.pi * i / 12, phase) for i in range(frames)])  # a stride every 12 frames
    body[..., 0] *= width
    body[..., 1] *= height
    zeros = np.zeros
    return PoseSequence(body[:, None], zeros((frames, 1, 2, 21, 3)), zeros((frames, 1, 68, 3)), width, height, fps)


def make_toy_dataset(
    out: PathLike,
    clips: int = 2,
    frames: int | Sequence[int] = 12,
    size: tuple[int, int] = (64, 64),
    fps: float = 8,
    seed: int = 0,
    *,
    rendered_pose: str | None = None,
    pose_size: tuple[int, int] | None = None,
) -> Path:
    """Write a toy dataset directory (see the module doc) and return its path.

    ``frames``: frames per clip, one number for all or one per clip. ``size``: (width, height) of the videos.
    ``seed`` picks each clip's gait phase. ``rendered_pose``: ``"mp4"`` or ``"png"`` to make the manifest point
    at a rendered skeleton (drawn at ``pose_size``, default ``size``, fixed 4 px sticks like Moore's pose
    videos) instead of the keypoint file.
    """
    from animate_anyone.pose.draw import iter_rendered

    out = Path(out)
    counts = [int(frames)] * clips if isinstance(frames, (int, np.integer)) else [int(f) for f in frames]
    if len(counts) != clips or min(counts, default=1) < 1:
        raise ValueError(f"frames must be a positive number or one per clip ({clips}), got {frames!r}")
    if rendered_pose not in (None, "mp4", "png"):
        raise ValueError(f"rendered_pose must be None, 'mp4' or 'png', got {rendered_pose!r}")
    width, height = (int(v) for v in size)
    rng = np.random.default_rng(seed)
    entries = []
    for c, count in enumerate(counts):
        clip_id = f"toy_{c:03d}"
        pose = toy_pose(count, (width, height), fps, phase=float(rng.uniform(0, 2 * math.pi)))
        video = write_video(
            out / "videos" / f"{clip_id}.mp4",
            (draw_toy_frame(pose.body[i, 0], (width, height)) for i in range(count)),
            fps,
            crf=TOY_CRF,
        )
        keypoints = pose.save(out / "poses" / f"{clip_id}.npz")
        pose_path = keypoints
        if rendered_pose is not None:
            target = out / "poses" / (f"{clip_id}.mp4" if rendered_pose == "mp4" else clip_id)
            write_video(target, iter_rendered(pose, pose_size or (width, height)), fps, crf=TOY_CRF)
            pose_path = target
        entries.append(Clip(clip_id, video.resolve(), pose_path.resolve(), count, float(fps), width, height))
    write_manifest(out, entries)
    write_jsonl(out / QUARANTINE_NAME, [])
    return out
