"""Running a trained model over a synthetic split, and the benchmark table over variants and seeds.

``predict_split`` animates every clip of a split directory (its ``references/<id>.png`` with the skeleton drawn
from the exact keypoints ``poses/<id>.npz``) and writes ``<out>/<id>/`` frame folders (lossless PNG), which
``animate-anyone evaluate --pred <out> --gt <split>/videos --pose-dir <split>/poses`` scores against the ground
truth. ``summarize`` turns the evaluate JSON files of several variants x seeds into the markdown table of
docs/benchmark.md (mean over seeds, with the spread as the population std over seeds).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shlex
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from animate_anyone.atomic import check_writable
from animate_anyone.config import SettingError
from animate_anyone.evaluation.registry import METRICS as PRODUCT_METRICS
from animate_anyone.pipelines.settings import SamplingRequest

from .settings import benchmark_request
from .world_metrics import WORLD_METRICS

PathLike = str | os.PathLike[str]
METRICS = {**PRODUCT_METRICS, **WORLD_METRICS}  # every column's direction
TABLE_METRICS = (
    "l1",
    "psnr",
    "ssim",
    "lpips",
    "flicker",
    "pck@0.05",
    "pck@0.1",
)  # the columns; directions: the registry
DRIVERS = ("truth", "raw", "aligned")  # which skeleton drives a cross-body clip (see predict_split)


def predict_split(
    model_dir: PathLike | None,
    split_dir: PathLike,
    out: PathLike,
    *,
    sampling: SamplingRequest | None = None,
    seed: int = 0,
    device: str = "auto",
    dtype: str = "auto",
    overwrite: bool = False,
    progress: bool = True,
    driver: str = "truth",
    chunk: int | None = None,
    vae_roundtrip: bool = False,
    decoder: str = "vae",
    names: Mapping[str, str] | None = None,
) -> Path:
    """Animate every clip of ``split_dir`` with the model at ``model_dir``; frames go to ``out/<clip id>/``.

    Clip ``k`` uses the generator seed ``seed + k`` (so a clip's result does not depend on the others). A clip
    whose folder already exists is kept (the job resumes); each folder is written atomically.
    ``model_dir=None`` writes the *reference-copy baseline*: the reference image as every frame.
    ``vae_roundtrip``: instead of animating, ``model_dir``'s VAE encodes and decodes the true frames (posterior
    mean): the ceiling of any model that works in that VAE's latent space. ``decoder``: the pipeline's (``"vae"``
    or ``"light"``, the model's light decoder), recorded.
    ``out/predict.json`` records the settings (``evaluation.record``); a rerun with other settings is refused
    unless ``overwrite``, which redoes every clip.

    Sampling (a ``SamplingRequest``): without a preset, the benchmark's own settings (20 steps, guidance 2, windows
    of 24 frames overlapping by 4: ``BENCHMARK_SAMPLING``; docs/benchmark.md) unless the model is a distilled
    student (its own default preset); with a preset, that preset's settings. The request's other fields override
    either.

    World splits: the request's ``window_mode`` (``pipelines.context.WINDOW_MODES``) schedules a long clip's
    windows; ``chunk``
    cuts every clip into consecutive pieces of ``chunk`` frames, each animated as a fresh short clip (same
    reference and poses, and the initial noise of those frames in the whole clip's call), concatenated in order:
    the long clip without any windowing, paired frame by frame with it.
    ``driver`` (cross-body splits): the skeleton drawn is the truth's (``poses/``, A's own: the oracle of
    retargeting), the driver's as extracted (``raw``, ``driver_poses/``) or the driver's retargeted onto the
    reference image's keypoints by ``pose.align.retarget`` (``aligned``, what ``animate-anyone pose align`` does).
    Any of the three not at its default is recorded under ``"driving"`` in ``predict.json``, with the sha256 of the
    driving keypoints of every clip when they are not the truth's (a rerun after a change of retargeting is
    refused instead of resumed).

    Before the model loads and before anything is written, :func:`check_inputs` checks ``out`` and every clip's
    inputs and refuses the whole split in one line when any is missing, damaged or shorter than its clip. Every
    prediction has the manifest's ``num_frames`` frames (longer keypoints or videos are cut to it).
    """
    from PIL import Image
    from tqdm.auto import tqdm

    from animate_anyone.data.manifest import read_manifest
    from animate_anyone.evaluation.record import check_ran, claim, prediction_record, sampling_record
    from animate_anyone.media import iter_frames, write_video
    from animate_anyone.pipelines.loading import load_pipeline
    from animate_anyone.pipelines.settings import WINDOW_FIELDS

    from .render import pose_images

    if driver not in DRIVERS or (chunk is not None and chunk < 1):
        raise ValueError(f"driver must be one of {DRIVERS}, chunk >= 1; got {driver!r}, {chunk!r}")
    if driver != "truth" and not (Path(split_dir) / "driver_poses").is_dir():
        raise ValueError(f"{split_dir} has no driver_poses/ (not a cross-body split): use driver='truth'")
    if vae_roundtrip and model_dir is None:
        raise ValueError("vae_roundtrip needs the model directory whose VAE encodes and decodes the frames")
    if decoder not in ("vae", "light"):
        raise SettingError("decoder", decoder, "choose vae or light")
    if decoder == "light" and model_dir is not None and not (Path(model_dir) / "light_decoder").is_dir():
        why = f"{model_dir} has no light_decoder; train one (train light-decoder) first"
        raise SettingError("decoder", decoder, why)
    split_dir, out, names = Path(split_dir), Path(out), names or {}
    clips = read_manifest(split_dir, check_files=False)  # check_inputs names every clip with a missing file
    mode = "reference" if model_dir is None else "frames" if vae_roundtrip else "poses"
    # the driving keypoints ("poses")
    skeletons = check_inputs(split_dir, clips, out, mode=mode, driver=driver, what=names.get("out", "out"))
    driving = {"driver": driver, "chunk": chunk}
    driving = {k: v for k, v in driving.items() if v not in ("truth", None)}
    pipe, vae = None, None
    if model_dir is None:
        record = prediction_record(split_dir, clips, model_dir=None)
    elif vae_roundtrip:
        from diffusers import AutoencoderKL

        vae = AutoencoderKL.from_pretrained(Path(model_dir) / "vae").eval()
        record = prediction_record(split_dir, clips, model_dir=model_dir, baseline=ROUNDTRIP)
    else:
        pipe = load_pipeline(model_dir, device, dtype, progress=False)
        request = benchmark_request(sampling, pipe.model_defaults.distilled)
        settings = pipe.sampling_settings(request)  # resolved and checked once, then passed whole
        record = prediction_record(
            split_dir,
            clips,
            model_dir=model_dir,
            sampling=sampling_record(pipe, request, settings),
            window=settings.part(WINDOW_FIELDS),
            seed=seed,
            device=str(pipe.device),
            dtype=str(pipe.denoising_unet.dtype).removeprefix("torch."),
        )
        if driver != "truth":  # what the skeletons were, so that a change of retargeting is not resumed over
            digest = hashlib.sha256()
            for skeleton in skeletons.values():
                digest.update(np.ascontiguousarray(skeleton.body, np.float32).tobytes())
            driving["poses"] = f"sha256:{digest.hexdigest()}"
        if driving:
            record["driving"] = driving
        if decoder != "vae":  # recorded only when not the default, so that existing records still resume
            record["decoder"] = decoder
    claim(out, record, [clip.id for clip in clips], overwrite, names)
    for k, clip in enumerate(tqdm(clips, desc=f"predict {split_dir.name}", unit="clip", disable=not progress)):
        target = out / clip.id
        if target.exists() and not overwrite:
            continue
        reference = Image.open(split_dir / "references" / f"{clip.id}.png").convert("RGB")
        if vae is not None:
            frames = list(roundtrip(vae, np.stack(list(iter_frames(clip.video, count=clip.num_frames)))))
        elif pipe is None:
            frames = [np.asarray(reference)] * clip.num_frames
        else:
            poses = pose_images(skeletons[clip.id])  # (F, H, W, 3) uint8, as in training
            size = {"height": clip.height, "width": clip.width}
            starts = [0] if chunk is None else list(range(0, len(poses), chunk))
            noise = None
            if chunk is not None:  # the whole clip's noise, so that each piece starts from its own frames' noise
                generator = torch.Generator().manual_seed(seed + k)
                where = {"device": pipe._execution_device, "dtype": pipe.denoising_unet.dtype}
                noise = pipe.initial_noise(len(poses), **size, generator=generator, **where)
            frames = []
            for start in starts:
                end = len(poses) if chunk is None else start + chunk
                result = pipe(
                    reference,
                    poses[start:end],
                    settings,
                    **size,
                    generator=torch.Generator().manual_seed(seed + k),
                    output_type="np",
                    latents=None if noise is None else noise[:, :, start:end],
                    decoder=decoder,
                )
                check_ran(record, result.stats)
                frames.extend(result.frames)
        write_video(target, list(frames), clip.fps, overwrite=True)
    return out


SHOWN = 3  # bad clips that check_inputs names in its one line; the others are counted
MODES = ("reference", "frames", "poses")  # what a prediction reads: copy-reference, the VAE round trip, a model


def check_inputs(
    split_dir: Path, clips: list, out: Path, *, mode: str, driver: str = "truth", what: str = "out"
) -> dict:
    """Refuse, before anything is loaded or written, a split that ``predict_split`` would stop on midway or predict
    wrongly. ``out`` must be a folder (or not exist yet) under a writable folder. Every clip's video must exist,
    its reference ``references/<id>.png`` open as an image, and its keypoints ``poses/<id>.npz`` (the truth, which
    ``evaluate`` scores PCK against) load and hold at least the clip's ``num_frames`` frames (the manifest's: what
    is predicted); ``mode`` adds what that kind of prediction reads: ``"frames"`` (the VAE round trip) the
    video's frame count, ``"poses"`` (a model) the driving keypoints of ``driver`` (``driving_pose``), also at least
    ``num_frames``.

    One ValueError (FileNotFoundError when every problem is a missing file) lists the first :data:`SHOWN` bad clips,
    each with its files and problems, counts the others, and says how to restore them. Returns ``{clip id: the
    driving keypoints cut to num_frames}`` for ``"poses"``, else ``{}``. ``what``: the caller's name for ``out``.
    """
    from PIL import Image

    from animate_anyone.media import probe_frames
    from animate_anyone.pose.keypoints import load_pose

    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    check_out(out, what)
    problems: dict[str, list[str]] = {}
    missing_only = True
    skeletons = {}
    for clip in clips:
        found: list[tuple[str, bool]] = []  # (problem, is a missing file)
        reference = split_dir / "references" / f"{clip.id}.png"
        if not reference.is_file():
            found.append((f"reference not found: {reference}", True))
        else:
            try:
                with Image.open(reference) as image:
                    image.verify()  # reads the whole file: a truncated or damaged PNG fails here
            except Exception as exc:  # PIL raises OSError, ValueError, SyntaxError, ... for a damaged image
                found.append((f"reference {reference} does not open as an image ({exc})", False))
        if not clip.video.exists():
            found.append((f"video not found: {clip.video}", True))
        elif mode == "frames":
            try:
                count = probe_frames(clip.video).num_frames
            except (OSError, ValueError) as exc:
                found.append((f"video {clip.video} does not open ({exc})", False))
            else:
                if count < clip.num_frames:
                    found.append((f"video {clip.video} holds {count} frames, the clip has {clip.num_frames}", False))
        sources = [("truth", clip.pose)]
        if mode == "poses" and driver != "truth":
            sources.append((driver, split_dir / "driver_poses" / f"{clip.id}.npz"))
        for name, path in sources:
            try:
                keypoints = load_pose(path) if name == "truth" else driving_pose(split_dir, clip, driver)
            except FileNotFoundError as exc:  # load_pose's: "keypoint file not found: PATH"
                found.append((f"keypoints not found: {str(exc).removeprefix('keypoint file not found: ')}", True))
                continue
            except (OSError, ValueError) as exc:  # PoseFileError (a ValueError) names the file
                found.append((f"keypoints do not load: {exc}", False))
                continue
            if keypoints.num_frames < clip.num_frames:
                found.append(
                    (f"keypoints {path} hold {keypoints.num_frames} frames, the clip has {clip.num_frames}", False)
                )
            elif mode == "poses" and name == driver:
                skeletons[clip.id] = keypoints.select(slice(0, clip.num_frames))
        if found:
            problems[clip.id] = [text for text, _ in found]
            missing_only = missing_only and all(missing for _, missing in found)
    if not problems:
        return skeletons
    shown = [f"{clip_id}: {', '.join(texts)}" for clip_id, texts in list(problems.items())[:SHOWN]]
    if len(problems) > SHOWN:
        shown.append(f"and {len(problems) - SHOWN} more")
    error = FileNotFoundError if missing_only else ValueError
    raise error(
        f"{len(problems)} of {len(clips)} clips of {split_dir} cannot be predicted ({'; '.join(shown)}); "
        f"{restore_hint(split_dir, damaged=not missing_only)}; nothing was written"
    )


def check_out(out: Path, what: str = "out") -> None:
    """ValueError unless ``out`` is a folder, or can be made one, in a writable folder (``atomic.check_writable``),
    naming it as ``what`` (the caller's name for it: a command's flag)."""
    try:
        check_writable(out, f"{what} {out}", "give a folder for the predictions")
    except OSError as exc:
        raise ValueError(str(exc)) from None


def restore_hint(split_dir: Path, damaged: bool = True) -> str:
    """How to restore a split's missing (and, when ``damaged``, damaged or short) clip files: ``synthetic make`` with
    the dataset's settings rewrites a clip that lacks a file (the command itself when ``synthetic.json`` is one the
    CLI can repeat)."""
    from animate_anyone.data.manifest import manifest_path

    from .dataset import CONFIG_NAME

    config = split_dir.parent / CONFIG_NAME
    if not config.is_file():
        return f"fix: restore those files, or remove their clips from {manifest_path(split_dir)}"
    try:
        command = make_command(split_dir.parent, json.loads(config.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        command = None
    rerun = (
        f"`{command}`"
        if command
        else f"`animate-anyone synthetic make` (make_dataset) into {split_dir.parent} with the settings in {config}"
    )
    first = "delete the damaged or short files, then " if damaged else ""
    return f"fix: {first}rerun {rerun} (it rewrites every clip that lacks a file)"


def make_command(out: Path, config: dict) -> str | None:
    """The ``animate-anyone synthetic make`` command that wrote ``config`` (a ``synthetic.json``) into ``out``; None
    when no command line gives those settings (e.g. a dataset made by ``make_dataset`` with uneven counts)."""
    from .dataset import CRF

    counts, pool = config["counts"], config["train_pool"]
    heldout = {n for s, n in counts.items() if s != "train"}
    if counts.get("train", pool) != pool or len(heldout) > 1 or min(counts.values()) < 1 or config["crf"] != CRF:
        return None
    width, height = config["size"]
    words = ["animate-anyone synthetic make --out", shlex.quote(str(out)), "--clips", str(pool)]
    words += ["--heldout-clips", str(heldout.pop())] if heldout else []
    words += ["--splits", ",".join(counts), "--size", f"{width}x{height}", "--frames", str(config["frames"])]
    words += ["--fps", repr(float(config["fps"])), "--seed", str(config["seed"])]
    words += ["--long-frames", str(config["long_frames"])] if "long_frames" in config else []
    words += ["--png"] if config["video"] == "png" else []
    words += ["--pose-videos"] if config["pose_videos"] else []
    return " ".join(words)


ROUNDTRIP = "vae_roundtrip (the model's VAE: encode + decode of the true frames, posterior mean)"


@torch.no_grad()
def roundtrip(vae, frames: np.ndarray, batch: int = 8) -> np.ndarray:
    """(F, H, W, 3) uint8 frames through ``vae`` (encode, posterior mean, decode): (F, H, W, 3) uint8."""
    out = []
    for start in range(0, len(frames), batch):
        x = torch.from_numpy(frames[start : start + batch]).permute(0, 3, 1, 2).float() / 127.5 - 1  # (b, 3, H, W)
        y = vae.decode(vae.encode(x).latent_dist.mean).sample
        out.append(((y.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy())
    return np.concatenate(out)


def driving_pose(split_dir: Path, clip, driver: str):
    """The skeleton that drives ``clip`` (see ``predict_split``), in the clip's image."""
    from animate_anyone.pose.align import retarget
    from animate_anyone.pose.keypoints import load_pose

    if driver == "truth":
        return load_pose(clip.pose)
    raw = load_pose(split_dir / "driver_poses" / f"{clip.id}.npz")
    if driver == "raw":
        return raw
    return retarget(raw, load_pose(split_dir / "reference_poses" / f"{clip.id}.npz"))


def load_results(path: PathLike) -> dict[str, float]:
    """``{metric: mean over videos}`` from an ``animate-anyone evaluate`` JSON file."""
    data = json.loads(Path(path).read_text())
    return {name: float(v["mean"]) for name, v in data["aggregate"].items()}


def summarize(results: dict[str, dict[str, list[PathLike]]], metrics: tuple[str, ...] = TABLE_METRICS) -> dict:
    """``results[variant][split]`` = evaluate JSON files, one per seed -> ``{variant: {split: {metric: (mean, std,
    n)}}}`` (std: population std over seeds)."""
    summary: dict = {}
    for variant, splits in results.items():
        for split, files in splits.items():
            runs = [load_results(f) for f in files]
            cell = {}
            for m in metrics:
                values = np.array([r[m] for r in runs if m in r and math.isfinite(r[m])])
                cell[m] = (
                    (float(values.mean()), float(values.std()), len(values)) if len(values) else (math.nan, math.nan, 0)
                )
            summary.setdefault(variant, {})[split] = cell
    return summary


def markdown_table(summary: dict, metrics: tuple[str, ...] = TABLE_METRICS) -> str:
    """One row per (split, variant): ``mean ± std`` per metric, with the arrow of the better direction (from the
    metric registry; ↑ for a name it does not know)."""
    arrows = [f"{m} {'↓' if m in METRICS and not METRICS[m].higher_is_better else '↑'}" for m in metrics]
    lines = ["| split | model | " + " | ".join(arrows) + " |", "|---|---|" + "---|" * len(metrics)]
    splits = list(dict.fromkeys(s for v in summary.values() for s in v))
    for split in splits:
        for variant, by_split in summary.items():
            if split not in by_split:
                continue
            cells = []
            for m in metrics:
                mean, std, n = by_split[split][m]
                digits = 2 if m == "psnr" else 4
                cells.append("n/a" if n == 0 else f"{mean:.{digits}f} ± {std:.{digits}f}")
            lines.append(f"| {split} | {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def results_sheet(
    split_dir: PathLike,
    predictions: dict[str, PathLike],
    out_png: PathLike,
    *,
    clips: int = 3,
    frames: tuple[int, ...] = (0, 6, 12, 18),
    scale: int = 2,
) -> Path:
    """A contact sheet of results for the docs: per clip, one row each for the ground truth and every model in
    ``predictions`` (name -> prediction folder), each row = the reference, then ``frames`` of the clip."""
    from PIL import Image, ImageDraw

    from animate_anyone.atomic import atomic_path
    from animate_anyone.data.manifest import read_manifest
    from animate_anyone.media import iter_frames

    split_dir = Path(split_dir)
    rows: list[tuple[str, list[np.ndarray]]] = []
    for clip in read_manifest(split_dir)[:clips]:
        reference = np.asarray(Image.open(split_dir / "references" / f"{clip.id}.png").convert("RGB"))
        sources = {"ground truth": clip.video, **{name: Path(p) / clip.id for name, p in predictions.items()}}
        for name, source in sources.items():
            video = list(iter_frames(source))
            rows.append((f"{clip.id} {name}", [reference] + [video[i] for i in frames]))
    h, w = rows[0][1][0].shape[:2]
    label, gap = 150, 2
    sheet = Image.new("RGB", (label + len(rows[0][1]) * (w * scale + gap), len(rows) * (h * scale + gap)), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (name, tiles) in enumerate(rows):
        y = r * (h * scale + gap)
        draw.text((4, y + h * scale // 2 - 12), name.replace(" ", "\n", 1), fill="black")
        for c, tile in enumerate(tiles):
            sheet.paste(
                Image.fromarray(tile).resize((w * scale, h * scale), Image.Resampling.NEAREST),
                (label + c * (w * scale + gap), y),
            )
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_png, ".png") as tmp:
        sheet.save(tmp)
    return out_png
