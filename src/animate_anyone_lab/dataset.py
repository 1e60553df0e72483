"""``make_dataset``: write the synthetic benchmark in the training data format; ``preview``: a contact sheet.

Layout under ``out``::

    synthetic.json                  the generator settings (seed, size, frames, fps, counts, ...)
    <split>/manifest.jsonl          the training data format (``data.manifest``), written last
    <split>/quarantine.jsonl        empty
    <split>/videos/<id>.mp4         the rendered clip, the ground truth (or a folder of PNG frames: video="png")
    <split>/poses/<id>.npz          its exact keypoints (``PoseSequence``, one person)
    <split>/references/<id>.png     the clip's character in the neutral pose on the clip's stage
    <split>/pose_images/<id>.mp4    only with ``pose_videos``: the keypoints drawn by ``pose.draw``
    <split>/characters.json, motions.json, clips.json   id -> definition (``to_dict``); clip -> ids + stage
    <split>/masks/<id>.npz          world splits (``splits.WORLD_SPLITS``): ``character`` (F, H, W) and ``static``
                                    (H, W) bool masks (``render.clip_masks``)
    <split>/driver_poses/<id>.npz   cross-body splits: the driver's keypoints (what a user extracts from the driving
                                    video); ``poses/`` holds the truth's (the reference character's own)
    <split>/reference_poses/<id>.npz  cross-body splits: the reference image's keypoints (one frame)
    <split>/copied/<id>.mp4         cross-body splits: the reference character with the driver's proportions, size
                                    and place (a full copy of the driver's skeleton; ``world_metrics.leakage``)

Every file is written to a temporary sibling and renamed into place, the manifest after everything else, so
an interrupted run leaves no half-written file and no manifest naming missing files. Rerunning with the same
settings skips clips whose video, keypoints and reference exist; other settings need ``overwrite=True`` (or a
new folder). MP4 is H.264 yuv420p at ``crf`` (default 6, near-lossless; the colour resolution is halved), PNG
folders are exact.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image

from animate_anyone.atomic import atomic_path, write_text
from animate_anyone.data.manifest import QUARANTINE_NAME, Clip, write_manifest
from animate_anyone.jsonl import write_jsonl
from animate_anyone.media import write_video
from animate_anyone.pose.keypoints import PoseSequence, write_npz

from .motion import Motion
from .render import Stage, background, clip_keypoints, clip_masks, pose_images, reference_image, render_clip
from .splits import (
    ALL_SPLITS,
    LONG_FRAMES,
    SPLITS,
    WORLD_SPLITS,
    ClipSpec,
    character,
    clip_spec,
    motion,
    reference_at,
)

FORMAT_VERSION = 1
CRF = 6
CONFIG_NAME = "synthetic.json"

PathLike = str | os.PathLike[str]


def make_dataset(
    out: PathLike,
    clips: int | dict[str, int],
    *,
    size: tuple[int, int] = (128, 128),
    frames: int = 24,
    fps: float = 12,
    seed: int = 0,
    splits: tuple[str, ...] = SPLITS,
    video: str = "mp4",
    crf: int = CRF,
    pose_videos: bool = False,
    overwrite: bool = False,
    progress: bool = False,
    train_pool: int | None = None,
    long_frames: int = LONG_FRAMES,
    names: Mapping[str, str] | None = None,
) -> Path:
    """Write the benchmark (module doc) and return ``out``.

    ``clips``: clips per split, or a dict split -> count. The train pool (characters and motions the heldout
    splits pair with, see ``splits``) has as many members as there are train clips (``clips`` itself when
    ``train`` is not written, unless ``train_pool`` says). ``size = (width, height)``; ``video``: 'mp4' or 'png'.
    The world splits (``splits.WORLD_SPLITS``) are written only when ``clips`` names them; ``long`` clips have
    ``long_frames`` frames (>= 10 x ``frames``), the others ``frames``. ``names``: the caller's names for the
    parameters in messages (a command's flags).
    """
    from tqdm.auto import tqdm

    counts = dict(clips) if isinstance(clips, dict) else {s: int(clips) for s in splits}
    unknown = set(counts) - set(ALL_SPLITS)
    width, height = (int(v) for v in size)
    if unknown or any(n < 0 for n in counts.values()) or not any(counts.values()):
        raise ValueError(f"clips must be a count >= 1 or a dict over {ALL_SPLITS} of counts >= 0, got {clips!r}")
    if min(width, height) < 16 or frames < 1 or not fps > 0 or seed < 0 or video not in ("mp4", "png"):
        raise ValueError(
            f"need size >= 16 px, frames >= 1, fps > 0, seed >= 0, video 'mp4' or 'png'; got "
            f"{size}, {frames}, {fps}, {seed}, {video!r}"
        )
    if counts.get("long") and long_frames < 10 * frames:
        raise ValueError(f"long_frames must be at least 10 x frames = {10 * frames}, got {long_frames}")
    pool = train_pool or counts.get("train") or max(counts.values())
    out = Path(out)
    config = {
        "version": FORMAT_VERSION,
        "seed": seed,
        "size": [width, height],
        "frames": frames,
        "fps": float(fps),
        "counts": counts,
        "train_pool": pool,
        "video": video,
        "crf": crf,
        "pose_videos": pose_videos,
        **({"long_frames": long_frames} if counts.get("long") else {}),
    }
    old = out / CONFIG_NAME
    if old.is_file() and json.loads(old.read_text()) != config and not overwrite:
        raise FileExistsError(
            f"{out}: holds a synthetic dataset made with other settings ({old}); use a new folder or pass "
            f"{(names or {}).get('overwrite', 'overwrite')}"
        )
    write_json(old, config)
    bar = tqdm(total=sum(counts.values()), desc="synthetic clips", unit="clip", disable=not progress)
    for split, count in counts.items():
        root, entries, meta = out / split, [], {"characters": {}, "motions": {}, "clips": {}}
        length = long_frames if split == "long" else frames
        for i in range(count):
            spec = clip_spec(seed, split, i, pool, (width, height), length / fps)
            entries.append(write_clip(root, spec, length, fps, video, crf, pose_videos, overwrite))
            meta["characters"][spec.character.id] = spec.character.to_dict()
            meta["motions"][spec.motion.id] = spec.motion.to_dict()
            meta["clips"][spec.id] = {
                "character": spec.character.id,
                "motion": spec.motion.id,
                "stage": spec.stage.to_dict(),
            }
            if spec.driver is not None:
                meta["characters"][spec.driver.id] = spec.driver.to_dict()
                meta["clips"][spec.id].update(driver=spec.driver.id, driver_stage=spec.driver_stage.to_dict())
            bar.update(1)
        for name, value in meta.items():
            write_json(root / f"{name}.json", value)
        write_jsonl(root / QUARANTINE_NAME, [])
        write_manifest(root, entries)
    bar.close()
    return out


def write_clip(
    root: Path,
    spec: ClipSpec,
    frames: int,
    fps: float,
    video: str = "mp4",
    crf: int = CRF,
    pose_videos: bool = False,
    overwrite: bool = False,
) -> Clip:
    """Render one clip into ``root`` (unless its files exist and not ``overwrite``); its manifest entry."""
    video_path = root / "videos" / (f"{spec.id}.mp4" if video == "mp4" else spec.id)
    pose_path, ref_path = root / "poses" / f"{spec.id}.npz", root / "references" / f"{spec.id}.png"
    extra = root / "pose_images" / f"{spec.id}.mp4"
    world = spec.split in WORLD_SPLITS
    mask_path, driver_path = root / "masks" / f"{spec.id}.npz", root / "driver_poses" / f"{spec.id}.npz"
    ref_pose_path = root / "reference_poses" / f"{spec.id}.npz"
    copied_path = root / "copied" / (f"{spec.id}.mp4" if video == "mp4" else spec.id)
    wanted = [video_path, pose_path, ref_path] + ([extra] if pose_videos else []) + ([mask_path] if world else [])
    wanted += [driver_path, ref_pose_path, copied_path] if spec.driver is not None else []
    if overwrite or not all(p.exists() for p in wanted):
        backdrop = background(spec.stage)
        images, keypoints, ids = render_clip(
            spec.character, spec.motion, spec.stage, frames, fps, ids=world, backdrop=backdrop
        )
        write_image(ref_path, reference_image(spec.character, spec.stage, backdrop, at=reference_at(spec)))
        keypoints.save(pose_path)
        if world:
            people, static = clip_masks(spec.character, spec.motion, spec.stage, fps, images, ids, backdrop)
            with atomic_path(mask_path, suffix=".npz") as tmp:
                write_npz(tmp, {"character": people, "static": static})
        if spec.driver is not None:
            driver_keypoints(spec, frames, fps).save(driver_path)
            reference_keypoints(spec).save(ref_pose_path)
            copied = dataclasses.replace(spec.character, body=spec.driver.body)
            copy_images, _, _ = render_clip(copied, spec.motion, spec.driver_stage, frames, fps, backdrop=backdrop)
            write_video(copied_path, copy_images, fps, **({"crf": crf} if video == "mp4" else {}))
        if pose_videos:
            write_video(extra, pose_images(keypoints), fps, crf=crf)
        write_video(video_path, images, fps, **({"crf": crf} if video == "mp4" else {}))
    return Clip(
        spec.id, video_path.resolve(), pose_path.resolve(), frames, float(fps), spec.stage.width, spec.stage.height
    )


def driver_keypoints(spec: ClipSpec, frames: int, fps: float) -> PoseSequence:
    """The cross-body driver's keypoints: ``spec.driver`` doing ``spec.motion`` on ``spec.driver_stage``."""
    return clip_keypoints(spec.driver, spec.motion, spec.driver_stage, frames, fps)


def reference_keypoints(spec: ClipSpec) -> PoseSequence:
    """The keypoints of the reference image (one frame): the character's neutral pose on its stage."""
    return clip_keypoints(spec.character, Motion.still(at=reference_at(spec)), spec.stage, 1, 1.0)


def write_json(path: Path, value) -> Path:
    """``value`` as indented JSON, atomically."""
    return write_text(path, json.dumps(value, indent=1) + "\n")


def write_image(path: Path, image: np.ndarray) -> Path:
    """An RGB PNG, atomically."""
    with atomic_path(path, suffix=".png") as tmp:
        Image.fromarray(image).save(tmp)
    return path


def preview(
    out_png: PathLike,
    seed: int = 0,
    *,
    characters: int = 4,
    frames: int = 4,
    size: int = 128,
    fps: float = 12,
    duration: float = 2.0,
) -> Path:
    """A contact sheet for docs: one row per train character (motion kinds in turn): the reference, ``frames``
    frames spread over ``duration`` seconds, then the same frames' pose images (``pose.draw``)."""
    rows, gap = [], 2
    for i in range(characters):
        who, what = character(seed, "train", i), motion(seed, "train", i, duration)
        stage = Stage.random(np.random.default_rng([seed, 99, i]), (size, size), who)
        steps = max(1, int(duration * fps) // frames)
        backdrop = background(stage)
        images, keypoints, _ = render_clip(who, what, stage, steps * frames, fps, backdrop=backdrop)
        picked = list(range(0, steps * frames, steps))
        poses = pose_images(keypoints.select(picked), scale=max(0.4, size / 256))
        tiles = [reference_image(who, stage, backdrop)] + [images[k] for k in picked] + list(poses)
        row = np.full((size, len(tiles) * (size + gap) - gap, 3), 255, np.uint8)
        for k, tile in enumerate(tiles):
            row[:, k * (size + gap) : k * (size + gap) + size] = tile
        rows.append(row)
    sheet = np.full((len(rows) * (size + gap) - gap, rows[0].shape[1], 3), 255, np.uint8)
    for k, row in enumerate(rows):
        sheet[k * (size + gap) : k * (size + gap) + size] = row
    return write_image(Path(out_png), sheet)
