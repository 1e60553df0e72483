"""Whole-body keypoints (body, hands, face) with DWPose on onnxruntime (the ``pose`` extra: :data:`INSTALL_HINT`).

Two ONNX files, the ones the public DWPose reproductions use; nothing is downloaded, give their paths as
arguments or in the environment variables ``ANIMATE_ANYONE_DWPOSE_DET`` / ``ANIMATE_ANYONE_DWPOSE_POSE``:

* ``yolox_l.onnx``, a YOLOX-L person detector: input (1, 3, 640, 640) float, output (1, 8400, 85) raw YOLOX
  predictions per anchor point of the stride 8, 16 and 32 grids: (dx, dy, log w, log h, objectness, 80 class
  scores), objectness and class scores already through a sigmoid.
* ``dw-ll_ucoco_384.onnx``, an RTMPose whole-body model: input (1, 3, 384, 288), outputs SimCC ``simcc_x``
  (1, 133, 576) and ``simcc_y`` (1, 133, 768): per keypoint a score along x and y at half-pixel bins
  (split ratio 2) of the 288 x 384 crop.

Each file's signature is checked on load; a different model is a ``ValueError`` naming the file.

Pipeline per frame (the facts of the public ONNX pipelines, implemented here with numpy and PIL):

1. Detection. The image, in BGR channel order as those pipelines feed it, is resized by
   r = min(640 / h, 640 / w) (PIL bilinear, which unlike OpenCV's averages when shrinking) into the
   top-left corner of a 640 x 640 canvas of value 114 and fed as float 0..255. Anchor (gx, gy) at
   stride s decodes to centre ((dx + gx) s, (dy + gy) s), size (exp(log w) s, exp(log h) s); person
   score = objectness x class-0 score. Boxes scoring above ``det_threshold`` (0.3) go through NMS
   (IoU 0.45), then are divided by r back to image pixels.
2. Pose, per box: centre c and size (w, h) x 1.25, widened or heightened to the 288:384 aspect; the crop
   maps that rectangle onto 288 x 384 (bilinear, black outside the image), BGR, normalised with
   mean (123.675, 116.28, 103.53) and std (58.395, 57.12, 57.375).
3. Decoding: argmax of each SimCC vector / 2 -> crop pixel; score = the smaller of the two maxima. Back to
   the image: p = crop / (288, 384) x size + c - size / 2.
4. COCO-WholeBody 133 -> the format: body 0..16 (COCO-17) reordered to OpenPose-18 with neck = midpoint of
   the shoulders (confidence the smaller of the two, only if both are kept), feet 17..22 dropped,
   face 23..90 (68), left hand 91..111, right hand 112..132 (0-based, the person's left and right; the
   reproductions, having inserted the neck at 17, slice them as 24:92, 92:113, 113:134). Confidence =
   score clipped to [0, 1]; a point scoring not above ``min_confidence`` (0.3, as the reproductions) or
   lying outside the image is missing (x = y = confidence = 0).

People come out largest box first.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from ..extras import install_hint
from .keypoints import BODY_POINTS

INSTALL_HINT = install_hint("pose")
DET_ENV, POSE_ENV = "ANIMATE_ANYONE_DWPOSE_DET", "ANIMATE_ANYONE_DWPOSE_POSE"
DET_FILE, POSE_FILE = "yolox_l.onnx", "dw-ll_ucoco_384.onnx"

DET_SIZE = (640, 640)  # (height, width)
DET_STRIDES = (8, 16, 32)
DET_CHANNELS = 85  # 4 box + objectness + 80 COCO classes; person is class 0
DET_ANCHORS = sum((DET_SIZE[0] // s) * (DET_SIZE[1] // s) for s in DET_STRIDES)  # 8400
PAD_VALUE = 114
POSE_SIZE = (384, 288)  # (height, width)
SIMCC_SPLIT = 2.0
BBOX_PADDING = 1.25
WHOLEBODY_POINTS = 133
MEAN = np.array([123.675, 116.28, 103.53], np.float32)
STD = np.array([58.395, 57.12, 57.375], np.float32)

# OpenPose body index -> COCO-17 index (None: the neck, computed). COCO: 0 nose, 1/2 left/right eye,
# 3/4 ears, 5/6 shoulders, 7/8 elbows, 9/10 wrists, 11/12 hips, 13/14 knees, 15/16 ankles (left first).
OPENPOSE_FROM_COCO: tuple[int | None, ...] = (0, None, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3)
FACE_SLICE, LEFT_HAND_SLICE, RIGHT_HAND_SLICE = slice(23, 91), slice(91, 112), slice(112, 133)
NECK = 1


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError as exc:
        raise ImportError(
            f"the 'dwpose' pose backend needs onnxruntime, which is not installed: {INSTALL_HINT}"
        ) from exc
    return onnxruntime


def resolve_model(path: str | os.PathLike[str] | None, env: str, filename: str, what: str) -> Path:
    """The model path from the argument, else from ``$env``; clear errors when neither or a missing file."""
    source = "argument"
    if path is None or str(path) == "":
        path, source = os.environ.get(env) or None, f"${env}"
    if path is None:
        raise ValueError(f"no DWPose {what} model given: pass its path or set {env} to the path of {filename}")
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"DWPose {what} model {path} (from {source}) does not exist; {env} or the "
            f"argument should name the file {filename}"
        )
    return path


# ----------------------------------------------------------------------------------------------- detection


def letterbox(rgb: np.ndarray, size: tuple[int, int] = DET_SIZE) -> tuple[np.ndarray, float]:
    """The detector's input (3, H, W) float32 BGR 0..255 and the ratio r: image pixel x r = input pixel."""
    height, width = rgb.shape[:2]
    ratio = min(size[0] / height, size[1] / width)
    new_w, new_h = max(1, int(width * ratio)), max(1, int(height * ratio))
    canvas = np.full((size[0], size[1], 3), PAD_VALUE, np.uint8)
    canvas[:new_h, :new_w] = np.asarray(Image.fromarray(rgb).resize((new_w, new_h), Image.Resampling.BILINEAR))
    return np.ascontiguousarray(canvas[..., ::-1].transpose(2, 0, 1), dtype=np.float32), ratio


def decode_yolox(
    raw: np.ndarray, size: tuple[int, int] = DET_SIZE, strides=DET_STRIDES
) -> tuple[np.ndarray, np.ndarray]:
    """(N, 85) raw predictions -> boxes (N, 4) x1, y1, x2, y2 in input pixels and person scores (N,)."""
    grids, steps = [], []
    for stride in strides:
        gh, gw = size[0] // stride, size[1] // stride
        gy, gx = np.mgrid[:gh, :gw]
        grids.append(np.stack([gx.ravel(), gy.ravel()], axis=1))
        steps.append(np.full(gh * gw, stride))
    grid, step = np.concatenate(grids).astype(np.float64), np.concatenate(steps).astype(np.float64)[:, None]
    raw = np.asarray(raw, np.float64)
    if raw.shape != (len(grid), DET_CHANNELS):
        raise ValueError(
            f"detector output has {raw.shape[0]} rows of {raw.shape[-1]}; a {size[1]}x{size[0]} "
            f"YOLOX input needs {len(grid)} of {DET_CHANNELS}"
        )
    centre = (raw[:, :2] + grid) * step
    half = np.exp(np.clip(raw[:, 2:4], -30.0, 30.0)) * step / 2
    return np.concatenate([centre - half, centre + half], axis=1), raw[:, 4] * raw[:, 5]


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best first."""
    order = np.argsort(-scores, kind="stable")
    area = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(best)
        lo, hi = np.maximum(boxes[best, :2], boxes[rest, :2]), np.minimum(boxes[best, 2:], boxes[rest, 2:])
        inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
        overlap = inter / np.maximum(area[best] + area[rest] - inter, 1e-9)
        order = rest[overlap <= iou]
    return np.array(keep, dtype=np.int64)


# ---------------------------------------------------------------------------------------------------- pose


def crop_box(
    box: np.ndarray, size: tuple[int, int] = POSE_SIZE, padding: float = BBOX_PADDING
) -> tuple[np.ndarray, np.ndarray]:
    """Centre (2,) and size (2,) (w, h) of the image rectangle a box's crop covers: padded, at the crop aspect."""
    x1, y1, x2, y2 = np.asarray(box, np.float64)
    centre = np.array([(x1 + x2) / 2, (y1 + y2) / 2])
    width, height = (x2 - x1) * padding, (y2 - y1) * padding
    aspect = size[1] / size[0]
    if width > height * aspect:
        height = width / aspect
    else:
        width = height * aspect
    return centre, np.array([max(width, 1e-6), max(height, 1e-6)])


def affine_crop(
    rgb: np.ndarray, centre: np.ndarray, scale: np.ndarray, size: tuple[int, int] = POSE_SIZE
) -> np.ndarray:
    """The (H, W, 3) uint8 crop: image point p lands on (p - centre) x W / scale_w + (W / 2, H / 2).

    Pixel centres at integer coordinates, as OpenCV's warpAffine; PIL's transform works in pixel-area
    coordinates (centres at +0.5), hence the half-pixel terms.
    """
    out_h, out_w = size
    inv = scale[0] / out_w  # image pixels per crop pixel (the same along y: scale has the crop's aspect)
    offset_x = centre[0] - out_w / 2 * inv + 0.5 - 0.5 * inv
    offset_y = centre[1] - out_h / 2 * inv + 0.5 - 0.5 * inv
    image = Image.fromarray(rgb)
    crop = image.transform(
        (out_w, out_h),
        Image.Transform.AFFINE,
        (inv, 0.0, offset_x, 0.0, inv, offset_y),
        resample=Image.Resampling.BILINEAR,
        fillcolor=(0, 0, 0),
    )
    return np.asarray(crop)


def pose_input(crop_rgb: np.ndarray) -> np.ndarray:
    """(1, 3, H, W) float32: the crop in BGR order, normalised with MEAN and STD."""
    bgr = crop_rgb[..., ::-1].astype(np.float32)
    return np.ascontiguousarray(((bgr - MEAN) / STD).transpose(2, 0, 1)[None])


def decode_simcc(simcc_x: np.ndarray, simcc_y: np.ndarray, split: float = SIMCC_SPLIT) -> tuple[np.ndarray, np.ndarray]:
    """(K, Wx), (K, Wy) -> crop locations (K, 2) and scores (K,); a location of a score <= 0 is -1."""
    locs = np.stack([np.argmax(simcc_x, axis=-1), np.argmax(simcc_y, axis=-1)], axis=-1).astype(np.float64) / split
    scores = np.minimum(np.max(simcc_x, axis=-1), np.max(simcc_y, axis=-1)).astype(np.float64)
    locs[scores <= 0] = -1.0
    return locs, scores


def wholebody_to_format(
    keypoints: np.ndarray, scores: np.ndarray, width: int, height: int, min_confidence: float = 0.3
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(P, 133, 2) image pixels and (P, 133) scores -> body (P, 18, 3), hands (P, 2, 21, 3), face (P, 68, 3)."""
    keypoints, scores = np.asarray(keypoints, np.float64), np.asarray(scores, np.float64)
    people = keypoints.shape[0]
    points = np.concatenate([keypoints, np.clip(np.nan_to_num(scores), 0, 1)[..., None]], axis=-1)
    x, y = points[..., 0], points[..., 1]
    keep = (points[..., 2] > max(min_confidence, 0.0)) & (x >= 0) & (x < width) & (y >= 0) & (y < height)
    points[~keep] = 0.0
    body = np.zeros((people, BODY_POINTS, 3))
    for target, source in enumerate(OPENPOSE_FROM_COCO):
        if source is not None:
            body[:, target] = points[:, source]
    right, left = body[:, 2], body[:, 5]
    both = (right[:, 2] > 0) & (left[:, 2] > 0)
    body[both, NECK] = np.concatenate(
        [(right[both, :2] + left[both, :2]) / 2, np.minimum(right[both, 2:], left[both, 2:])], axis=1
    )
    hands = np.stack([points[:, LEFT_HAND_SLICE], points[:, RIGHT_HAND_SLICE]], axis=1)
    return body.astype(np.float32), hands.astype(np.float32), points[:, FACE_SLICE].astype(np.float32)


# -------------------------------------------------------------------------------------- model signatures


def _dims(shape) -> tuple[int | None, ...]:
    return tuple(d if isinstance(d, int) and d > 0 else None for d in shape)


def _fits(actual: tuple, expected: tuple) -> bool:
    return len(actual) == len(expected) and all(a is None or e is None or a == e for a, e in zip(actual, expected))


def _describe(args) -> str:
    return ", ".join(f"{a.name} {a.type} {list(a.shape)}" for a in args) or "nothing"


def _check_signature(session, path: Path, inputs: list[tuple], outputs: list[tuple], filename: str) -> None:
    """Each (rank-and-size) pattern must fit the session's inputs / outputs, in order; else a ValueError."""
    got_in, got_out = session.get_inputs(), session.get_outputs()
    ok = len(got_in) == len(inputs) and len(got_out) == len(outputs)
    ok = ok and all(_fits(_dims(a.shape), e) and a.type == "tensor(float)" for a, e in zip(got_in, inputs))
    ok = ok and all(_fits(_dims(a.shape), e) for a, e in zip(got_out, outputs))
    if not ok:
        fmt = lambda shapes: ", ".join("(" + ", ".join("?" if d is None else str(d) for d in s) + ")" for s in shapes)  # noqa: E731
        raise ValueError(
            f"{path}: wrong model signature: it has inputs [{_describe(got_in)}] and outputs [{_describe(got_out)}]; "
            f"expected {filename}: float input {fmt(inputs)} and outputs {fmt(outputs)}"
        )


def _session(path: Path, providers, threads: int | None):
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=providers or ["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own types (InvalidProtobuf, Fail, ...)
        raise ValueError(f"{path}: not a loadable ONNX model ({type(exc).__name__}: {exc})") from exc


class DWPose:
    """Whole-body extractor: ``extractor(rgb) -> (body (P, 18, 3), hands (P, 2, 21, 3), face (P, 68, 3))``.

    ``det_model`` / ``pose_model``: paths of ``yolox_l.onnx`` / ``dw-ll_ucoco_384.onnx``, else the environment
    variables ``ANIMATE_ANYONE_DWPOSE_DET`` / ``ANIMATE_ANYONE_DWPOSE_POSE``. People are ordered by box area,
    largest first; P = 0 when nobody is found.
    """

    name = "dwpose"

    def __init__(
        self,
        det_model: str | os.PathLike[str] | None = None,
        pose_model: str | os.PathLike[str] | None = None,
        *,
        det_threshold: float = 0.3,
        nms_iou: float = 0.45,
        min_confidence: float = 0.3,
        providers: list[str] | None = None,
        threads: int | None = None,
    ) -> None:
        import_onnxruntime()
        self.det_path = resolve_model(det_model, DET_ENV, DET_FILE, "detector")
        self.pose_path = resolve_model(pose_model, POSE_ENV, POSE_FILE, "pose")
        self.det_threshold, self.nms_iou, self.min_confidence = (
            float(det_threshold),
            float(nms_iou),
            float(min_confidence),
        )
        self.det = _session(self.det_path, providers, threads)
        _check_signature(self.det, self.det_path, [(None, 3, *DET_SIZE)], [(None, DET_ANCHORS, DET_CHANNELS)], DET_FILE)
        self.pose = _session(self.pose_path, providers, threads)
        simcc = [
            (None, WHOLEBODY_POINTS, int(POSE_SIZE[1] * SIMCC_SPLIT)),
            (None, WHOLEBODY_POINTS, int(POSE_SIZE[0] * SIMCC_SPLIT)),
        ]
        _check_signature(self.pose, self.pose_path, [(None, 3, *POSE_SIZE)], simcc, POSE_FILE)
        names = [o.name for o in self.pose.get_outputs()]
        self._simcc_order = (
            [names.index("simcc_x"), names.index("simcc_y")] if {"simcc_x", "simcc_y"} <= set(names) else [0, 1]
        )

    def detect(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """People boxes (N, 4) x1, y1, x2, y2 in image pixels (clipped to it) and their scores (N,), best first."""
        rgb = _check_frame(rgb)
        tensor, ratio = letterbox(rgb)
        (raw,) = self.det.run(None, {self.det.get_inputs()[0].name: tensor[None]})[:1]
        raw = np.asarray(raw)
        if raw.ndim != 3 or raw.shape[0] != 1:
            raise ValueError(f"{self.det_path}: detector output has shape {raw.shape}; expected (1, N, {DET_CHANNELS})")
        boxes, scores = decode_yolox(raw[0])
        chosen = scores > self.det_threshold
        boxes, scores = boxes[chosen], scores[chosen]
        kept = nms(boxes, scores, self.nms_iou)
        boxes, scores = boxes[kept] / ratio, scores[kept]
        height, width = rgb.shape[:2]
        boxes = np.clip(boxes, 0, [width, height, width, height])
        real = (boxes[:, 2] - boxes[:, 0] >= 1) & (boxes[:, 3] - boxes[:, 1] >= 1)
        return boxes[real].astype(np.float32), scores[real].astype(np.float32)

    def estimate(self, rgb: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Whole-body keypoints (N, 133, 2) in image pixels and their raw scores (N, 133), one per box."""
        rgb = _check_frame(rgb)
        name = self.pose.get_inputs()[0].name
        points, scores = np.zeros((len(boxes), WHOLEBODY_POINTS, 2)), np.zeros((len(boxes), WHOLEBODY_POINTS))
        for i, box in enumerate(np.asarray(boxes, np.float64).reshape(-1, 4)):
            centre, scale = crop_box(box)
            outputs = self.pose.run(None, {name: pose_input(affine_crop(rgb, centre, scale))})
            simcc_x, simcc_y = (np.asarray(outputs[k])[0] for k in self._simcc_order)
            locs, scores[i] = decode_simcc(simcc_x, simcc_y)
            points[i] = locs / np.array([POSE_SIZE[1], POSE_SIZE[0]]) * scale + centre - scale / 2
        return points, scores

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rgb = _check_frame(rgb)
        boxes, _ = self.detect(rgb)
        boxes = boxes[np.argsort(-(boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), kind="stable")]
        points, scores = self.estimate(rgb, boxes)
        body, hands, face = wholebody_to_format(points, scores, rgb.shape[1], rgb.shape[0], self.min_confidence)
        found = body[..., 2].any(axis=1) | hands[..., 2].any(axis=(1, 2)) | face[..., 2].any(axis=1)
        return body[found], hands[found], face[found]

    def close(self) -> None:
        self.det = self.pose = None

    def __enter__(self) -> DWPose:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_frame(rgb: np.ndarray) -> np.ndarray:
    rgb = np.ascontiguousarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"frames must be HxWx3 uint8 RGB, got {rgb.dtype} {rgb.shape}")
    return rgb
