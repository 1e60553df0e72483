"""OpenPose-style rendering: colours, visibility, scaling, canvas, video output, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from animate_anyone.media import probe_frames
from animate_anyone.pose.draw import (
    BODY_COLORS,
    BODY_LIMBS,
    HAND_COLORS,
    HAND_EDGES,
    LIMB_COLORS,
    draw_pose,
    iter_rendered,
    overlay,
    render_video,
)
from animate_anyone.pose.keypoints import PoseSequence

W, H = 200, 120
NECK, R_SHOULDER, NOSE = 1, 2, 0


def pose_with(body=(), hands=(), face=(), frames=1, people=1, width=W, height=H) -> PoseSequence:
    """An empty sequence with some points set: body/face items (index, x, y, conf), hands (side, index, x, y, conf)."""
    pose = PoseSequence.empty(frames, people, width, height)
    for index, x, y, conf in body:
        pose.body[:, 0, index] = (x, y, conf)
    for side, index, x, y, conf in hands:
        pose.hands[:, 0, side, index] = (x, y, conf)
    for index, x, y, conf in face:
        pose.face[:, 0, index] = (x, y, conf)
    return pose


def colour(image, x, y):
    return tuple(int(v) for v in image[y, x])


def drawn(image):
    return image.any(axis=2)


def test_tables():
    assert len(BODY_LIMBS) == 17 and len(BODY_COLORS) == 18 and len(HAND_EDGES) == 20
    assert BODY_COLORS[:5] == ((255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0))
    assert BODY_COLORS[-1] == (255, 0, 85)
    assert BODY_LIMBS[0] == (NECK, R_SHOULDER) and BODY_LIMBS[12] == (NECK, NOSE) and BODY_LIMBS[-1] == (15, 17)
    assert LIMB_COLORS[0] == (153, 0, 0) and LIMB_COLORS[2] == (153, 102, 0) and LIMB_COLORS[1] == (153, 51, 0)
    assert {c for rgb in LIMB_COLORS for c in rgb} <= {0, 51, 102, 153}
    # hue i/20 around the circle, rounded half to even like OpenCV's float -> byte conversion
    assert HAND_COLORS[0] == (255, 0, 0) and HAND_COLORS[5] == (128, 255, 0) and HAND_COLORS[10] == (0, 255, 255)
    assert HAND_COLORS[1] == (255, 77, 0) and HAND_COLORS[15] == (128, 0, 255) and HAND_COLORS[19] == (255, 0, 77)


def test_joint_and_limb_colours_are_rgb():
    image = draw_pose(pose_with(body=[(NECK, 60, 50, 0.9), (R_SHOULDER, 120, 50, 0.9)]), 0)
    assert image.shape == (H, W, 3) and image.dtype == np.uint8
    assert colour(image, 60, 50) == BODY_COLORS[NECK] == (255, 85, 0)  # joint discs: full colour
    assert colour(image, 120, 50) == BODY_COLORS[R_SHOULDER]
    # limb 0 (neck -> right shoulder) is dark red in the RGB output: channel 0 is red, dimmed by 0.6
    assert colour(image, 90, 50) == LIMB_COLORS[0] == (153, 0, 0)
    assert colour(image, 90, 54) == (153, 0, 0) and colour(image, 90, 55) == (0, 0, 0)  # semi-minor axis 4
    assert set(map(tuple, image[drawn(image)].tolist())) == {(153, 0, 0), (255, 85, 0), (255, 170, 0)}


def test_joint_disc_radius_4():
    image = draw_pose(pose_with(body=[(NOSE, 50.7, 40.2, 1.0)]), 0)
    ys, xs = np.nonzero(drawn(image))
    assert len(xs) == 49 and (xs.min(), xs.max(), ys.min(), ys.max()) == (46, 54, 36, 44)  # centre cut to (50, 40)
    assert colour(image, 50, 40) == BODY_COLORS[NOSE]


def test_invisible_points_and_half_limbs_draw_nothing():
    low = pose_with(
        body=[(NECK, 60, 50, 0.2), (R_SHOULDER, 120, 50, 0.3)], hands=[(0, 0, 30, 30, 0.1)], face=[(5, 80, 20, 0.25)]
    )
    assert not draw_pose(low, 0).any()  # exactly black: confidences must exceed the threshold
    assert drawn(draw_pose(low, 0, threshold=0.1)).sum() > 0
    half = draw_pose(pose_with(body=[(NECK, 60, 50, 0.9), (R_SHOULDER, 120, 50, 0.0)]), 0)
    assert colour(half, 90, 50) == (0, 0, 0)
    assert drawn(half).sum() == 49 and colour(half, 60, 50) == BODY_COLORS[NECK]  # just the neck's disc


def test_scaling_to_twice_the_size():
    pose = pose_with(body=[(NOSE, 30, 20, 1.0)])
    image = draw_pose(pose, 0, size=(2 * W, 2 * H))
    assert image.shape == (2 * H, 2 * W, 3)
    ys, xs = np.nonzero(drawn(image))
    assert (xs.mean(), ys.mean()) == (60, 40) and colour(image, 60, 40) == BODY_COLORS[NOSE]
    assert xs.max() - xs.min() == 8  # sizes stay fixed in pixels by default
    wide = drawn(draw_pose(pose, 0, size=(2 * W, 2 * H), scale=2.0))
    assert np.nonzero(wide)[1].max() == 68
    auto = drawn(draw_pose(pose, 0, size=(1600, 1024), scale="auto"))  # short side 1024 -> twice 512
    assert np.nonzero(auto)[1].max() == 240 + 8


def test_hands_and_face_drawn_and_toggled():
    pose = pose_with(
        hands=[(0, 0, 40, 60, 0.9), (0, 1, 100, 60, 0.9), (1, 0, 150, 100, 0.9), (1, 5, 150, 40, 0.9)],
        face=[(30, 20, 100, 0.9)],
    )
    image = draw_pose(pose, 0)
    assert colour(image, 40, 60) == colour(image, 100, 60) == (0, 0, 255)  # hand keypoints: blue
    assert colour(image, 70, 60) == HAND_COLORS[0] == (255, 0, 0)  # left hand, edge 0 (wrist -> thumb)
    assert colour(image, 150, 70) == HAND_COLORS[4]  # right hand, edge 4 (wrist -> index finger)
    assert colour(image, 20, 100) == colour(image, 23, 100) == (255, 255, 255)  # face: white, radius 3
    assert colour(image, 24, 100) == (0, 0, 0)
    no_hands = draw_pose(pose, 0, hands=False)
    assert colour(no_hands, 70, 60) == colour(no_hands, 40, 60) == (0, 0, 0) and colour(no_hands, 20, 100) != (0, 0, 0)
    no_face = draw_pose(pose, 0, face=False)
    assert colour(no_face, 20, 100) == (0, 0, 0) and colour(no_face, 40, 60) == (0, 0, 255)
    assert not draw_pose(pose, 0, hands=False, face=False).any()


def test_canvas_kept_where_nothing_is_drawn():
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    before = photo.copy()
    image = draw_pose(pose_with(body=[(NECK, 60, 50, 0.9), (R_SHOULDER, 120, 50, 0.9)]), 0, canvas=photo)
    assert np.array_equal(photo, before)  # the canvas itself is not changed
    plain = draw_pose(pose_with(body=[(NECK, 60, 50, 0.9), (R_SHOULDER, 120, 50, 0.9)]), 0)
    mask = drawn(plain)
    assert np.array_equal(image[~mask], photo[~mask]) and np.array_equal(image[mask], plain[mask])
    with pytest.raises(ValueError):
        draw_pose(pose_with(), 0, size=(W + 1, H), canvas=photo)


def test_people_frames_and_iteration():
    pose = PoseSequence.empty(3, 2, W, H)
    pose.body[1, 1, NOSE] = (100, 60, 1.0)  # second person, second frame only
    frames = list(iter_rendered(pose))
    assert len(frames) == 3 and not frames[0].any() and not frames[2].any()
    assert colour(frames[1], 100, 60) == BODY_COLORS[NOSE]
    with pytest.raises(IndexError):
        draw_pose(pose, 3)


def test_render_video_frame_count(tmp_path):
    pose = PoseSequence.empty(5, 1, 64, 48, fps=12.0)
    pose.body[:, 0, NOSE] = (30, 20, 1.0)
    path = render_video(pose, tmp_path / "poses.mp4", progress=False)
    info = probe_frames(path)
    assert path == tmp_path / "poses.mp4" and (info.num_frames, info.width, info.height) == (5, 64, 48)
    assert info.fps == pytest.approx(12.0)
    folder = render_video(pose, tmp_path / "frames", size=(32, 24), fps=5, progress=False)
    assert probe_frames(folder).num_frames == 5 and probe_frames(folder).width == 32


def test_deterministic():
    rng = np.random.default_rng(1)
    pose = PoseSequence.empty(1, 2, 320, 240)
    for name in ("body", "hands", "face"):
        array = getattr(pose, name)
        array[..., 0] = rng.uniform(-10, 330, array.shape[:-1])
        array[..., 1] = rng.uniform(-10, 250, array.shape[:-1])
        array[..., 2] = rng.uniform(0, 1, array.shape[:-1])
    first, second = draw_pose(pose, 0, size=(480, 360)), draw_pose(pose, 0, size=(480, 360))
    assert first.any() and np.array_equal(first, second)


def test_overlay():
    photo = np.full((H, W, 3), 100, np.uint8)
    rendered = draw_pose(pose_with(body=[(NOSE, 50, 40, 1.0)]), 0)
    mixed = overlay(photo, rendered, alpha=0.5)
    mask = drawn(rendered)
    assert np.array_equal(mixed[~mask], photo[~mask])
    assert colour(mixed, 50, 40) == (178, 50, 50)  # (100 + 255) / 2 rounded half to even, (100 + 0) / 2
    assert np.array_equal(overlay(photo, rendered, alpha=1.0)[mask], rendered[mask])
    with pytest.raises(ValueError):
        overlay(photo, rendered[:-1])


def test_tiny_canvas_and_degenerate_limbs_draw_without_error():
    """At tiny output sizes a limb can collapse to one or two pixels; it is still drawn, never an error."""
    pose = PoseSequence.empty(1, 1, 512, 512)
    pose.body[0, 0, 1] = (100, 100, 1.0)
    pose.body[0, 0, 2] = (100, 101, 1.0)  # a limb shorter than a pixel once scaled
    pose.body[0, 0, 5] = (300, 300, 1.0)
    for size in ((8, 8), (16, 24), (64, 88)):
        image = draw_pose(pose, 0, size, scale="auto")
        assert image.shape == (size[1], size[0], 3) and image.any()
