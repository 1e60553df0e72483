"""Evaluation metrics (animate_anyone.evaluation.metrics): perfect values, closed forms, scikit-image parity."""

from __future__ import annotations

import math

import numpy as np
import pytest

from animate_anyone.evaluation import metrics as M
from animate_anyone.evaluation.registry import METRICS, Kind, Metric, Settings, of_kind

skimage_metrics = pytest.importorskip("skimage.metrics")
skimage_data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def astronaut():
    return skimage_data.astronaut()  # (512, 512, 3) uint8


def _noisy(image, sigma, seed=0):
    rng = np.random.default_rng(seed)
    return np.clip(image.astype(np.float64) + rng.normal(0, sigma, image.shape), 0, 255).astype(np.uint8)


def _video(seed=0, shape=(3, 32, 40, 3)):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


# ----------------------------------------------------------------------------------------------- identity


def test_identity_gives_perfect_values():
    v = _video()
    assert M.l1(v, v) == 0.0
    assert M.psnr(v, v) == math.inf and M.psnr_video(v, v) == math.inf
    assert M.psnr_legacy_uint8(v, v) == M.LEGACY_PSNR_IDENTICAL == 100.0
    assert M.ssim(v, v) == pytest.approx(1.0, abs=1e-12) and M.ssim_gray(v, v) == pytest.approx(1.0, abs=1e-12)
    assert M.flicker(v, v) == 0.0
    keypoints = np.random.default_rng(1).uniform(0, 100, (5, 18, 3))
    keypoints[..., 2] = 1.0
    assert M.pck(keypoints, keypoints, 0.05) == 1.0


def test_registry_names_directions_and_perfect_values():
    frame_names = ["l1", "psnr", "psnr_video", "psnr_legacy_uint8", "ssim", "ssim_gray", "flicker"]
    assert list(METRICS) == [*frame_names, "lpips", "pck@0.05", "pck@0.1", "fid", "fid_vid", "fvd"]
    higher = {"psnr", "psnr_video", "psnr_legacy_uint8", "ssim", "ssim_gray", "pck@0.05", "pck@0.1"}
    assert {name for name, metric in METRICS.items() if metric.higher_is_better} == higher
    assert [(m.name, m.alpha) for m in of_kind(Kind.KEYPOINT)] == [("pck@0.05", 0.05), ("pck@0.1", 0.1)]
    v, w = _video(2), _video(3)
    perfect = {
        "l1": 0.0,
        "psnr": math.inf,
        "psnr_video": math.inf,
        "psnr_legacy_uint8": 100.0,
        "ssim": 1.0,
        "ssim_gray": 1.0,
        "flicker": 0.0,
    }
    frame_metrics = of_kind(Kind.PIXEL, Kind.TEMPORAL)
    assert [m.name for m in frame_metrics] == frame_names
    for metric in frame_metrics:  # per-frame function + reduction = the video-level function of metrics.py
        assert metric.score(v, v) == pytest.approx(perfect[metric.name], abs=1e-12), metric.name
        assert metric.score(v, w) == pytest.approx(getattr(M, metric.name)(v, w), rel=1e-12), metric.name
    kp = np.zeros((2, 18, 3))
    kp[:, :, :2] = np.arange(36).reshape(2, 18, 1) * 3
    kp[:, :, 2] = 1
    assert all(M.pck(kp, kp, m.alpha) == 1.0 for m in of_kind(Kind.KEYPOINT))


def test_registry_conventions_and_entries_are_checked():
    settings = Settings(lpips_net="vgg", clip_length=9, fvd_samples="clip")
    assert METRICS["fvd"].describe(settings).startswith("Frechet distance of Kinetics I3D logits of 9-frame clips")
    assert METRICS["fvd"].describe(settings).endswith("one sample per whole clip (partial clips dropped)")
    assert "{" not in "".join(m.describe(Settings()) for m in METRICS.values())
    assert METRICS["lpips"].network.describe(settings) == "LPIPS (vgg)"
    assert METRICS["fid"].network.weights == "inception_weights"  # evaluate()'s keyword (the CLI names its flag)
    assert METRICS["fvd"].per_clip(settings) and not METRICS["fid_vid"].per_clip(settings)
    with pytest.raises(ValueError, match="incomplete PIXEL entry"):
        Metric("x", Kind.PIXEL, higher_is_better=True, convention="no per-frame function")
    with pytest.raises(TypeError, match="not computed from two frame arrays"):
        METRICS["fid"].score(_video(), _video())


def test_inputs_are_checked():
    with pytest.raises(ValueError, match="shape"):
        M.l1(np.zeros((2, 8, 8, 3), np.uint8), np.zeros((3, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        M.psnr(np.zeros((8, 8, 3), np.int64), np.zeros((8, 8, 3), np.int64))
    with pytest.raises(ValueError, match="at least 7x7"):
        M.ssim(np.zeros((6, 20, 3)), np.zeros((6, 20, 3)))


# ----------------------------------------------------------------------------------------------- L1 / PSNR


@pytest.mark.parametrize("d", [0.1, 0.25, 1 / 255])
def test_psnr_and_l1_closed_form_constant_offset(d):
    a = np.full((2, 16, 16, 3), 0.5)
    b = a + d
    assert M.psnr(a, b) == pytest.approx(10 * math.log10(1 / d**2), rel=1e-12)
    assert M.psnr_video(a, b) == pytest.approx(10 * math.log10(1 / d**2), rel=1e-12)
    assert M.l1(a, b) == pytest.approx(d, rel=1e-12)


def test_uint8_input_is_scaled_to_unit_range():
    a = np.full((16, 16, 3), 100, np.uint8)
    b = np.full((16, 16, 3), 110, np.uint8)  # off by 10 levels -> 20 log10(255 / 10)
    assert M.psnr(a, b) == pytest.approx(20 * math.log10(25.5), rel=1e-12)
    assert M.psnr(a, b) == pytest.approx(M.psnr(a / 255.0, b / 255.0), rel=1e-12)
    assert M.l1(a, b) == pytest.approx(10 / 255, rel=1e-12)


def test_psnr_per_frame_mean_versus_per_video_mse():
    a = np.zeros((2, 8, 8, 3))
    b = a.copy()
    b[0] += 0.1  # MSE 1e-2 -> 20 dB
    b[1] += 0.01  # MSE 1e-4 -> 40 dB
    np.testing.assert_allclose(M.psnr_frames(a, b), [20.0, 40.0], rtol=1e-12)
    assert M.psnr(a, b) == pytest.approx(30.0, rel=1e-12)  # default: mean of the per-frame dB values
    assert M.psnr_video(a, b) == pytest.approx(10 * math.log10(1 / ((1e-2 + 1e-4) / 2)), rel=1e-12)  # 22.97 dB
    assert M.psnr_video(a, b) < M.psnr(a, b)
    b[1] = a[1]  # one identical frame: its PSNR is inf, and so is the mean over frames
    assert M.psnr(a, b) == math.inf and M.psnr_video(a, b) == pytest.approx(10 * math.log10(2 / 1e-2))


def test_legacy_psnr_reproduces_uint8_wraparound():
    zero, one = np.zeros((8, 8, 3), np.uint8), np.ones((8, 8, 3), np.uint8)
    assert (M.uint8_wrapped_difference(zero, one) == 255).all()  # 0 - 1 wraps to 255 in uint8
    # 255 ** 2 wraps too (65025 mod 256 = 1): an error of one level still gives MSE 1, the correct value
    assert M.psnr_legacy_uint8(zero, one) == pytest.approx(20 * math.log10(255), rel=1e-12)
    assert M.psnr(zero, one) == pytest.approx(20 * math.log10(255), rel=1e-12)
    # off by 16: 256 wraps to 0 -> "identical" (100 dB) instead of 24.08 dB
    sixteen = np.full((8, 8, 3), 16, np.uint8)
    assert M.psnr_legacy_uint8(zero, sixteen) == 100.0
    assert M.psnr(zero, sixteen) == pytest.approx(20 * math.log10(255 / 16), rel=1e-12)
    # off by 20: 400 wraps to 144 = 12^2
    twenty = np.full((8, 8, 3), 20, np.uint8)
    assert M.psnr_legacy_uint8(zero, twenty) == pytest.approx(20 * math.log10(255 / 12), rel=1e-12)
    assert M.psnr(zero, twenty) == pytest.approx(20 * math.log10(255 / 20), rel=1e-12)


def test_legacy_psnr_equals_the_overflowing_numpy_expression():
    a, b = _video(3, (4, 24, 24, 3)), _video(4, (4, 24, 24, 3))
    expected = []
    for x, y in zip(a, b):
        mse = np.mean((x - y) ** 2)  # the legacy expression, on uint8 arrays
        expected.append(100.0 if mse == 0 else 20 * math.log10(255.0 / math.sqrt(mse)))
    np.testing.assert_allclose(M.psnr_legacy_uint8_frames(a, b), expected, rtol=1e-12)
    assert M.psnr_legacy_uint8(a, b) > 24.05 > M.psnr(a, b)  # the wrapped "PSNR" never goes below 24.05 dB
    assert M.psnr_legacy_uint8(a / 255.0, b / 255.0) == pytest.approx(M.psnr_legacy_uint8(a, b))  # floats are rounded


# ----------------------------------------------------------------------------------------------- SSIM

SETTINGS = [
    {},  # scikit-image defaults: 7x7 uniform window, sample covariance
    {"gaussian_weights": True, "use_sample_covariance": False},  # Wang et al. 2004
    {"gaussian_weights": True},
    {"win_size": 11},
]


@pytest.mark.parametrize("settings", SETTINGS)
def test_ssim_matches_skimage_on_random_images(settings):
    a = _video(5, (45, 52, 3))
    b = np.clip(a.astype(int) + np.random.default_rng(6).integers(-60, 60, a.shape), 0, 255).astype(np.uint8)
    expected = skimage_metrics.structural_similarity(a / 255.0, b / 255.0, channel_axis=-1, data_range=1.0, **settings)
    assert M.ssim(a, b, **settings) == pytest.approx(expected, abs=1e-4)
    assert abs(M.ssim(a, b, **settings) - expected) < 1e-10  # in fact equal to float64 rounding
    expected_8bit = skimage_metrics.structural_similarity(a, b, channel_axis=-1, data_range=255, **settings)
    assert M.ssim(a, b, **settings) == pytest.approx(expected_8bit, abs=1e-10)


@pytest.mark.parametrize("settings", SETTINGS[:2])
def test_ssim_matches_skimage_on_a_photograph(astronaut, settings):
    noisy = _noisy(astronaut, 20)
    expected = skimage_metrics.structural_similarity(noisy, astronaut, channel_axis=-1, data_range=255, **settings)
    assert M.ssim(noisy, astronaut, **settings) == pytest.approx(expected, abs=1e-4)
    assert 0.2 < expected < 0.9


def test_ssim_of_a_video_is_the_mean_of_its_frames(astronaut):
    small = astronaut[::4, ::4]
    gt = np.stack([small, np.roll(small, 5, axis=0), np.roll(small, 9, axis=1)])
    pred = np.stack([_noisy(f, s, i) for i, (f, s) in enumerate(zip(gt, (5, 15, 30)))])
    per_frame = [skimage_metrics.structural_similarity(p, g, channel_axis=-1, data_range=255) for p, g in zip(pred, gt)]
    np.testing.assert_allclose(M.ssim_frames(pred, gt), per_frame, atol=1e-10)
    assert M.ssim(pred, gt) == pytest.approx(np.mean(per_frame), abs=1e-10)


def test_ssim_gray_matches_skimage_on_luma(astronaut):
    noisy = _noisy(astronaut, 25, seed=3)
    expected = skimage_metrics.structural_similarity(M.luma(noisy)[0], M.luma(astronaut)[0])  # uint8: data range 255
    assert M.ssim_gray(noisy, astronaut) == pytest.approx(expected, abs=1e-10)
    pixels = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [0, 0, 0]]], np.uint8)
    assert M.luma(pixels).tolist() == [[[76, 150, 29, 255, 0]]]  # BT.601, rounded as OpenCV's RGB2GRAY


# ----------------------------------------------------------------------------------------------- flicker


def test_flicker():
    gt = _video(7, (5, 12, 12, 3)) / 255.0 * 0.5 + 0.25
    assert M.flicker(gt, gt) == 0.0
    assert M.flicker(gt + 0.1, gt) == pytest.approx(0.0, abs=1e-15)  # a constant error is not flicker
    signs = np.array([1, -1, 1, -1, 1.0])[:, None, None, None]
    assert M.flicker(gt + 0.05 * signs, gt) == pytest.approx(0.1, rel=1e-12)  # alternating +-d: changes off by 2d
    np.testing.assert_allclose(M.flicker_pairs(gt + 0.05 * signs, gt), [0.1] * 4, rtol=1e-12)
    assert math.isnan(M.flicker(gt[:1], gt[:1]))


# ----------------------------------------------------------------------------------------------- PCK


def _skeleton(frames=4):
    """Visible keypoints spread over a 100 x 200 box (x in 50..150, y in 20..220)."""
    kp = np.zeros((frames, 18, 3))
    kp[..., 0] = np.linspace(50, 150, 18)
    kp[..., 1] = np.linspace(20, 220, 18)
    kp[..., 2] = 0.9
    return kp


def test_pck_on_constructed_keypoints():
    ref = _skeleton()
    pred = ref.copy()
    pred[:, 0, 0] += 15  # within 0.1 * 200 = 20 px, not within 0.05 * 200 = 10 px
    pred[:, 1, 1] += 25  # outside both
    pred[:, 2] = 0  # not detected: wrong
    assert M.pck(pred, ref, 0.1) == pytest.approx(16 / 18)
    assert M.pck(pred, ref, 0.05) == pytest.approx(15 / 18)
    assert M.pck(pred, ref, METRICS["pck@0.1"].alpha) == M.pck(pred, ref, 0.1)
    assert M.pck_counts(pred, ref, 0.1) == (4 * 16, 4 * 18)


def test_pck_counts_only_keypoints_visible_in_the_driving_pose():
    ref = _skeleton(2)
    ref[:, 5:, :] = 0  # missing in the driving pose (x = y = conf = 0)
    pred = ref.copy()
    pred[:, 5:, :2] = 999  # whatever is predicted there does not count
    pred[:, 5:, 2] = 1
    assert M.pck_counts(pred, ref, 0.05) == (2 * 5, 2 * 5)
    # the box comes from the visible points only: x 50..73.5, y 20..67 -> side 47, 0.1 * 47 = 4.7 px
    pred[:, 0, 0] += 5
    assert M.pck(pred, ref, 0.1) == pytest.approx(8 / 10)


def test_pck_leaves_out_frames_without_a_box():
    ref = _skeleton(3)
    ref[1, 1:] = 0  # one visible point: no box, frame left out
    ref[2] = 0  # nobody
    pred = ref.copy()
    assert M.pck_counts(pred, ref, 0.1) == (18, 18)
    assert math.isnan(M.pck(pred[2:], ref[2:], 0.1))
    with pytest.raises(ValueError, match="same"):
        M.pck(pred[:, :17], ref, 0.1)
    with pytest.raises(ValueError, match="alpha"):
        M.pck(pred, ref, 0.0)


def test_pck_with_mediapipe_on_the_astronaut(astronaut):
    pytest.importorskip("mediapipe")
    from animate_anyone.pose.extract import extract_image

    clean = extract_image(astronaut).body[:, 0]  # (1, 18, 3)
    assert (clean[..., 2] > 0).sum() >= 8
    assert M.pck(clean, clean, 0.05) == 1.0
    noisy = extract_image(_noisy(astronaut, 8)).body[:, 0]  # the same person under mild noise: same keypoints
    assert M.pck(noisy, clean, 0.1) >= 0.9
    shifted = extract_image(np.roll(astronaut, 80, axis=1)).body[:, 0]  # the person moved 80 px right
    assert M.pck(shifted, clean, 0.05) <= 0.2
    shifted[..., 0] -= 80  # moved back, it matches again
    assert M.pck(shifted, clean, 0.1) >= 0.9


@pytest.mark.gpu
def test_ssim_on_cuda_equals_cpu(astronaut):
    noisy = _noisy(astronaut, 20)
    assert M.ssim(noisy, astronaut, device="cuda") == pytest.approx(M.ssim(noisy, astronaut), abs=1e-12)
    assert M.ssim_gray(noisy, astronaut, device="cuda") == pytest.approx(M.ssim_gray(noisy, astronaut), abs=1e-12)
