"""Stages (framing + background) and rendering: frames, exact keypoints, part-id maps, pose images.

A ``Stage`` maps world (character units, ground at y = 0) to pixels: ``x_px = origin_x + scale * x``,
``y_px = ground + scale * y``, where pixel (i, j) covers [i, i + 1) x [j, j + 1) (the keypoint format's
convention; a pixel's colour is sampled at its centre). The keypoints written are exactly the rig's joints
through this map (float32 in the file), all 18 body points with confidence 1 (see ``kinematics``); hands and
face are missing (zeros): the characters have no fingers or face landmarks.

Backgrounds (``BACKGROUNDS``): ``solid``; ``gradient`` (two colours, any angle); ``room``: a wall (plain or with
vertical stripes) above a horizon and a floor of perspective tiles below, the character's feet on the floor.
Backgrounds are computed once per clip with 3x3 supersampling. A soft drop shadow under the pelvis shrinks
and fades while the character is in the air.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from animate_anyone.pose.draw import draw_pose
from animate_anyone.pose.keypoints import FACE_POINTS, HAND_POINTS, PoseSequence

from .character import Character, make_palette
from .kinematics import PART_NAMES, Rig, pose
from .motion import Motion
from .raster import paint

BACKGROUNDS = ("solid", "gradient", "room")


@dataclass(frozen=True)
class Stage:
    width: int
    height: int
    scale: float  # pixels per character unit
    origin_x: float  # pixel x of world x = 0
    ground: float  # pixel y of the ground (world y = 0)
    background: str = "solid"
    colors: tuple[tuple[int, int, int], ...] = ((128, 128, 128),)
    params: dict[str, float] = field(default_factory=dict)  # angle, horizon, tile, stripes
    shadow: bool = True

    def to_pixels(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(points, np.float64) * self.scale + np.array([self.origin_x, self.ground])

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Stage:
        d = dict(d, colors=tuple(tuple(int(v) for v in c) for c in d["colors"]))
        return cls(**d)

    @classmethod
    def random(cls, rng: np.random.Generator, size: tuple[int, int], character: Character) -> Stage:
        """A framing (the standing character 62-78 % as tall as the ground is low, at most 90 % of the width;
        the ground line at 86-95 % of the height) and a background, drawn from ``rng``."""
        width, height = (int(v) for v in size)
        fill, ground = float(rng.uniform(0.62, 0.78)), float(rng.uniform(0.86, 0.95))
        scale = min(fill * ground * height, 0.9 * width) / character.body.height
        origin = width / 2 + float(rng.uniform(-0.08, 0.08)) * width
        kind = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
        colors = tuple(make_palette(rng)[:4])
        params = {
            "angle": float(rng.uniform(0, 2 * np.pi)),
            "horizon": float(rng.uniform(0.45, 0.7)),
            "tile": float(rng.uniform(0.15, 0.4)),
            "stripes": float(rng.integers(0, 2) * rng.uniform(6, 20)),
        }
        return cls(width, height, scale, origin, ground * height, kind, colors, params, bool(rng.random() < 0.7))


def background(stage: Stage, supersample: int = 3) -> np.ndarray:
    """The (H, W, 3) float64 background of ``stage``."""
    n, (w, h) = supersample, (stage.width, stage.height)
    ys, xs = np.mgrid[0 : h * n, 0 : w * n]
    x, y = (xs + 0.5) / n, (ys + 0.5) / n
    c = np.asarray(stage.colors, np.float64)
    p = stage.params
    if stage.background == "solid":
        img = np.broadcast_to(c[0], x.shape + (3,)).copy()
    elif stage.background == "gradient":
        t = np.clip((x / w - 0.5) * np.cos(p["angle"]) + (y / h - 0.5) * np.sin(p["angle"]) + 0.5, 0, 1)[..., None]
        img = c[0] * (1 - t) + c[1] * t
    elif stage.background == "room":
        horizon = p["horizon"] * min(stage.ground, h)
        img = np.broadcast_to(c[0], x.shape + (3,)).copy()
        if p.get("stripes", 0) > 0:
            img[(x // p["stripes"]) % 2 == 1] = c[0] * 0.85 + c[3] * 0.15
        dy = np.maximum(y - horizon, 1e-6)
        depth = stage.scale * 0.5 / dy  # world units in front of the camera, camera 0.5 units up
        across = (x - w / 2) / stage.scale * depth * 2
        tile = p["tile"]
        odd = ((np.floor(across / tile) + np.floor(depth / tile)) % 2)[..., None]
        floor = c[1] * (1 - odd) + c[2] * odd
        fade = np.clip(dy / (stage.ground - horizon + 1e-6), 0, 1)[..., None] ** 0.5  # far tiles fade to the wall
        floor = floor * fade + (c[1] + c[2]) / 2 * (1 - fade)
        img = np.where((y > horizon)[..., None], floor, img)
        img[(y > horizon - 0.02 * h) & (y <= horizon)] *= 0.6  # skirting board
    else:
        raise ValueError(f"unknown background {stage.background!r}")
    return img.reshape(h, n, w, n, 3).mean(axis=(1, 3))


def render_rig(
    rig: Rig, character: Character, stage: Stage, backdrop: np.ndarray, ids: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """(frame uint8, part-id map or None): ids index ``PART_NAMES``, -1 = background."""
    canvas = backdrop.copy()
    if stage.shadow:
        size, r = _shadow(rig, stage)
        canvas *= 1 - (0.35 * size * np.clip(1.2 - r, 0, 1) ** 0.7)[..., None]
    id_map = np.full((stage.height, stage.width), -1, np.int16) if ids else None
    outline = max(0.7, 0.01 * stage.scale)
    for part in rig.parts:
        paint(
            canvas,
            part,
            character.styles[part.style],
            stage.scale,
            (stage.origin_x, stage.ground),
            outline,
            id_map,
            PART_NAMES.index(part.name),
        )
    return np.clip(np.rint(canvas), 0, 255).astype(np.uint8), id_map


def _shadow(rig: Rig, stage: Stage) -> tuple[float, np.ndarray]:
    """(size, r): the drop shadow's size (smaller in the air) and its elliptic radius per pixel (shaded where < 1.2)."""
    py, px = np.mgrid[0 : stage.height, 0 : stage.width] + 0.5
    cx, size = stage.origin_x + stage.scale * rig.root[0], max(0.3, 1 - 4 * rig.lift)
    return size, ((px - cx) / (0.2 * size * stage.scale)) ** 2 + ((py - stage.ground) / (0.03 * stage.scale)) ** 2


def clip_masks(
    character: Character,
    motion: Motion,
    stage: Stage,
    fps: float,
    images: np.ndarray,
    id_maps: np.ndarray,
    backdrop: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(character (F, H, W) bool, static (H, W) bool) of a clip from ``render_clip(..., ids=True)``: the pixels
    each frame's character covers at least half (the id map), and the static background: the pixels that hold
    the rounded backdrop in every frame, are never darkened by the shadow and lie more than one pixel from the
    character in every frame (so anti-aliased edges, covered less than half, are not static)."""
    character_mask = id_maps >= 0
    covered = character_mask.any(axis=0)
    rows = covered.copy()  # a 3x3 dilation (rows, then columns), without wrapping around the borders
    rows[1:] |= covered[:-1]
    rows[:-1] |= covered[1:]
    near = rows.copy()
    near[:, 1:] |= rows[:, :-1]
    near[:, :-1] |= rows[:, 1:]
    if stage.shadow:
        for i in range(len(id_maps)):
            near |= _shadow(pose(character, motion, i / fps), stage)[1] < 1.2
    plain = (images == np.clip(np.rint(backdrop), 0, 255).astype(np.uint8)).all(axis=(0, 3))
    return character_mask, plain & ~near


def render_clip(
    character: Character,
    motion: Motion,
    stage: Stage,
    frames: int,
    fps: float,
    ids: bool = False,
    backdrop: np.ndarray | None = None,
) -> tuple[np.ndarray, PoseSequence, np.ndarray | None]:
    """(frames (F, H, W, 3) uint8, keypoints, id maps (F, H, W) or None) of ``frames`` frames at ``fps``; frame
    ``i`` is the motion at ``t = i / fps`` seconds. ``backdrop``: ``background(stage)`` when the caller has it."""
    backdrop = background(stage) if backdrop is None else backdrop
    images, maps = [], []
    for i in range(frames):
        image, id_map = render_rig(pose(character, motion, i / fps), character, stage, backdrop, ids)
        images.append(image)
        maps.append(id_map)
    keypoints = clip_keypoints(character, motion, stage, frames, fps)
    return np.stack(images), keypoints, (np.stack(maps) if ids else None)


def clip_keypoints(character: Character, motion: Motion, stage: Stage, frames: int, fps: float) -> PoseSequence:
    """The exact keypoints of ``character`` doing ``motion`` on ``stage`` (frame ``i`` at ``i / fps`` seconds)."""
    body = np.zeros((frames, 1, 18, 3))
    for i in range(frames):
        body[i, 0, :, :2] = stage.to_pixels(pose(character, motion, i / fps).keypoints)
        body[i, 0, :, 2] = 1.0
    z = np.zeros
    return PoseSequence(
        body, z((frames, 1, 2, HAND_POINTS, 3)), z((frames, 1, FACE_POINTS, 3)), stage.width, stage.height, fps
    )


def reference_image(
    character: Character, stage: Stage, backdrop: np.ndarray | None = None, at: float = 0.0
) -> np.ndarray:
    """The character in the neutral pose (facing the camera) on the clip's stage, centred on ``origin_x`` (moved
    by ``at`` character units). ``backdrop``: ``background(stage)`` when the caller has it."""
    backdrop = background(stage) if backdrop is None else backdrop
    image, _ = render_rig(pose(character, Motion.still(at=at), 0.0), character, stage, backdrop)
    return image


def pose_images(keypoints: PoseSequence, scale: float | str = "auto") -> np.ndarray:
    """The project's skeleton drawing (``pose.draw.draw_pose``) of every frame, (F, H, W, 3) uint8."""
    return np.stack([draw_pose(keypoints, i, scale=scale) for i in range(keypoints.num_frames)])
