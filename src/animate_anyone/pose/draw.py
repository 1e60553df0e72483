"""OpenPose-style skeleton images, drawn the way the public Animate Anyone checkpoints saw them.

Moore-AnimateAnyone made its pose videos with DWPose and the ControlNet 1.1 OpenPose drawing routines (OpenCV
on a black uint8 array). This module reproduces that picture from a ``PoseSequence`` with PIL and numpy:

* Body: each of the 17 ``BODY_LIMBS`` is a filled ellipse between its two joints, semi-major axis half the
  limb length, semi-minor axis 4 px ("stick width" 4), centre and angle cut to whole pixels and degrees;
  limb ``i`` gets ``BODY_COLORS[i]`` times 0.6 with every channel truncated (255 -> 153, 170 -> 102,
  85 -> 51). Then each joint ``j`` gets a disc of radius 4 in the undimmed ``BODY_COLORS[j]``. (The original
  multiplies the whole array by 0.6 after drawing the limbs; on black that equals drawing dimmed colours,
  which is done here so that a ``canvas`` photo underneath is not darkened.)
* Hands: 20 edges per hand, 2 px wide, edge ``i`` in the HSV colour (i/20, 1, 1) times 255 rounded half to
  even (how OpenCV turns a float colour into bytes; ``HAND_COLORS``), then a disc of radius 4 in
  (0, 0, 255) at each keypoint.
* Face: a white disc of radius 3 at each of the 68 points.

Discs are the pixels within the radius of the truncated keypoint, (dx^2 + dy^2 <= r^2): for whole radii this
is exactly OpenCV's filled circle. Order as in the original: limbs (limb by limb over all people), body
joints, each person's hands (edges, then points), faces.

Colour order, the conclusion: OpenCV calls its arrays BGR, but its drawing functions only write the given
numbers into channels 0, 1, 2. Moore's detector hands the drawn array straight to ``PIL.Image.fromarray``
(no channel swap), saves those RGB images into its ``*_kps.mp4`` videos, and its training dataset reads
them back as RGB (decord). So the triples are RGB in what the model learned from: the neck->right-shoulder
limb is dark red (153, 0, 0), the right-hip limbs green/cyan, hand keypoints blue, hand edge 0 red. Reading
the tables as BGR (swapping R and B) would produce pictures the checkpoints never saw.

Sizes: the original uses these pixel sizes whatever the image size; Moore drew at its detection resolution
(short side 512), so 4 px sticks on ~512 px frames is what training saw. ``scale=1`` (default) keeps fixed
pixel sizes; a number multiplies every width and radius; ``"auto"`` uses min(width, height) / 512.

A keypoint is drawn only when its confidence exceeds ``threshold`` (0.3, the cut Moore's detector applies to
DWPose scores); a limb or hand edge only when both ends are. Keypoints are mapped from the pose's
width x height to the output size, then truncated to whole pixels like the original's ``int()``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from animate_anyone.media import VideoWriter
from animate_anyone.pose.keypoints import PoseSequence

# COCO-18 indices (see keypoints.py): neck-shoulders, arms, neck-hips, legs, neck-nose, eyes, ears
BODY_LIMBS: tuple[tuple[int, int], ...] = (
    (1, 2),
    (1, 5),
    (2, 3),
    (3, 4),
    (5, 6),
    (6, 7),
    (1, 8),
    (8, 9),
    (9, 10),
    (1, 11),
    (11, 12),
    (12, 13),
    (1, 0),
    (0, 14),
    (14, 16),
    (0, 15),
    (15, 17),
)
BODY_COLORS: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0),
    (255, 85, 0),
    (255, 170, 0),
    (255, 255, 0),
    (170, 255, 0),
    (85, 255, 0),
    (0, 255, 0),
    (0, 255, 85),
    (0, 255, 170),
    (0, 255, 255),
    (0, 170, 255),
    (0, 85, 255),
    (0, 0, 255),
    (85, 0, 255),
    (170, 0, 255),
    (255, 0, 255),
    (255, 0, 170),
    (255, 0, 85),
)
LIMB_DIM = 0.6
LIMB_COLORS = tuple(tuple(int(c * LIMB_DIM) for c in rgb) for rgb in BODY_COLORS[: len(BODY_LIMBS)])
# wrist (0) to each finger's four joints: thumb 1-4, index 5-8, middle 9-12, ring 13-16, little 17-20
HAND_EDGES = tuple(
    pair
    for f in range(5)
    for pair in ((0, 4 * f + 1), (4 * f + 1, 4 * f + 2), (4 * f + 2, 4 * f + 3), (4 * f + 3, 4 * f + 4))
)


def _hsv_colour(hue: float) -> tuple[int, int, int]:
    """Full saturation and value: the usual sextant formula in float64, times 255, rounded half to even."""
    sextant = int(hue * 6.0)
    f = hue * 6.0 - sextant
    up, down = 1.0 - (1.0 - f), 1.0 - f
    rgb = [(1, up, 0), (down, 1, 0), (0, 1, up), (0, down, 1), (up, 0, 1), (1, 0, down)][sextant % 6]
    return tuple(int(v) for v in np.rint(np.array(rgb, np.float64) * 255.0))


HAND_COLORS = tuple(_hsv_colour(i / len(HAND_EDGES)) for i in range(len(HAND_EDGES)))
HAND_POINT_COLOR, FACE_COLOR = (0, 0, 255), (255, 255, 255)
STICK_WIDTH, JOINT_RADIUS, HAND_WIDTH, HAND_RADIUS, FACE_RADIUS = 4, 4, 2, 4, 3
REFERENCE_SIZE = 512  # the short side Moore drew its training poses at; used by scale="auto"


def draw_pose(
    pose: PoseSequence,
    frame: int,
    size: tuple[int, int] | None = None,
    *,
    hands: bool = True,
    face: bool = True,
    threshold: float = 0.3,
    canvas: np.ndarray | None = None,
    scale: float | str = 1.0,
) -> np.ndarray:
    """The skeleton of every person in ``frame`` as an (H, W, 3) uint8 RGB image.

    ``size=(width, height)`` defaults to the canvas's size when one is given, else the pose's. ``canvas``: an
    HxWx3 uint8 image to draw over (it is copied, not changed) instead of black. ``scale``: see module doc.
    """
    if not 0 <= frame < pose.num_frames:
        raise IndexError(f"frame {frame} out of range for a pose sequence of {pose.num_frames} frames")
    if canvas is not None:
        canvas = np.asarray(canvas)
        if canvas.dtype != np.uint8 or canvas.ndim != 3 or canvas.shape[2] != 3:
            raise ValueError(f"canvas must be an HxWx3 uint8 image, got {canvas.dtype} {canvas.shape}")
        size = size or (canvas.shape[1], canvas.shape[0])
        if (canvas.shape[1], canvas.shape[0]) != tuple(size):
            raise ValueError(f"canvas is {canvas.shape[1]}x{canvas.shape[0]} but size is {size[0]}x{size[1]}")
    width, height = (pose.width, pose.height) if size is None else (int(size[0]), int(size[1]))
    if width < 1 or height < 1:
        raise ValueError(f"size must be positive, got {width}x{height}")
    k = min(width, height) / REFERENCE_SIZE if scale == "auto" else float(scale)
    if not k > 0:
        raise ValueError(f"scale must be a positive number or 'auto', got {scale!r}")
    image = Image.new("RGB", (width, height)) if canvas is None else Image.fromarray(canvas.copy())
    draw = ImageDraw.Draw(image)
    factor = np.array([width / pose.width, height / pose.height])
    cut = np.float32(threshold)  # compared in the arrays' float32, so a stored 0.3 does not exceed 0.3

    body = pose.body[frame].astype(np.float64)  # (people, 18, 3)
    xy, seen = body[..., :2] * factor, pose.body[frame, ..., 2] > cut
    for i, (a, b) in enumerate(BODY_LIMBS):
        for person in np.flatnonzero(seen[:, a] & seen[:, b]):
            (x0, y0), (x1, y1) = xy[person, a], xy[person, b]
            centre = (int((x0 + x1) / 2), int((y0 + y1) / 2))
            angle = int(np.degrees(np.arctan2(y0 - y1, x0 - x1)))
            outline = _ellipse(centre, int(np.hypot(x0 - x1, y0 - y1) / 2), STICK_WIDTH * k, angle)
            if len(outline) >= 6:
                draw.polygon(outline, fill=LIMB_COLORS[i], outline=LIMB_COLORS[i])
            else:  # degenerate at tiny sizes (a limb shorter or thinner than a pixel): a line or a point
                draw.line(outline * (2 if len(outline) == 2 else 1), fill=LIMB_COLORS[i])
    for j, colour in enumerate(BODY_COLORS):
        _discs(draw, xy[seen[:, j], j], JOINT_RADIUS * k, colour)
    if hands:
        line_width = max(1, round(HAND_WIDTH * k))
        for hand in pose.hands[frame].reshape(-1, pose.hands.shape[3], 3):
            points = np.trunc(hand[:, :2].astype(np.float64) * factor).astype(np.int64)
            visible = hand[:, 2] > cut
            for e, (a, b) in enumerate(HAND_EDGES):
                if visible[a] and visible[b]:
                    draw.line(
                        [tuple(points[a].tolist()), tuple(points[b].tolist())], fill=HAND_COLORS[e], width=line_width
                    )
            _discs(draw, points[visible], HAND_RADIUS * k, HAND_POINT_COLOR)
    if face:
        marks = pose.face[frame]
        _discs(draw, marks[..., :2][marks[..., 2] > cut].astype(np.float64) * factor, FACE_RADIUS * k, FACE_COLOR)
    return np.array(image)


def iter_rendered(pose: PoseSequence, size: tuple[int, int] | None = None, **kw) -> Iterator[np.ndarray]:
    """``draw_pose`` of every frame in order (keyword arguments go to it)."""
    for frame in range(pose.num_frames):
        yield draw_pose(pose, frame, size, **kw)


def render_video(
    pose: PoseSequence,
    out: str | os.PathLike[str],
    size: tuple[int, int] | None = None,
    fps: float | None = None,
    progress: bool = True,
    **kw,
) -> Path:
    """Write every rendered frame to ``out`` (any ``media.VideoWriter`` target) at ``fps`` (default the pose's)."""
    from tqdm.auto import tqdm

    frames = tqdm(
        iter_rendered(pose, size, **kw),
        total=pose.num_frames,
        desc="rendering poses",
        unit="frame",
        disable=not progress,
    )
    with VideoWriter(out, pose.fps if fps is None else fps) as writer:
        for image in frames:
            writer.write(image)
    return writer.path


def overlay(image: np.ndarray, rendered: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """``image`` with the non-black pixels of ``rendered`` blended over it at opacity ``alpha``."""
    image, rendered = np.asarray(image), np.asarray(rendered)
    if image.shape != rendered.shape or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"need two HxWx3 images of one size, got {image.shape} and {rendered.shape}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    out = image.astype(np.uint8, copy=True)
    drawn = rendered.any(axis=2)
    mixed = (1.0 - alpha) * image[drawn].astype(np.float64) + alpha * rendered[drawn].astype(np.float64)
    out[drawn] = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    return out


_DEGREES = np.radians(np.arange(361))
_COS, _SIN = np.cos(_DEGREES), np.sin(_DEGREES)


def _ellipse(centre: tuple[int, int], half_length: int, half_width: float, angle: int) -> list[int]:
    """Outline of a rotated ellipse at every whole degree, rounded to pixels, repeats dropped (flat x, y list)."""
    turn = np.radians(angle)
    x, y = half_length * _COS, half_width * _SIN
    px = np.rint(centre[0] + x * np.cos(turn) - y * np.sin(turn))
    py = np.rint(centre[1] + x * np.sin(turn) + y * np.cos(turn))
    pts = np.stack([px, py], axis=1).astype(np.int64)
    keep = np.concatenate([[True], np.any(pts[1:] != pts[:-1], axis=1)])
    return pts[keep].ravel().tolist()


def _discs(draw: ImageDraw.ImageDraw, centres: np.ndarray, radius: float, colour: tuple[int, int, int]) -> None:
    """Filled discs: every pixel within ``radius`` of each truncated centre (PIL clips what lies outside)."""
    if len(centres) == 0:
        return
    offsets = _disc_offsets(float(radius))
    pixels = np.trunc(np.asarray(centres, np.float64)).astype(np.int64)[:, None, :] + offsets[None]
    draw.point(pixels.reshape(-1).tolist(), fill=colour)


@functools.lru_cache(maxsize=64)
def _disc_offsets(radius: float) -> np.ndarray:
    """(n, 2) integer (dx, dy) offsets within ``radius`` of the origin (cached: few radii per video)."""
    n = int(radius)
    dy, dx = np.mgrid[-n : n + 1, -n : n + 1]
    inside = dx**2 + dy**2 <= radius * radius
    offsets = np.stack([dx[inside], dy[inside]], axis=1)
    offsets.setflags(write=False)
    return offsets
