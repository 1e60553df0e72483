"""``VideoPoseDataset``: training samples (target frames, their poses, a reference frame) from a dataset directory.

A sample is a pure function of its key ``(clip index, seed)``: every random choice is drawn, in a fixed order,
from ``np.random.default_rng((seed, index))`` (no global RNG, no torch RNG), so a training run that records
the keys it used reproduces its batches bitwise on resume. ``epoch_keys`` makes such keys.

Frames. ``frames`` target frames ``start, start + stride, ...`` spanning ``span = (frames - 1) * stride + 1``
frames, ``start`` uniform over the positions where the span fits. Clips shorter than ``span`` are left out
(counted in ``skipped``, one warning). The reference frame is uniform over the video's frames *outside* the
target span and at least ``reference_margin`` frames away from it; when no frame is that far, over the frames
outside the span; when the span is the whole video, over all frames (then it may be a target frame).
(Moore-AnimateAnyone draws it uniformly over the whole video in stage 2, and at least 30 frames away from the
target in stage 1; ``reference_margin=30`` reproduces the latter.)

Crop. A box with the output's aspect ratio, ``resolution = (width, height)``: with ``augment`` its size is a
uniform fraction in ``crop_scale`` (default 0.8-1.0) of the largest such box that fits the video frame and its
position uniform; without, the largest box, centred. The box is kept in *normalised* coordinates
(fractions of the frame) and applied to the video frame, and

* for a keypoint pose: to the keypoints (normalised by the keypoint file's own width/height), which are then
  drawn at the output size by ``pose.draw.draw_pose(..., scale="auto")``: the skeleton lies exactly on the
  cropped frame whatever size the keypoints were extracted at;
* for a rendered pose video / image folder: to its frames at their own size (a pose video of another size,
  even another aspect ratio, still aligns, provided it shows the whole video frame).

The reference frame gets its own box, drawn the same way. Crops are resampled with PIL bicubic (with the
area filter support PIL uses when shrinking) straight from the fractional box: no intermediate rounding.

Reading. Only the frames needed are decoded-to-RGB: indices are grouped into runs (gaps of at most
``READ_GAP`` frames are read through) and each run is one ``media.iter_frames(path, start=, count=)`` call.
Frames before a run are still decoded by the codec (exact, no key-frame seeking): long videos cost more per
sample; a folder of image frames as ``video`` is random access.
"""

from __future__ import annotations

import os
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..media import iter_frames
from ..pose.draw import draw_pose
from ..pose.keypoints import PoseSequence, load_pose
from .manifest import Clip, read_manifest

READ_GAP = 8  # decode through gaps of at most this many unwanted frames rather than starting a new read
POSE_CACHE = 32  # keypoint files kept in memory per dataset instance (per DataLoader worker)

PathLike = str | os.PathLike[str]
Box = tuple[float, float, float, float]  # (x0, y0, x1, y1) as fractions of the frame's width and height


@dataclass
class Sample:
    """One training example. ``f`` = ``frames``; ``H, W`` = the resolution."""

    pixels: torch.Tensor  # (3, f, H, W) float32 in [-1, 1]
    pose: torch.Tensor  # (3, f, H, W) float32 in [0, 1], RGB skeleton on black
    reference: torch.Tensor  # (3, H, W) float32 in [-1, 1]
    reference_image: np.ndarray  # (H, W, 3) uint8, the reference crop (for the CLIP image processor)
    clip_id: str
    frame_indices: list[int]  # the target frames' indices in the video
    reference_index: int  # the reference frame's index in the video
    box: Box  # the target crop, normalised
    reference_box: Box

    def to_dict(self) -> dict[str, Any]:
        """Tensors (``reference_image`` as a uint8 tensor) and plain values: what ``__getitem__`` returns."""
        return {
            "pixels": self.pixels,
            "pose": self.pose,
            "reference": self.reference,
            "reference_image": torch.from_numpy(np.ascontiguousarray(self.reference_image)),
            "clip_id": self.clip_id,
            "frame_indices": torch.tensor(self.frame_indices, dtype=torch.long),
            "reference_index": self.reference_index,
            "box": torch.tensor(self.box, dtype=torch.float64),
            "reference_box": torch.tensor(self.reference_box, dtype=torch.float64),
        }


class VideoPoseDataset(torch.utils.data.Dataset):
    """Samples of ``frames`` frames at ``stride`` from the clips of a dataset directory; see the module doc.

    Index it with ``(clip index, seed)`` keys (``dataset[3, 12345]``); ``len`` is the number of usable clips.
    ``resolution`` is ``(width, height)``.
    """

    def __init__(
        self,
        data_dir: PathLike,
        frames: int = 1,
        stride: int = 1,
        resolution: tuple[int, int] = (256, 384),
        augment: bool = True,
        *,
        crop_scale: tuple[float, float] = (0.8, 1.0),
        reference_margin: int = 0,
        check_files: bool = True,
    ) -> None:
        if frames < 1 or stride < 1:
            raise ValueError(f"frames and stride must be >= 1, got {frames} and {stride}")
        width, height = (int(v) for v in resolution)
        if width < 1 or height < 1:
            raise ValueError(f"resolution must be (width, height) >= 1, got {resolution}")
        low, high = (float(v) for v in crop_scale)
        if not 0 < low <= high <= 1:
            raise ValueError(f"crop_scale must satisfy 0 < low <= high <= 1, got {crop_scale}")
        if reference_margin < 0:
            raise ValueError(f"reference_margin must be >= 0, got {reference_margin}")
        self.data_dir = Path(data_dir)
        self.frames, self.stride, self.resolution, self.augment = (
            int(frames),
            int(stride),
            (width, height),
            bool(augment),
        )
        self.crop_scale, self.reference_margin = (low, high), int(reference_margin)
        self.span = (self.frames - 1) * self.stride + 1
        all_clips = read_manifest(self.data_dir, check_files=check_files)
        self.clips: list[Clip] = [c for c in all_clips if c.num_frames >= self.span]
        self.skipped: list[str] = [c.id for c in all_clips if c.num_frames < self.span]
        if self.skipped:
            warnings.warn(
                f"{self.data_dir}: skipped {len(self.skipped)} of {len(all_clips)} clips shorter than "
                f"{self.span} frames ({self.frames} frames at stride {self.stride})",
                stacklevel=2,
            )
        self._poses: OrderedDict[Path, PoseSequence] = OrderedDict()

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Any]:
        if not (isinstance(key, (tuple, list)) and len(key) == 2):
            raise TypeError(f"index a VideoPoseDataset with (clip index, seed), got {key!r}; see epoch_keys()")
        return self.sample(int(key[0]), int(key[1])).to_dict()

    # ------------------------------------------------------------------------------------------ sampling

    def choose(self, index: int, seed: int) -> tuple[list[int], int, Box, Box]:
        """The random choices of a sample: target frame indices, reference index, target box, reference box."""
        if not 0 <= index < len(self.clips):
            raise IndexError(f"clip index {index} out of range for {len(self.clips)} usable clips")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        clip = self.clips[index]
        rng = np.random.default_rng((seed, index))
        n = clip.num_frames
        start = int(rng.integers(0, n - self.span + 1))
        targets = [start + k * self.stride for k in range(self.frames)]
        end = start + self.span - 1
        reference = int(rng.choice(reference_candidates(n, start, end, self.reference_margin)))
        box = crop_box(rng, clip.width, clip.height, self.resolution, self.augment, self.crop_scale)
        ref_box = crop_box(rng, clip.width, clip.height, self.resolution, self.augment, self.crop_scale)
        return targets, reference, box, ref_box

    def sample(self, index: int, seed: int) -> Sample:
        """The sample of key ``(index, seed)`` as a ``Sample``."""
        targets, reference, box, ref_box = self.choose(index, seed)
        clip = self.clips[index]
        frames = read_frames(clip.video, sorted(set(targets) | {reference}), clip.id)
        size = self.resolution
        pixels = np.stack([crop_resize(frames[i], box, size) for i in targets])  # (f, H, W, 3) uint8
        ref_image = crop_resize(frames[reference], ref_box, size)
        if clip.pose_is_keypoints:
            keypoints = self._keypoints(clip)
            cropped = crop_keypoints(keypoints.select(targets), box, size)
            pose = np.stack([draw_pose(cropped, i, size, scale="auto") for i in range(len(targets))])
        else:
            rendered = read_frames(clip.pose, sorted(set(targets)), clip.id)
            pose = np.stack([crop_resize(rendered[i], box, size) for i in targets])
        return Sample(
            pixels=_signed(pixels).permute(3, 0, 1, 2).contiguous(),
            pose=(torch.from_numpy(pose).float() / 255.0).permute(3, 0, 1, 2).contiguous(),
            reference=_signed(ref_image).permute(2, 0, 1).contiguous(),
            reference_image=ref_image,
            clip_id=clip.id,
            frame_indices=targets,
            reference_index=reference,
            box=box,
            reference_box=ref_box,
        )

    def _keypoints(self, clip: Clip) -> PoseSequence:
        pose = self._poses.get(clip.pose)
        if pose is None:
            pose = load_pose(clip.pose)
            if pose.num_frames < clip.num_frames:
                raise ValueError(
                    f"{clip.pose}: clip {clip.id!r} has {pose.num_frames} frames of keypoints but the "
                    f"manifest says the video has {clip.num_frames}"
                )
            self._poses[clip.pose] = pose
            while len(self._poses) > POSE_CACHE:
                self._poses.popitem(last=False)
        else:
            self._poses.move_to_end(clip.pose)
        return pose


# ---------------------------------------------------------------------------------------------- pieces


def epoch_keys(num_clips: int, epoch: int, seed: int = 0, shuffle: bool = True) -> list[tuple[int, int]]:
    """The keys of one pass over ``num_clips`` clips: ``(clip index, sample seed)``, shuffled per epoch.

    A pure function of its arguments; sample seeds are distinct across epochs and positions.
    """
    rng = np.random.default_rng((seed, epoch))
    order = rng.permutation(num_clips) if shuffle else np.arange(num_clips)
    seeds = rng.integers(0, 2**63 - 1, size=num_clips, dtype=np.int64)
    return [(int(i), int(s)) for i, s in zip(order, seeds)]


def reference_candidates(num_frames: int, start: int, end: int, margin: int = 0) -> np.ndarray:
    """Frames for the reference: outside ``[start - margin, end + margin]``, else outside ``[start, end]``,
    else all of them."""
    frames = np.arange(num_frames)
    for m in (margin, 0) if margin else (0,):
        outside = frames[(frames < start - m) | (frames > end + m)]
        if len(outside):
            return outside
    return frames


def crop_box(
    rng: np.random.Generator,
    width: int,
    height: int,
    resolution: tuple[int, int],
    augment: bool,
    scale: tuple[float, float] = (0.8, 1.0),
) -> Box:
    """A normalised box with the aspect ratio of ``resolution`` inside a ``width`` x ``height`` frame.

    Always draws two numbers and a scale from ``rng`` when ``augment`` (so later draws do not depend on the
    frame size), none otherwise.
    """
    out_w, out_h = resolution
    aspect = out_w / out_h
    full_w, full_h = (height * aspect, height) if width / height > aspect else (width, width / aspect)
    if augment:
        s = float(rng.uniform(scale[0], scale[1]))
        u, v = float(rng.random()), float(rng.random())
    else:
        s, u, v = 1.0, 0.5, 0.5
    box_w, box_h = min(full_w * s, width), min(full_h * s, height)
    x0, y0 = u * (width - box_w), v * (height - box_h)
    return (x0 / width, y0 / height, (x0 + box_w) / width, (y0 + box_h) / height)


def crop_resize(frame: np.ndarray, box: Box, size: tuple[int, int]) -> np.ndarray:
    """The normalised ``box`` of an HxWx3 uint8 frame resampled to ``size = (width, height)`` (bicubic)."""
    h, w = frame.shape[:2]
    pixels = (box[0] * w, box[1] * h, box[2] * w, box[3] * h)
    return np.array(Image.fromarray(frame).resize(tuple(size), Image.Resampling.BICUBIC, box=pixels))


def crop_keypoints(pose: PoseSequence, box: Box, size: tuple[int, int]) -> PoseSequence:
    """Keypoints moved into the normalised ``box`` and scaled to an image of ``size`` = (width, height).

    Points outside the box keep their (out-of-image) coordinates so that limbs crossing the border are drawn
    up to it, as in a cropped rendering; missing points stay (0, 0, 0).
    """
    out_w, out_h = size
    scale = np.array([out_w / ((box[2] - box[0]) * pose.width), out_h / ((box[3] - box[1]) * pose.height)])
    offset = np.array([box[0] * pose.width, box[1] * pose.height])

    def move(points: np.ndarray) -> np.ndarray:
        points = points.astype(np.float64, copy=True)
        points[..., :2] = (points[..., :2] - offset) * scale
        points[points[..., 2] <= 0] = 0.0
        return points

    return PoseSequence(move(pose.body), move(pose.hands), move(pose.face), out_w, out_h, pose.fps)


def read_frames(path: PathLike, indices: list[int], clip_id: str = "") -> dict[int, np.ndarray]:
    """The frames ``indices`` (sorted, unique) of a video or image folder, decoding as few as the API allows."""
    wanted, out = sorted(set(indices)), {}
    runs: list[list[int]] = []
    for i in wanted:
        if runs and i - runs[-1][-1] <= READ_GAP + 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    for run in runs:
        first, count = run[0], run[-1] - run[0] + 1
        keep = set(run)
        got = 0
        for offset, frame in enumerate(iter_frames(path, start=first, count=count)):
            got += 1
            if first + offset in keep:
                out[first + offset] = frame
        if got < count:
            raise ValueError(
                f"{path}: clip {clip_id!r} needs frame {run[-1]} but the source has only {first + got} "
                "frames; the manifest's num_frames is wrong (run `animate-anyone data prepare` again)"
            )
    return out


def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack the tensors of ``__getitem__`` dicts; ``clip_id``: list of str, ``frame_indices``: list of lists,
    ``reference_index``: list of int."""
    if not batch:
        raise ValueError("cannot collate an empty batch")
    out: dict[str, Any] = {}
    for name in batch[0]:
        values = [item[name] for item in batch]
        if name == "frame_indices":
            out[name] = [v.tolist() if isinstance(v, torch.Tensor) else list(v) for v in values]
        elif isinstance(values[0], torch.Tensor):
            out[name] = torch.stack(values)
        else:
            out[name] = values
    return out


def _signed(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).float() / 127.5 - 1.0
