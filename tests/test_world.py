"""The world splits (long, cross-body), their masks, and the world metrics, each against a planted defect."""

from __future__ import annotations

import filecmp
import json
import math

import numpy as np
import pytest

from animate_anyone.evaluation.evaluate import ALL_METRICS
from animate_anyone.evaluation.registry import METRICS, Kind
from animate_anyone_lab import world_metrics as W
from animate_anyone_lab.dataset import make_dataset
from animate_anyone_lab.render import background
from animate_anyone_lab.splits import GAPS, clip_spec, long_motion, proportion_gap

WORLD = {"long": 1, "cross_body_small": 1, "cross_body_large": 1}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The three world splits, one clip each, as exact PNG frames: 32 px, long clips of 48 frames."""
    out = tmp_path_factory.mktemp("world") / "a"
    make_dataset(out, WORLD, size=(32, 32), frames=4, fps=12, video="png", long_frames=48)
    return out


def test_world_splits_regenerate_byte_for_byte(world, tmp_path, monkeypatch):
    import time

    later = time.struct_time((2031, 2, 3, 4, 5, 6, 0, 34, 0))
    monkeypatch.setattr(time, "localtime", lambda *_: later)  # another day: no file may carry the time it was made
    again = make_dataset(tmp_path / "b", WORLD, size=(32, 32), frames=4, fps=12, video="png", long_frames=48)
    files = sorted(p.relative_to(world) for p in world.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    kinds = {p.parts[1] for p in files if len(p.parts) > 2}
    assert {"masks", "driver_poses", "reference_poses", "copied", "videos", "poses", "references"} <= kinds
    _, mismatch, errors = filecmp.cmpfiles(world, again, [str(p) for p in files], shallow=False)
    assert not mismatch and not errors


def test_masks_are_exact(world):
    from animate_anyone.media import iter_frames

    for split in WORLD:
        clip = f"{split}-00000"
        spec = clip_spec(0, split, 0, 1, (32, 32), (48 if split == "long" else 4) / 12)
        frames = np.stack(list(iter_frames(world / split / "videos" / clip)))
        with np.load(world / split / "masks" / f"{clip}.npz") as m:
            character, static = m["character"], m["static"]
        assert character.shape == frames.shape[:3] and character.any(axis=(1, 2)).all()  # a character every frame
        backdrop = np.clip(np.rint(background(spec.stage)), 0, 255).astype(np.uint8)
        assert static.mean() > 0.2 and (frames[:, static] == backdrop[static]).all()  # static = the backdrop, exactly
        assert not (static & character.any(axis=0)).any()
        covered = np.pad(character.any(axis=0), 1)
        near = np.zeros_like(static)
        for dy in (0, 1, 2):
            for dx in (0, 1, 2):
                near |= covered[dy : dy + 32, dx : dx + 32]
        assert not (static & near).any()  # nothing within a pixel of the character (its anti-aliased edge)


def test_long_motions_cross_the_stage_with_turns_and_pauses():
    fps, seconds = 12, 20.0
    for i in range(4):
        motion = long_motion(0, i, seconds)
        values = [motion.values(t / fps) for t in range(int(seconds * fps))]
        x = np.array([v["root_x"] for v in values])
        turn = np.abs([v["turn"] for v in values])
        still = np.abs(np.diff(x)) < 1e-4
        longest_pause = max(len(run) for run in "".join("1" if s else "0" for s in still).split("0"))
        assert x.max() - x.min() > 0.3 and np.abs(x).max() <= 0.35 + 0.1  # crosses, stays on the stage
        assert longest_pause >= 0.8 * fps and turn.max() > 0.6
        assert np.abs(np.diff(x)).max() < 0.07 and np.abs(np.diff(x, 2)).max() < 0.01  # smooth: no jump, no kink
        again = type(motion).from_dict(json.loads(json.dumps(motion.to_dict())))
        assert again == motion


def test_cross_body_drivers_differ_in_proportions_by_their_band():
    for split, (low, high) in GAPS.items():
        for i in range(3):
            spec = clip_spec(0, split, i, 1, (64, 64), 2.0)
            assert low <= proportion_gap(spec.character.body, spec.driver.body) < high
            size = spec.driver_stage.scale * spec.driver.body.height / (spec.stage.scale * spec.character.body.height)
            if split == "cross_body_small":
                assert size == pytest.approx(1.0) and spec.driver_stage.origin_x == spec.stage.origin_x
            else:
                assert 0.8 <= size <= 0.88 or 1.12 <= size <= 1.2


def test_aligned_driver_takes_the_reference_proportions(world):
    """`pose align` on the exact keypoints: the retargeted limbs are the reference character's, not the driver's."""
    from animate_anyone.data.manifest import read_manifest
    from animate_anyone.pose.align import limb_lengths
    from animate_anyone.pose.keypoints import load_pose
    from animate_anyone_lab.benchmark import driving_pose

    split = world / "cross_body_large"
    clip = read_manifest(split)[0]
    pelvis = [
        (p.body[0, 0, 8, 0] + p.body[0, 0, 11, 0]) / 2
        for p in (load_pose(clip.pose), load_pose(split / "reference_poses" / f"{clip.id}.npz"))
    ]
    assert pelvis[0] == pytest.approx(pelvis[1], abs=1e-3)  # the reference stands where the motion starts
    own, raw, aligned = (limb_lengths(driving_pose(split, clip, d))[5:] for d in ("truth", "raw", "aligned"))
    limbs = np.abs(raw - own) > 0.5  # arms, legs and torso (the face points move with a turn: not rigid)
    assert limbs.sum() >= 4
    assert np.abs(aligned - own)[limbs].max() < 0.25 * np.abs(raw - own)[limbs].min()


# ------------------------------------------------------------------------------------- metrics, planted defects


def _video(frames=48, size=16, seed=0):
    """A smooth moving pattern, float in [0, 1]."""
    t, y, x = np.meshgrid(np.arange(frames), np.arange(size), np.arange(size), indexing="ij")
    base = (
        0.5
        + 0.3 * np.sin(0.4 * x + 0.15 * t)[..., None] * np.array([1.0, 0.6, 0.3])
        + 0.05 * np.cos(0.3 * y)[..., None]
    )
    return np.clip(base, 0, 1)


def test_the_lab_declares_the_world_metrics_and_evaluate_leaves_them_out():
    names = list(W.WORLD_METRICS)
    world_metrics = "window_gap drift_slope seam_ratio char_color_drift bg_color_drift bg_change bg_psnr leakage"
    assert names == world_metrics.split()
    assert all(m.kind is Kind.WORLD for m in W.WORLD_METRICS.values())
    assert {n for n, m in W.WORLD_METRICS.items() if m.higher_is_better} == {"window_gap", "drift_slope", "bg_psnr"}
    assert not set(names) & (set(ALL_METRICS) | set(METRICS))  # the product's registry has none of them


def test_seam_ratio_sees_a_seam():
    gt = _video()
    rng = np.random.default_rng(0)
    noisy = np.clip(gt + rng.normal(0, 0.01, gt.shape), 0, 1)
    seams = [12, 24, 36]
    seamed = noisy.copy()
    for k, start in enumerate([0] + seams):
        seamed[start : start + 12] += 0.03 * (k % 2)  # each window its own brightness: a jump at every seam
    assert W.seam_ratio(seamed, gt, seams) > 2.0
    assert 0.85 < W.seam_ratio(noisy, gt, seams) < 1.15
    assert math.isnan(W.seam_ratio(noisy, gt, []))


def test_color_drift_measures_a_colour_moving_more_than_the_truth():
    gt = _video()
    mask = np.zeros(gt.shape[:3], bool)
    mask[:, 4:12, 4:12] = True
    drifted = gt.copy()
    drifted[..., 0] += np.linspace(0, 6 / 255, len(gt))[:, None, None]  # red rises by 6/255 over the clip
    expected = np.linspace(0, 6, 48)[-12:].mean() - np.linspace(0, 6, 48)[:12].mean()  # last minus first window
    assert W.color_drift(drifted, gt, mask, 12) == pytest.approx(expected, rel=1e-6)
    assert W.color_drift(drifted, gt, mask[0], 12) == pytest.approx(expected, rel=1e-6)  # a static mask
    assert W.color_drift(gt, gt, mask, 12) == 0
    assert math.isnan(W.color_drift(gt, gt, mask, 30))  # windows overlap


def test_window_gap_and_drift_slope_see_a_long_video_falling_behind():
    gt = _video(frames=96)
    rng = np.random.default_rng(1)
    fresh = np.clip(gt + rng.normal(0, 0.02, gt.shape), 0, 1)
    growing = np.clip(gt + rng.normal(0, 1, gt.shape) * np.linspace(0.02, 0.08, 96)[:, None, None, None], 0, 1)
    assert W.last_window_gap(growing, gt, fresh, 24) < -6  # 4x the noise at the end: about -12 dB
    assert W.drift_slope(growing, gt, fresh) < -5
    assert W.last_window_gap(fresh, gt, fresh, 24) == 0 and W.drift_slope(fresh, gt, fresh) == pytest.approx(0)


def test_background_change_and_psnr_see_flicker_in_the_static_region():
    gt = _video()
    static = np.zeros(gt.shape[1:3], bool)
    static[:, :4] = True
    still = gt.copy()
    still[:, static] = 0.5  # a perfectly steady background
    flickering = still.copy()
    flickering[1::2][:, static] += 2 / 255  # every other frame 2/255 brighter
    assert W.background_change(still, static) == 0
    assert W.background_change(flickering, static) == pytest.approx(2.0)
    assert W.background_psnr(still, still, static) == W.PSNR_CAP
    half = (W.PSNR_CAP + 10 * np.log10(255**2 / 4)) / 2  # identical frames count as the cap
    assert W.background_psnr(flickering, still, static) == pytest.approx(half)


def test_leakage_is_zero_for_the_truth_and_one_for_the_copied_body():
    gt = _video()
    copied = gt.copy()
    copied[:, 5:9, 10:14] = [0.9, 0.1, 0.1]  # a longer limb
    half = (gt + copied) / 2
    assert W.leakage(gt, gt, copied) == 0
    assert W.leakage(copied, gt, copied) == pytest.approx(1)
    assert W.leakage(half, gt, copied) == pytest.approx(0.5)
    assert math.isnan(W.leakage(gt, gt, gt))


def test_measure_split_end_to_end(world):
    """The truth scores as the truth (no leak, a static background that does not move), the copied body as a leak."""
    from animate_anyone_lab.measure import measure_split

    split = world / "cross_body_large"
    truth = measure_split(split, split / "videos")["metrics"]
    copied = measure_split(split, split / "copied")["metrics"]
    assert truth["leakage"]["mean"] == 0 and copied["leakage"]["mean"] == pytest.approx(1)
    assert truth["bg_change"]["mean"] == 0 and truth["bg_psnr"]["mean"] == W.PSNR_CAP
    assert truth["window_gap"]["mean"] is None  # no fresh clips given: not measured
    long = measure_split(world / "long", world / "long" / "videos")["metrics"]
    assert long["char_color_drift"]["mean"] == 0 and long["seam_ratio"]["mean"] is None  # no windows recorded
    with pytest.raises(ValueError, match="predict.json"):  # fresh clips must say how they were made
        measure_split(world / "long", world / "long" / "videos", fresh_dir=world / "long" / "videos")


def test_predict_world_options(world, tmp_path):
    """--chunk animates fresh short clips (each piece as its own pipeline call), --window-mode and --driver change
    what runs and are recorded; the packaged (trained) miniature model, whose temporal layers make windows matter
    (a random one's output is its noise: the schemes differ by 1 level there)."""
    import torch
    from PIL import Image

    from animate_anyone.assets import packaged_model
    from animate_anyone.data.manifest import read_manifest
    from animate_anyone.evaluation.record import read_record
    from animate_anyone.media import iter_frames
    from animate_anyone.pipelines import AnimateAnyonePipeline
    from animate_anyone.pipelines.settings import SamplingRequest
    from animate_anyone.pose.keypoints import load_pose
    from animate_anyone_lab.benchmark import predict_split
    from animate_anyone_lab.render import pose_images

    def run(name, split="long", **options):
        request = SamplingRequest(steps=2, window_mode=options.pop("window_mode", None))
        out = predict_split(model, world / split, tmp_path / name, sampling=request, progress=False, **options)
        clip = read_manifest(world / split)[0]
        return np.stack(list(iter_frames(out / clip.id))).astype(int), read_record(out)

    model = packaged_model()
    whole, record = run("shifted")
    chunked, chunk_record = run("chunked", chunk=24)
    anchored, anchored_record = run("anchored", window_mode="anchored")
    assert record["window"]["window_mode"] == "shifted" and "driving" not in record
    assert anchored_record["window"]["window_mode"] == "anchored" and chunk_record["driving"] == {"chunk": 24}
    assert np.abs(whole - anchored).max() > 8 and np.abs(whole - chunked).max() > 8

    clip = read_manifest(world / "long")[0]
    pipe = AnimateAnyonePipeline.from_pretrained(model)
    pipe.set_progress_bar_config(disable=True)
    noise = pipe.initial_noise(48, 32, 32, torch.Generator().manual_seed(0))  # the whole clip's, as its seed draws it
    second = pipe(
        Image.open(world / "long" / "references" / f"{clip.id}.png").convert("RGB"),
        pose_images(load_pose(clip.pose))[24:48],
        {"steps": 2, "guidance": 2.0, "context_frames": 24, "context_overlap": 4},
        height=32,
        width=32,
        generator=torch.Generator().manual_seed(0),
        output_type="np",
        latents=noise[:, :, 24:48],
    ).frames
    assert np.abs(chunked[24:48] - np.asarray(second).astype(int)).max() <= 1  # the second piece, as a fresh clip

    # synthetic measure on these folders: the final step's seams from predict.json, fresh clips checked
    from animate_anyone.pipelines.context import window_seams
    from animate_anyone_lab.measure import measure_split

    result = measure_split(world / "long", tmp_path / "shifted", fresh_dir=tmp_path / "chunked")
    assert result["seams"][clip.id] == window_seams("shifted", 48, 24, 4, 1)  # 2 steps: the last is step 1
    assert result["metrics"]["window_gap"]["mean"] is not None and result["metrics"]["seam_ratio"]["mean"] > 0
    with pytest.raises(ValueError, match="chunk"):
        measure_split(world / "long", tmp_path / "shifted", fresh_dir=tmp_path / "anchored")  # not fresh clips

    truth, _ = run("truth", split="cross_body_large")
    raw, raw_record = run("raw", split="cross_body_large", driver="raw")
    assert raw_record["driving"]["driver"] == "raw" and raw_record["driving"]["poses"].startswith("sha256:")
    assert np.abs(truth - raw).max() > 8
    with pytest.raises(ValueError, match="driver_poses"):
        run("bad", driver="raw")


def test_the_original_splits_are_unchanged_by_the_world(tmp_path):
    """The three benchmark splits regenerate to the very bytes the code before the world splits wrote (commit
    28e8d7a; tests/fixtures/synthetic_v1_sha256.json, every file but the manifests, which hold absolute paths)."""
    import hashlib
    from pathlib import Path

    expected = json.loads((Path(__file__).parent / "fixtures" / "synthetic_v1_sha256.json").read_text())
    out = make_dataset(tmp_path / "v1", 2, size=(32, 32), frames=4, fps=12, video="png")
    got = {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name != "manifest.jsonl"
    }
    assert got == expected
