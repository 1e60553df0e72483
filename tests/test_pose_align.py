"""Retargeting a driving skeleton onto a reference's proportions (pose/align.py), on constructed skeletons."""

from __future__ import annotations

import numpy as np
import pytest

from animate_anyone.pose.align import LIMBS, limb_lengths, retarget, smooth
from animate_anyone.pose.keypoints import PoseSequence

# Direction (radians, image coordinates: y down) of the limb into each child joint in the rest pose (a T-pose).
REST = {
    0: -np.pi / 2,
    14: -3 * np.pi / 4,
    15: -np.pi / 4,
    16: np.pi,
    17: 0.0,
    2: np.pi,
    3: np.pi,
    4: np.pi,
    5: 0.0,
    6: 0.0,
    7: 0.0,
    8: 1.75,
    9: np.pi / 2,
    10: np.pi / 2,
    11: 1.39,
    12: np.pi / 2,
    13: np.pi / 2,
}
# Segment lengths (pixels), the same on both sides.
DRIVER = dict(head=40, eye=12, ear=14, shoulder=45, upper_arm=55, forearm=50, torso=110, thigh=90, shin=85)
SEGMENT = {
    0: "head",
    14: "eye",
    15: "eye",
    16: "ear",
    17: "ear",
    2: "shoulder",
    5: "shoulder",
    3: "upper_arm",
    6: "upper_arm",
    4: "forearm",
    7: "forearm",
    8: "torso",
    11: "torso",
    9: "thigh",
    12: "thigh",
    10: "shin",
    13: "shin",
}
LEGS = [i for i, (_, c) in enumerate(LIMBS) if c in (8, 9, 10, 11, 12, 13)]
TORSO = [LIMBS.index(e) for e in ((1, 2), (1, 5), (1, 8), (1, 11))]
FOREARM_R = LIMBS.index((3, 4))


def _hand_template() -> np.ndarray:
    """21 hand points relative to the wrist, in units of the wrist -> middle knuckle (point 9) length."""
    pts = np.zeros((21, 2))
    for finger, angle in enumerate((-0.8, -0.4, 0.0, 0.3, 0.6)):
        for joint, radius in enumerate((1.0, 1.3, 1.55, 1.75)):
            pts[1 + 4 * finger + joint] = radius * np.array([np.cos(angle), np.sin(angle)])
    return pts


def _face_template() -> np.ndarray:
    """68 face points relative to the nose, in units of the jaw width (point 0 to point 16)."""
    pts = np.random.default_rng(7).uniform(-0.45, 0.45, (68, 2))
    pts[0], pts[16] = (-0.5, 0.1), (0.5, 0.1)
    return pts


HAND, FACE = _hand_template(), _face_template()


def skeleton(
    segments=DRIVER,
    frames=1,
    *,
    dance=0.0,
    seed=0,
    neck=(256.0, 150.0),
    travel=0.0,
    hand=20.0,
    face=30.0,
    width=512,
    height=512,
    fps=25.0,
) -> PoseSequence:
    """One person whose limbs rotate by joint angles (``dance`` rad amplitude) while the neck travels."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None]
    amp, phase = dance * rng.uniform(0.3, 1.0, len(LIMBS)), rng.uniform(0, 2 * np.pi, len(LIMBS))
    angles = np.array([REST[c] for _, c in LIMBS])[None] + amp * np.sin(2 * np.pi * t / 40 + phase)
    body = np.zeros((frames, 18, 3))
    wave = 2 * np.pi * t[:, 0] / 60
    body[:, 1, :2] = np.asarray(neck) + travel * np.stack([np.sin(wave), 0.3 * np.cos(wave)], -1)
    for i, (p, c) in enumerate(LIMBS):
        direction = np.stack([np.cos(angles[:, i]), np.sin(angles[:, i])], -1)
        body[:, c, :2] = body[:, p, :2] + segments[SEGMENT[c]] * direction
    hands = np.zeros((frames, 2, 21, 3))
    for side, (wrist, limb) in enumerate(((7, LIMBS.index((6, 7))), (4, FOREARM_R))):
        c, s = np.cos(angles[:, limb]), np.sin(angles[:, limb])
        rot = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)  # (frames, 2, 2)
        hands[:, side, :, :2] = body[:, None, wrist, :2] + hand * np.einsum("fij,kj->fki", rot, HAND)
    faces = np.zeros((frames, 68, 3))
    faces[..., :2] = body[:, None, 0, :2] + face * FACE
    for a in (body, hands, faces):
        a[..., 2] = 1.0
    return PoseSequence(body[:, None], hands[:, None], faces[:, None], width, height, fps)


def reference(**segments) -> PoseSequence:
    return skeleton({**DRIVER, **segments}, 1, neck=(384.0, 220.0), hand=28.0, face=45.0, width=768, height=1024)


def lengths_per_frame(pose: PoseSequence) -> np.ndarray:
    body = pose.body[:, 0].astype(np.float64)
    return np.stack([np.linalg.norm(body[:, c, :2] - body[:, p, :2], axis=-1) for p, c in LIMBS], -1)


def drop(pose: PoseSequence, where_body=None, where_hands=None, where_face=None) -> PoseSequence:
    """A copy with the masked keypoints missing (confidence 0, x = y = 0)."""
    body, hands, face = pose.body.copy(), pose.hands.copy(), pose.face.copy()
    for array, mask in ((body, where_body), (hands, where_hands), (face, where_face)):
        if mask is not None:
            array[mask] = 0.0
    return PoseSequence(body, hands, face, pose.width, pose.height, pose.fps)


def assert_missing_kept(out: PoseSequence, driver: PoseSequence, person: int = 0) -> None:
    for name in ("body", "hands", "face"):
        got, src = getattr(out, name)[:, 0], getattr(driver, name)[:, person]
        assert np.isfinite(got).all()
        missing = src[..., 2] == 0
        assert (got[missing] == 0).all(), f"{name}: a missing point came back"
        np.testing.assert_array_equal(got[..., 2], src[..., 2])


PROPORTIONS = dict(head=50, eye=15, ear=16, shoulder=60, upper_arm=80, forearm=70, torso=150, thigh=140, shin=130)


def test_limb_lengths_of_a_dancing_skeleton():
    lengths = limb_lengths(skeleton(frames=80, dance=0.7))
    np.testing.assert_allclose(lengths, [DRIVER[SEGMENT[c]] for _, c in LIMBS], rtol=1e-5)


@pytest.mark.parametrize("smoothing", [0.0, 1.0, 2.0])
def test_every_limb_takes_the_reference_length(smoothing):
    ref = reference(**PROPORTIONS)
    driver = skeleton(frames=120, dance=0.6, travel=40.0)
    out = retarget(driver, ref, smoothing=smoothing)
    ratio = lengths_per_frame(out) / limb_lengths(ref)[None]
    tol = 1e-4 if smoothing == 0 else 0.05
    np.testing.assert_allclose(ratio, 1.0, atol=tol)
    hand = np.linalg.norm(out.hands[:, 0, :, 9, :2] - out.hands[:, 0, :, 0, :2], axis=-1)
    np.testing.assert_allclose(hand / 28.0, 1.0, atol=tol)
    jaw = np.linalg.norm(out.face[:, 0, 16, :2] - out.face[:, 0, 0, :2], axis=-1)
    np.testing.assert_allclose(jaw / 45.0, 1.0, atol=tol)
    assert (out.width, out.height, out.fps, out.num_people, out.num_frames) == (768, 1024, 25.0, 1, 120)


def test_aligning_to_itself_is_the_identity():
    driver = skeleton(frames=60, dance=0.6, travel=30.0)
    out = retarget(driver, driver, smoothing=0)
    for name in ("body", "hands", "face"):
        np.testing.assert_allclose(getattr(out, name), getattr(driver, name), atol=1e-4)
    first = retarget(driver, driver.select([0]), smoothing=0)  # the usual one-frame reference
    np.testing.assert_allclose(first.body, driver.body, atol=1e-3)


@pytest.mark.parametrize("smoothing", [0.0, 1.0])
def test_scaling_and_translating_the_driver_changes_nothing(smoothing):
    ref = reference(**PROPORTIONS)
    driver = drop(skeleton(frames=50, dance=0.5, travel=20.0), where_body=(slice(10, 14), 0, 6))
    k, shift = 2.7, np.array([-130.0, 415.0])
    arrays = []
    for a in (driver.body, driver.hands, driver.face):
        b = a.copy()
        b[..., :2] = np.where(b[..., 2:] > 0, b[..., :2] * k + shift, 0.0)
        arrays.append(b)
    moved = PoseSequence(*arrays, width=1920, height=1080, fps=driver.fps)
    a, b = retarget(driver, ref, smoothing=smoothing), retarget(moved, ref, smoothing=smoothing)
    for name in ("body", "hands", "face"):
        np.testing.assert_allclose(getattr(b, name), getattr(a, name), atol=2e-3)


def test_missing_keypoints_stay_missing():
    rng = np.random.default_rng(3)
    driver = skeleton(frames=40, dance=0.6, travel=25.0)
    driver = drop(
        driver,
        rng.random(driver.body.shape[:3]) < 0.2,
        rng.random(driver.hands.shape[:4]) < 0.2,
        rng.random(driver.face.shape[:3]) < 0.2,
    )
    out = retarget(driver, reference(**PROPORTIONS))
    assert_missing_kept(out, driver)
    present = driver.body[:, 0, :, 2] > 0
    assert (out.body[:, 0, :, 2][present] > 0).all()


def test_a_limb_never_seen_in_the_driver():
    driver = skeleton(frames=30, dance=0.5)
    hands = np.zeros(driver.hands.shape[:4], bool)
    hands[:, :, 0] = True  # no left hand at all
    driver = drop(driver, where_body=(slice(None), slice(None), [6, 7]), where_hands=hands)
    lengths = limb_lengths(driver)
    assert np.isfinite(lengths).all()  # the left arm borrows the right arm's lengths
    assert lengths[LIMBS.index((6, 7))] == pytest.approx(DRIVER["forearm"], rel=1e-5)
    out = retarget(driver, reference(**PROPORTIONS))
    assert_missing_kept(out, driver)
    no_legs = drop(skeleton(frames=30, dance=0.5), where_body=(slice(None), slice(None), [8, 9, 10, 11, 12, 13]))
    assert np.isnan(limb_lengths(no_legs)[LEGS]).all()
    assert_missing_kept(retarget(no_legs, reference(**PROPORTIONS)), no_legs)


def test_half_body_reference_keeps_driver_legs_at_the_torso_scale():
    ref = reference(**PROPORTIONS)
    ref = drop(ref, where_body=(slice(None), slice(None), [9, 10, 12, 13]))  # hips seen, no knees or ankles
    driver = skeleton(frames=40, dance=0.5, travel=20.0)
    out = retarget(driver, ref, smoothing=0)
    assert_missing_kept(out, driver)
    ref_len, drv_len = limb_lengths(ref), limb_lengths(driver)
    torso = ref_len[TORSO].sum() / drv_len[TORSO].sum()
    got = lengths_per_frame(out)
    for i, (_, c) in enumerate(LIMBS):
        expected = drv_len[i] * torso if c in (9, 10, 12, 13) else ref_len[i]
        np.testing.assert_allclose(got[:, i], expected, rtol=1e-4)


def test_foreshortened_and_unsure_frames_do_not_change_the_length():
    rng = np.random.default_rng(5)
    driver = skeleton(frames=100, dance=0.4)
    body = driver.body.copy()
    frames = rng.permutation(100)
    short, unsure = frames[:30], frames[30:40]
    body[short, 0, 4, :2] = body[short, 0, 3, :2] + 0.5 * (body[short, 0, 4, :2] - body[short, 0, 3, :2])
    body[unsure, 0, 4, :2] = body[unsure, 0, 3, :2] + 2.0 * (body[unsure, 0, 4, :2] - body[unsure, 0, 3, :2])
    body[unsure, 0, 4, 2] = 0.1  # below the threshold: not measured, still moved
    driver = PoseSequence(body, driver.hands, driver.face, driver.width, driver.height, driver.fps)
    assert limb_lengths(driver)[FOREARM_R] == pytest.approx(DRIVER["forearm"], rel=1e-4)
    ref = reference(**PROPORTIONS)
    got = lengths_per_frame(retarget(driver, ref, smoothing=0))[:, FOREARM_R] / PROPORTIONS["forearm"]
    expected = np.ones(100)
    expected[short], expected[unsure] = 0.5, 2.0  # foreshortening is kept, per frame
    np.testing.assert_allclose(got, expected, rtol=1e-4)


def test_root_trajectory_scales_with_body_height():
    ref = reference(torso=132.0, thigh=135.0, shin=127.5, forearm=40.0)  # taller legs, shorter forearms
    driver = skeleton(frames=60, dance=0.3, travel=50.0)
    out = retarget(driver, ref, smoothing=0)
    height = lambda s: s["torso"] + s["thigh"] + s["shin"]  # noqa: E731
    ratio = height({**DRIVER, "torso": 132.0, "thigh": 135.0, "shin": 127.5}) / height(DRIVER)
    neck_in, neck_out = driver.body[:, 0, 1, :2].astype(np.float64), out.body[:, 0, 1, :2].astype(np.float64)
    # the anchor: the hips' middle x and the neck's y of the first frame; the driver's lands on the reference's
    anchor = lambda pose: np.array([pose.body[0, 0, [8, 11], 0].mean(), pose.body[0, 0, 1, 1]], np.float64)  # noqa: E731
    np.testing.assert_allclose(neck_out[0], anchor(ref) + ratio * (neck_in[0] - anchor(driver)), atol=1e-3)
    np.testing.assert_allclose(neck_out - neck_out[0], ratio * (neck_in - neck_in[0]), atol=1e-3)


def test_missing_parent_is_carried_by_the_nearest_present_ancestor():
    driver = skeleton(frames=30, dance=0.6, travel=20.0)
    gone = np.zeros(driver.body.shape[:3], bool)
    gone[3, 0, 1] = True  # no neck: the whole frame follows the root map
    gone[5:11, 0, 3] = gone[5:11, 0, 9] = True  # no right elbow or knee: wrist and ankle hang off shoulder and hip
    driver = drop(driver, where_body=gone)
    k = 2.0  # the reference is the driver's first frame at twice the size: the output is a similarity of the input
    big = {s: k * v for s, v in DRIVER.items()}
    ref = skeleton(big, 1, neck=(300.0, 400.0), hand=40.0, face=60.0, width=900, height=1200)
    out = retarget(driver, ref, smoothing=0)
    assert_missing_kept(out, driver)
    anchor = lambda pose: np.array([pose.body[0, 0, [8, 11], 0].mean(), pose.body[0, 0, 1, 1]], np.float64)  # noqa: E731
    for name in ("body", "hands", "face"):
        src, got = getattr(driver, name)[:, 0], getattr(out, name)[:, 0]
        here = src[..., 2] > 0
        expected = anchor(ref) + k * (src[..., :2].astype(np.float64) - anchor(driver))
        np.testing.assert_allclose(got[..., :2][here], expected[here], atol=2e-3)


def test_person_selection_and_empty_driver():
    ref, dancer = reference(**PROPORTIONS), skeleton(frames=20, dance=0.5)
    other = skeleton(frames=20, dance=0.2, seed=9, neck=(100.0, 100.0))
    both = (np.concatenate([getattr(other, n), getattr(dancer, n)], 1) for n in ("body", "hands", "face"))
    crowd = PoseSequence(*both, width=512, height=512, fps=12.0)
    a, b = retarget(crowd, ref, person=1), retarget(dancer, ref)
    np.testing.assert_allclose(a.body, b.body, atol=1e-5)
    assert (a.num_people, a.fps) == (1, 12.0)
    empty = retarget(dancer.select(slice(0, 0)), ref)
    assert empty.num_frames == 0 and (empty.width, empty.height) == (768, 1024)


def test_smooth_averages_present_points_only():
    frames = 30
    pose = PoseSequence.empty(frames, 1, 640, 480)
    body = pose.body.copy()
    t = np.arange(frames)
    body[:, 0, 0] = np.stack([10.0 + 3.0 * t, 50.0 + 0.5 * t, np.ones(frames)], -1)  # straight, steady track
    body[:, 0, 1] = np.stack([100.0 * np.ones(frames), 200.0 * np.ones(frames), np.ones(frames)], -1)
    body[[8, 15], 0, 1] = 0.0  # gaps in a still point must not pull it towards (0, 0)
    noisy = np.random.default_rng(1).normal(0, 2.0, (frames, 2))
    body[:, 0, 2, :2], body[:, 0, 2, 2] = np.array([300.0, 300.0]) + noisy, 0.8
    pose = PoseSequence(body, pose.hands, pose.face, 640, 480)
    assert np.array_equal(smooth(pose, 0).body, pose.body)
    out = smooth(pose, 1.0).body[:, 0]
    np.testing.assert_allclose(out[3:-3, 0], body[3:-3, 0, 0], atol=1e-3)  # linear motion is kept inside
    np.testing.assert_allclose(out[:, 1, :2][body[:, 0, 1, 2] > 0], [[100.0, 200.0]] * (frames - 2), atol=1e-4)
    assert (out[[8, 15], 1] == 0).all() and (out[:, 3:] == 0).all()
    assert np.std(out[:, 2, :2] - 300.0) < 0.7 * np.std(noisy)
    np.testing.assert_array_equal(out[..., 2], body[:, 0, :, 2])


def test_skipped_limbs_use_the_mean_scale_of_the_path():
    driver = skeleton(frames=20, dance=0.6)
    gone = np.zeros(driver.body.shape[:3], bool)
    gone[5:11, 0, 3] = True  # right elbow missing, right wrist seen
    driver = drop(driver, where_body=gone)
    out = retarget(driver, reference(**PROPORTIONS), smoothing=0)
    scale = (PROPORTIONS["upper_arm"] / DRIVER["upper_arm"] + PROPORTIONS["forearm"] / DRIVER["forearm"]) / 2
    src, got = driver.body[5:11, 0].astype(np.float64), out.body[5:11, 0].astype(np.float64)
    np.testing.assert_allclose(got[:, 4, :2], got[:, 2, :2] + scale * (src[:, 4, :2] - src[:, 2, :2]), atol=1e-3)


def test_the_anchor_uses_the_hips_only_when_both_skeletons_show_them():
    """A driver without hips in its first frame is anchored by the neck on both sides (never its neck on the
    reference's hips)."""
    driver = skeleton(frames=10, dance=0.5)
    gone = np.zeros(driver.body.shape[:3], bool)
    gone[0, 0, [8, 11]] = True  # no hips in the first frame
    driver = drop(driver, where_body=gone)
    ref = reference(**PROPORTIONS)
    out = retarget(driver, ref, smoothing=0)
    np.testing.assert_allclose(out.body[0, 0, 1, :2], ref.body[0, 0, 1, :2], atol=1e-4)  # neck on neck


def test_a_driving_video_is_read_after_the_reference_and_no_further_than_the_frames_used(monkeypatch, tmp_path):
    """Issue 40, work before a check: a reference without a person is said before the driving video is read, and a
    driving video is read only as far as the animation's frames."""
    import animate_anyone.pose.extract as extract
    import animate_anyone.pose.sequences as sequences

    asked = []

    def fake_extract(source, backend, count=None, **kwargs):
        asked.append(count)
        raise RuntimeError("the driving video was read")

    monkeypatch.setattr(extract, "extract_poses", fake_extract)
    monkeypatch.setattr(sequences, "reference_pose", lambda *a, **k: (_ for _ in ()).throw(ValueError("no person")))
    with pytest.raises(ValueError, match="no person"):
        sequences.animation_sequence(tmp_path / "dance.mp4", None, 24)
    assert asked == []
    monkeypatch.setattr(sequences, "reference_pose", lambda *a, **k: None)
    with pytest.raises(RuntimeError, match="was read"):
        sequences.animation_sequence(tmp_path / "dance.mp4", None, 24)
    assert asked == [24]
