"""Score generated videos against their ground truth: pairing, streaming, aggregation, JSON / CSV output.

``evaluate(pred_dir, gt_dir)`` pairs the videos of two folders by name (file stem, or folder name for a folder of
frames), checks that every pair has the same frame count and size (a mismatch is a ``ValueError`` naming the pair
and both values: nothing is cropped or resized), streams the frames in small chunks and returns a dict:

* ``per_video``: ``{name: {"num_frames", "width", "height", metric: value, ...}}``
* ``aggregate``: ``{metric: {"mean", "std", "pooled", "n"}}`` -- mean and population std over videos, and the
  value pooled over every frame (or keypoint) of every video, as image-based evaluation code averages.
* ``dataset``: distribution distances over the whole set (``fid`` on frames, ``fvd`` / ``fid_vid`` on clips),
  with ``dataset_samples`` the number of feature vectors per side.
* ``skipped``: ``{metric: reason}`` for every requested metric that could not be computed (missing weights,
  missing pose extractor, too few samples, ...).
* ``metrics``, ``conventions`` (one line per metric), ``pred_dir``, ``gt_dir``, ``pose_dir``, ``num_videos``,
  ``missing_predictions`` (ground-truth videos without a prediction; a prediction without ground truth is an
  error).

``write_results`` writes the dict as JSON and a CSV beside it, both atomically; ``format_table`` renders it as
plain text. Non-finite numbers (PSNR of identical frames is +inf) are written as the strings ``"inf"``,
``"-inf"`` and ``"nan"`` in JSON (which has no infinity) and as ``inf`` / ``nan`` in the CSV.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import secrets
from functools import partial
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch

from ..media import IMAGE_SUFFIXES, iter_frames, probe_frames
from . import metrics as M

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".gif", ".m4v")
LPIPS = "lpips"
DISTRIBUTION_METRICS = ("fid", "fid_vid", "fvd")
ALL_METRICS = M.FRAME_METRICS + (LPIPS,) + M.KEYPOINT_METRICS + DISTRIBUTION_METRICS
CHUNK = 8  # frames decoded and scored at a time (bounded memory for any video length)
CLIP_LENGTH = 16  # frames per clip of FVD and FID-VID
I3D_MIN_FRAMES = 9  # the I3D head needs 9 frames (checked again by features.i3d_features)

CONVENTIONS = {
    "l1": "mean |pred - gt| on [0,1], per frame, mean over frames",
    "psnr": "per-frame MSE on [0,1] (float64) -> 10log10(1/MSE) -> mean over frames; inf if a frame is identical",
    "psnr_video": "10log10(1/MSE) with one MSE over all frames of the video, [0,1], float64",
    "psnr_legacy_uint8": "LEGACY DisCo 8-bit PSNR: mean((a-b)**2) on uint8 (wraps mod 256), 20log10(255/sqrt), 100 if 0",
    "ssim": "SSIM per RGB channel, 7x7 uniform window, sample covariance, K1=.01 K2=.03, data range 1; mean over channels and frames",
    "ssim_gray": "SSIM of BT.601 luma (8-bit rounded), same window settings (DisCo's convention)",
    "flicker": "mean over consecutive pairs of mean |(pred_t - pred_t-1) - (gt_t - gt_t-1)| on [0,1]",
    "lpips": "LPIPS distance per frame (inputs [0,1]), mean over frames",
    "pck@0.05": "PCK of poses re-extracted from pred vs driving pose, threshold 0.05 * max bbox side, visible driving keypoints only",
    "pck@0.1": "PCK of poses re-extracted from pred vs driving pose, threshold 0.1 * max bbox side, visible driving keypoints only",
    "fid": "Frechet distance of Inception features of all pred frames vs all gt frames",
    "fid_vid": "Frechet distance of Kinetics 3D-ResNet-50 features (DisCo's FID-VID), 112px, one sample per video "
               "(mean over its {clip}-frame clips, last clip padded)",
    "fvd": "Frechet distance of Kinetics I3D logits of {clip}-frame clips, 224px, {per}",
}


# ----------------------------------------------------------------------------------------------- pairing


def find_videos(folder: str | os.PathLike[str]) -> dict[str, Path]:
    """The videos a path holds, by name: video files (by stem) and sub-folders of frames (by folder name).

    A video file, or a folder that itself holds image files, is one video (named by its stem / name).
    Hidden entries (``.name``, e.g. partial outputs) are ignored. Two entries with one name are an error.
    """
    path = Path(folder)
    if not path.exists():
        raise FileNotFoundError(f"not found: {path}")
    if _is_single_video(path):
        return {path.stem if path.is_file() else path.name: path}
    found: dict[str, Path] = {}
    for entry in sorted(path.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir() and _is_frame_folder(entry):
            name = entry.name
        elif entry.is_file() and entry.suffix.lower() in VIDEO_SUFFIXES:
            name = entry.stem
        else:
            continue
        if name in found:
            raise ValueError(f"{path}: two videos are named {name!r}: {found[name].name} and {entry.name}")
        found[name] = entry
    if not found:
        raise ValueError(f"{path}: no videos ({', '.join(VIDEO_SUFFIXES)} files or folders of frames)")
    return found


def _is_single_video(path: Path) -> bool:
    return path.is_file() or _is_frame_folder(path)


def _is_frame_folder(path: Path) -> bool:
    return path.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()
                                 for p in path.iterdir())  # fmt: skip


def pair_videos(pred_dir, gt_dir) -> tuple[list[tuple[str, Path, Path, int, int, int]], list[str]]:
    """``([(name, pred, gt, frames, width, height), ...], missing_predictions)``, checked for equal frames and size."""
    preds, gts = find_videos(pred_dir), find_videos(gt_dir)
    if _is_single_video(Path(pred_dir)) and _is_single_video(Path(gt_dir)):  # two videos given: pair them by position
        (name, pred), (_, gt) = next(iter(preds.items())), next(iter(gts.items()))
        preds, gts = {name: pred}, {name: gt}
    orphans = sorted(set(preds) - set(gts))
    if orphans:
        raise ValueError(f"{len(orphans)} prediction(s) without a ground-truth video of the same name in {gt_dir}: "
                         f"{', '.join(orphans[:10])}{' ...' if len(orphans) > 10 else ''}")  # fmt: skip
    pairs = []
    for name in sorted(preds):
        p, g = probe_frames(preds[name]), probe_frames(gts[name])
        if p.num_frames != g.num_frames:
            raise ValueError(f"video {name!r}: prediction has {p.num_frames} frames, ground truth {g.num_frames} "
                             f"({preds[name]} vs {gts[name]}); generate exactly the ground truth's frames")  # fmt: skip
        if (p.width, p.height) != (g.width, g.height):
            raise ValueError(f"video {name!r}: prediction is {p.width}x{p.height}, ground truth {g.width}x{g.height} "
                             f"({preds[name]} vs {gts[name]}); resize one side to the other's size first")  # fmt: skip
        pairs.append((name, preds[name], gts[name], p.num_frames, p.width, p.height))
    return pairs, sorted(set(gts) - set(preds))


def _chunks(name: str, pred: Path, gt: Path, expected: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Aligned ``(n, H, W, 3)`` uint8 chunks of both videos; a length mismatch found while decoding is an error."""
    a, b = iter_frames(pred), iter_frames(gt)
    seen = 0
    while True:
        fa, fb = _take(a, CHUNK), _take(b, CHUNK)
        if len(fa) != len(fb):
            more = "prediction" if len(fa) > len(fb) else "ground truth"
            raise ValueError(f"video {name!r}: the {more} has more frames than the other when decoded "
                             f"(after {seen + min(len(fa), len(fb))}; {pred} vs {gt})")  # fmt: skip
        if not fa:
            break
        pa, pb = np.stack(fa), np.stack(fb)
        if pa.shape != pb.shape:
            raise ValueError(f"video {name!r}: frame {seen} is {pa.shape[2]}x{pa.shape[1]} in the prediction, "
                             f"{pb.shape[2]}x{pb.shape[1]} in the ground truth ({pred} vs {gt})")  # fmt: skip
        seen += len(fa)
        yield pa, pb
    if seen != expected:
        raise ValueError(f"video {name!r}: decoded {seen} frames, the file reported {expected} ({pred}, {gt})")


def _take(it: Iterator[np.ndarray], n: int) -> list[np.ndarray]:
    out = []
    for frame in it:
        out.append(frame)
        if len(out) == n:
            break
    return out


# ----------------------------------------------------------------------------------------------- evaluate


def parse_metrics(metrics: str | Iterable[str] | None) -> list[str]:
    """Metric names from a list or a comma-separated string (``None`` / ``"all"``: every metric), checked."""
    if metrics is None:
        return list(ALL_METRICS)
    names = [m.strip() for m in (metrics.split(",") if isinstance(metrics, str) else metrics) if m.strip()]
    if names == ["all"]:
        return list(ALL_METRICS)
    unknown = [n for n in names if n not in ALL_METRICS]
    if unknown or not names:
        raise ValueError(f"unknown metric(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(ALL_METRICS)} or all")
    return list(dict.fromkeys(names))


def evaluate(pred_dir, gt_dir, metrics=None, *, pose_dir=None, lpips_weights=None, lpips_net: str = "alex",
             inception_weights=None, i3d_weights=None, resnet3d_weights=None, clip_length: int = CLIP_LENGTH,
             fvd_samples: str = "video", pose_backend: str = "mediapipe", device: str = "cpu",
             progress: bool = True) -> dict:  # fmt: skip
    """Score every video of ``pred_dir`` against the one of the same name in ``gt_dir``; see the module doc.

    ``metrics``: names from ``ALL_METRICS`` (list or comma string; default all). Weights (paths): LPIPS and
    I3D fall back to the features module's default weights when None, and are skipped (with the reason) if it
    has none; FID needs ``inception_weights`` and FID-VID ``resnet3d_weights`` (skipped without). Weights given
    explicitly that fail to load are an error. ``clip_length``: frames per clip for FVD and FID-VID (16).
    ``fvd_samples``: ``"video"`` (default; one I3D feature per video, the mean over its clips, the last clip
    padded by repeating its last frame: DisCo's convention, also used for FID-VID) or ``"clip"`` (every whole
    clip is a sample, a trailing partial clip is dropped: Unterthiner et al.'s). ``pose_dir``: driving keypoints
    ``<name>.npz`` / ``<name>.json`` for PCK; without it the driving pose is extracted from the ground truth.
    """
    from tqdm import tqdm

    names = parse_metrics(metrics)
    if lpips_net not in ("alex", "vgg"):
        raise ValueError(f"lpips_net must be 'alex' or 'vgg', got {lpips_net!r}")
    if fvd_samples not in ("video", "clip"):
        raise ValueError(f"fvd_samples must be 'video' or 'clip', got {fvd_samples!r}")
    if "fvd" in names and clip_length < I3D_MIN_FRAMES:
        raise ValueError(f"FVD's I3D needs clips of at least {I3D_MIN_FRAMES} frames, got clip_length={clip_length}")
    if clip_length < 1:
        raise ValueError(f"clip_length must be >= 1, got {clip_length}")
    pairs, missing = pair_videos(pred_dir, gt_dir)
    device = _device(device)
    skipped: dict[str, str] = {}
    models = _load_models(names, skipped, lpips_weights, lpips_net, inception_weights, i3d_weights, resnet3d_weights, device)
    pck_names = [n for n in names if n in M.KEYPOINT_METRICS]
    if pck_names:
        _check_pose_backend(pose_backend, pck_names, skipped)
        pck_names = [n for n in pck_names if n not in skipped]
    pose_files = _pose_files(pose_dir, [p[0] for p in pairs]) if pck_names else {}
    learned = _Learned(models, clip_length, fvd_samples, device)

    per_video: dict[str, dict] = {}
    pooled: dict[str, list] = {}
    with tqdm(total=sum(p[3] for p in pairs), desc="evaluate", unit="frame", disable=not progress) as bar:
        for name, pred, gt, frames, width, height in pairs:
            bar.set_postfix_str(name)
            row, parts = _score_video(name, pred, gt, frames, width, height, names, learned, pck_names,
                                      pose_files.get(name), pose_backend, device, bar)  # fmt: skip
            per_video[name] = row
            for key, value in parts.items():
                pooled.setdefault(key, []).append(value)

    aggregate = {n: _aggregate(n, per_video, pooled) for n in names if n in pooled}
    dataset, samples = {}, {}
    for n in DISTRIBUTION_METRICS:
        if n in models:
            _distribution(n, *learned.features[n], dataset, samples, skipped, learned.unit(n))
    conventions = {n: CONVENTIONS[n] for n in names}
    if "fvd" in conventions:
        conventions["fvd"] = conventions["fvd"].format(per=_FVD_SAMPLES[fvd_samples], clip=clip_length)
    if "fid_vid" in conventions:
        conventions["fid_vid"] = conventions["fid_vid"].format(clip=clip_length)
    return {
        "pred_dir": str(pred_dir), "gt_dir": str(gt_dir), "pose_dir": None if pose_dir is None else str(pose_dir),
        "num_videos": len(per_video), "metrics": names, "conventions": conventions,
        "aggregate": aggregate, "dataset": dataset, "dataset_samples": samples,
        "skipped": {n: skipped[n] for n in names if n in skipped},
        "missing_predictions": missing, "per_video": per_video,
    }  # fmt: skip


_FVD_SAMPLES = {"video": "one sample per video (mean over its clips, last clip padded)",
                "clip": "one sample per whole clip (partial clips dropped)"}  # fmt: skip


def _device(device: str | torch.device) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _load_models(names, skipped, lpips_weights, lpips_net, inception_weights, i3d_weights, resnet3d_weights,
                 device) -> dict:  # fmt: skip
    """Feature networks for the requested learned metrics; what cannot be had goes to ``skipped``."""
    wanted = [n for n in names if n == LPIPS or n in DISTRIBUTION_METRICS]
    if not wanted:
        return {}
    try:
        from . import features
    except ImportError as exc:
        for n in wanted:
            skipped[n] = f"animate_anyone.evaluation.features is not available ({exc})"
        return {}
    loaders = {  # name: (loader, weights, the weights are optional, flag)
        LPIPS: (lambda w: features.load_lpips(w, net=lpips_net), lpips_weights, True, "--lpips-weights"),
        "fid": (features.load_inception, inception_weights, False, "--inception-weights"),
        "fvd": (features.load_i3d, i3d_weights, True, "--i3d-weights"),
        "fid_vid": (features.load_resnet3d, resnet3d_weights, False, "--resnet3d-weights"),
    }
    what = {LPIPS: f"LPIPS ({lpips_net})", "fid": "Inception-v3 (pytorch-fid)", "fvd": "I3D (Kinetics-400)",
            "fid_vid": "3D ResNet-50 (Kinetics)"}  # fmt: skip
    models = {}
    for n in wanted:
        loader, weights, optional, flag = loaders[n]
        if weights is not None:
            models[n] = loader(weights)  # given explicitly: a bad file is an error
        elif not optional:
            skipped[n] = f"needs {what[n]} weights ({flag})"
        else:
            try:  # the features module's default weights, if it can find or convert them
                models[n] = loader(None)
            except (ImportError, OSError, RuntimeError, ValueError) as exc:
                skipped[n] = f"no {what[n]} weights found; pass {flag} ({type(exc).__name__}: {exc})"
    return {n: model.to(device).eval() for n, model in models.items()}


class _Learned:
    """The learned metrics of one run: LPIPS per frame, and the feature vectors of the Fréchet distances."""

    def __init__(self, models: dict, clip_length: int, fvd_samples: str, device: torch.device) -> None:
        self.models, self.clip_length, self.fvd_samples, self.device = models, clip_length, fvd_samples, device
        self.features: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {
            n: ([], []) for n in DISTRIBUTION_METRICS if n in models}  # fmt: skip
        self.clip_metrics = [n for n in ("fvd", "fid_vid") if n in models]
        if models:
            from . import features

            self.F = features

    def unit(self, name: str) -> str:
        if name == "fid":
            return "frames"
        return f"clips of {self.clip_length} frames" if name == "fvd" and self.fvd_samples == "clip" else "videos"

    def start_video(self) -> None:
        self.buffers = ([], [])  # frames not yet in a clip, pred and gt
        self.clip_features = {n: ([], []) for n in self.clip_metrics}

    def add(self, a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
        """Feed a chunk of frames; returns the LPIPS distances of the chunk (None without LPIPS)."""
        if not self.models:
            return None
        distances = None
        with torch.inference_mode():
            if LPIPS in self.models or "fid" in self.models:
                ta, tb = _tensor(a, self.device), _tensor(b, self.device)
                if LPIPS in self.models:
                    distances = _numpy(self.F.lpips_distance(self.models[LPIPS], ta, tb))
                if "fid" in self.models:
                    for side, t in ((0, ta), (1, tb)):
                        self.features["fid"][side].append(_numpy(self.F.inception_features(self.models["fid"], t)))
            if self.clip_metrics:
                self.buffers[0].extend(a)
                self.buffers[1].extend(b)
                while len(self.buffers[0]) >= self.clip_length:
                    self._clip(self.clip_length)
        return distances

    def end_video(self) -> None:
        if not self.clip_metrics:
            return
        if self.buffers[0]:  # a partial clip: padded with its last frame (dropped for FVD's per-clip samples)
            self._clip(len(self.buffers[0]), pad=True)
        for n in self.clip_metrics:
            for side in (0, 1):
                feats = self.clip_features[n][side]
                if not feats:
                    continue
                if n == "fvd" and self.fvd_samples == "clip":
                    self.features[n][side].extend(feats)
                else:
                    self.features[n][side].append(np.concatenate(feats).mean(axis=0, keepdims=True))

    def _clip(self, count: int, pad: bool = False) -> None:
        for side in (0, 1):
            frames = self.buffers[side][:count]
            del self.buffers[side][:count]
            if pad:
                frames = frames + [frames[-1]] * (self.clip_length - len(frames))
            clip = _tensor(np.stack(frames), self.device).permute(1, 0, 2, 3)[None]  # (1, 3, T, H, W)
            for n in self.clip_metrics:
                if n == "fvd" and pad and self.fvd_samples == "clip":
                    continue
                fn = self.F.i3d_features if n == "fvd" else partial(self.F.resnet3d_features, clip_len=self.clip_length)
                self.clip_features[n][side].append(_numpy(fn(self.models[n], clip)))


def _check_pose_backend(backend, pck_names, skipped) -> None:
    from ..pose.extract import open_backend

    try:
        open_backend(backend, static_image_mode=False).close()
    except (ImportError, OSError, ValueError) as exc:  # not installed; DWPose without its model files
        for n in pck_names:
            skipped[n] = f"pose backend {backend!r} unavailable: {exc}"


def _pose_files(pose_dir, names) -> dict[str, Path]:
    if pose_dir is None:
        return {}
    folder = Path(pose_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"pose folder not found: {folder}")
    files = {}
    for name in names:
        found = [folder / f"{name}{s}" for s in (".npz", ".json") if (folder / f"{name}{s}").is_file()]
        if not found:
            raise FileNotFoundError(f"{folder}: no driving keypoints for video {name!r} ({name}.npz or {name}.json)")
        files[name] = found[0]
    return files


def _reference_keypoints(path: Path, name: str, frames: int, width: int, height: int) -> np.ndarray:
    """Body keypoints ``(frames, 18, 3)`` of the first person slot of a keypoint file, scaled to the video's size."""
    from ..pose.keypoints import load_pose

    pose = load_pose(path)
    if pose.num_frames != frames:
        raise ValueError(f"video {name!r}: {path} has {pose.num_frames} frames of keypoints, the video {frames}")
    body = pose.body[:, 0].astype(np.float64) if pose.num_people else np.zeros((frames, 18, 3))
    body[..., 0] *= width / pose.width
    body[..., 1] *= height / pose.height
    return body


class _PoseTracker:
    """First-person body keypoints ``(18, 3)`` of each frame, in order (tracking mode; no gap filling)."""

    def __init__(self, backend: str) -> None:
        from ..pose.extract import open_backend

        self._extract = open_backend(backend, static_image_mode=False)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        body = self._extract(frame)[0]
        return body[0].astype(np.float64) if len(body) else np.zeros((18, 3))

    def close(self) -> None:
        self._extract.close()


def _score_video(name, pred, gt, frames, width, height, names, learned, pck_names, pose_file, pose_backend, device,
                 bar) -> tuple[dict, dict]:  # fmt: skip
    """Per-video values, and the per-frame pieces for the pooled aggregate."""
    frame_fns = {"l1": M.l1_frames, "psnr": M.psnr_frames, "psnr_video": M.mse_frames,
                 "psnr_legacy_uint8": M.psnr_legacy_uint8_frames,
                 "ssim": partial(M.ssim_frames, device=device), "ssim_gray": partial(M.ssim_gray_frames, device=device)}  # fmt: skip
    wanted = [n for n in names if n in frame_fns]
    per_frame: dict[str, list[np.ndarray]] = {n: [] for n in wanted + ["flicker", LPIPS]}
    previous = None  # the last frames of the previous chunk, for the flicker pair across chunks
    pred_kp, ref_kp, gt_kp, trackers = [], None, [], []
    learned.start_video()
    try:
        if pck_names:
            ref_kp = _reference_keypoints(pose_file, name, frames, width, height) if pose_file else None
            trackers = [_PoseTracker(pose_backend)] + ([] if pose_file else [_PoseTracker(pose_backend)])
        for a, b in _chunks(name, pred, gt, frames):
            for n in wanted:
                per_frame[n].append(frame_fns[n](a, b))
            if "flicker" in names:
                pa, pb = (a, b) if previous is None else (np.concatenate([previous[0], a]), np.concatenate([previous[1], b]))
                per_frame["flicker"].append(M.flicker_pairs(pa, pb))
                previous = (a[-1:], b[-1:])
            distances = learned.add(a, b)
            if distances is not None:
                per_frame[LPIPS].append(distances)
            if trackers:
                pred_kp.extend(trackers[0](f) for f in a)
                if len(trackers) > 1:
                    gt_kp.extend(trackers[1](f) for f in b)
            bar.update(len(a))
        learned.end_video()
    finally:
        for tracker in trackers:
            tracker.close()

    row: dict = {"num_frames": frames, "width": width, "height": height}
    parts: dict = {}
    computed = wanted + ["flicker"] * ("flicker" in names) + [LPIPS] * (LPIPS in learned.models)
    for n in computed:
        values = np.concatenate(per_frame[n]) if per_frame[n] else np.zeros(0)
        if n == "psnr_video":  # per-frame MSE -> one PSNR
            row[n] = float(M._psnr_from_mse(values.mean()))
        else:
            row[n] = float(values.mean()) if len(values) else math.nan
        parts[n] = values
    if pck_names:
        ref = ref_kp if ref_kp is not None else np.stack(gt_kp)
        predicted = np.stack(pred_kp)
        for n, alpha in zip(M.KEYPOINT_METRICS, M.PCK_ALPHAS):
            if n in pck_names:
                correct, counted = M.pck_counts(predicted, ref, alpha)
                row[n], parts[n] = (correct / counted if counted else math.nan), (correct, counted)
    return row, parts


def _tensor(frames: np.ndarray, device) -> torch.Tensor:
    """``(n, H, W, 3)`` uint8 -> ``(n, 3, H, W)`` float32 in [0, 1] on ``device``."""
    return torch.from_numpy(frames).to(device).permute(0, 3, 1, 2).float().div_(255.0)


def _numpy(x) -> np.ndarray:
    return x.detach().float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _aggregate(name: str, per_video: dict, pooled: dict) -> dict:
    values = np.array([row[name] for row in per_video.values()], dtype=np.float64)
    pieces = pooled[name]
    if name in M.KEYPOINT_METRICS:
        correct, counted = (sum(p[i] for p in pieces) for i in (0, 1))
        pooled_value = correct / counted if counted else math.nan
    else:
        frames = np.concatenate(pieces)
        if name == "psnr_video":
            pooled_value = float(M._psnr_from_mse(frames.mean())) if len(frames) else math.nan
        else:
            pooled_value = float(frames.mean()) if len(frames) else math.nan
    with np.errstate(invalid="ignore"):
        mean, std = float(values.mean()), float(values.std())
    return {"mean": mean, "std": std, "pooled": float(pooled_value), "n": len(values)}


def _distribution(name, pred_feats, gt_feats, dataset, samples, skipped, unit) -> None:
    from . import features

    if min(sum(len(f) for f in pred_feats), sum(len(f) for f in gt_feats)) < 2:
        skipped[name] = f"needs at least 2 {unit} per side, got {sum(len(f) for f in pred_feats)}"
        return
    a, b = np.concatenate(pred_feats), np.concatenate(gt_feats)
    dataset[name] = float(features.frechet_distance(*features.feature_statistics(a), *features.feature_statistics(b)))
    samples[name] = len(a)


# ----------------------------------------------------------------------------------------------- output


def to_json_value(value):
    """A JSON-safe copy: numpy scalars/arrays -> Python, non-finite floats -> "inf" / "-inf" / "nan"."""
    if isinstance(value, dict):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_value(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_json_value(value.tolist())
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    return value


def from_json_value(value):
    """Inverse of :func:`to_json_value` for numbers: "inf" / "-inf" / "nan" strings back to floats."""
    if isinstance(value, dict):
        return {k: from_json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json_value(v) for v in value]
    if value in ("inf", "-inf", "nan"):
        return float(value)
    return value


def _columns(results: dict) -> tuple[list[str], list[str]]:
    video_metrics = [n for n in results["metrics"] if n in results["aggregate"]]
    dataset_metrics = [n for n in results["metrics"] if n in results["dataset"]]
    return video_metrics, dataset_metrics


def results_csv(results: dict) -> str:
    """CSV text: one row per video, then ``mean``, ``std`` and ``pooled`` rows; dataset metrics in mean / pooled."""
    video_metrics, dataset_metrics = _columns(results)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["video", "num_frames", *video_metrics, *dataset_metrics])
    for name, row in results["per_video"].items():
        writer.writerow([name, row["num_frames"], *(_cell(row.get(n)) for n in video_metrics), *([""] * len(dataset_metrics))])
    frames = sum(row["num_frames"] for row in results["per_video"].values())
    for stat in ("mean", "std", "pooled"):
        dataset = [_cell(results["dataset"][n]) if stat != "std" else "" for n in dataset_metrics]
        writer.writerow([stat, frames, *(_cell(results["aggregate"][n][stat]) for n in video_metrics), *dataset])
    return out.getvalue()


def _cell(value) -> str:
    if value is None:
        return ""
    value = float(value)
    return repr(value) if math.isfinite(value) else ("nan" if math.isnan(value) else ("inf" if value > 0 else "-inf"))


def write_results(results: dict, out_json: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``out_json`` and the CSV beside it (same name, ``.csv``), each atomically. Returns both paths."""
    path = Path(out_json)
    csv_path = path.with_suffix(".csv") if path.suffix.lower() != ".csv" else path.with_name(path.name + ".csv")
    text = json.dumps(to_json_value(results), indent=2, allow_nan=False) + "\n"
    _atomic_write(path, text)
    _atomic_write(csv_path, results_csv(results))
    return path, csv_path


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def format_table(results: dict) -> str:
    """The aggregate as a plain-text table (metric, mean, std, pooled), then dataset metrics and skipped ones."""
    video_metrics, dataset_metrics = _columns(results)
    frames = sum(row["num_frames"] for row in results["per_video"].values())
    lines = [f"{results['num_videos']} video(s), {frames} frame(s)"]
    width = max([len(n) for n in video_metrics + dataset_metrics + ["metric"]]) + 2
    if video_metrics:
        lines.append(f"{'metric':<{width}}{'mean':>12}{'std':>12}{'pooled':>12}")
        for n in video_metrics:
            agg = results["aggregate"][n]
            lines.append(f"{n:<{width}}{_fmt(agg['mean']):>12}{_fmt(agg['std']):>12}{_fmt(agg['pooled']):>12}")
    for n in dataset_metrics:
        lines.append(f"{n:<{width}}{_fmt(results['dataset'][n]):>12}   (over the set, {results['dataset_samples'][n]} samples per side)")
    for n, reason in results["skipped"].items():
        lines.append(f"{n:<{width}}skipped: {reason}")
    if results["missing_predictions"]:
        lines.append(f"ground-truth videos without a prediction (not scored): {', '.join(results['missing_predictions'])}")
    return "\n".join(lines)


def _fmt(value: float) -> str:
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3e}"
