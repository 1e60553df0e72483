"""The synthetic benchmark generator: determinism, exact keypoints, rigid limbs, splits, dataset writer, CLI."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math

import numpy as np
import pytest

from animate_anyone_lab.character import Character, Style, Texture
from animate_anyone_lab.dataset import make_dataset, preview
from animate_anyone_lab.kinematics import PART_NAMES, pose
from animate_anyone_lab.motion import KINDS, Motion
from animate_anyone_lab.render import Stage, render_clip
from animate_anyone_lab.splits import HELDOUT_TEMPO, SPLITS, TRAIN_TEMPO, clip_spec

SIZE, FPS = (128, 128), 12.0
RIGID = ((2, 3), (3, 4), (5, 6), (6, 7), (8, 9), (9, 10), (11, 12), (12, 13))  # COCO-18 limb segments
# joint -> the parts that are built on it (a pixel at the joint shows one of them unless a later part covers it)
ATTACHED = {
    1: ("torso", "neck"),
    4: ("lower_arm_r", "hand_r"),
    7: ("lower_arm_l", "hand_l"),
    10: ("shin_r", "foot_r"),
    13: ("shin_l", "foot_l"),
}


def spec(index: int, seed: int = 0, split: str = "train", size=SIZE):
    return clip_spec(seed, split, index, 8, size, 2.0)


def test_definitions_round_trip_through_json():
    for i in range(6):
        s = spec(i)
        for obj in (s.character, s.motion, s.stage):
            again = type(obj).from_dict(json.loads(json.dumps(obj.to_dict())))
            assert again.to_dict() == obj.to_dict()
        assert s.motion.kind == KINDS[i % 4]


def test_same_seed_same_clip_other_seed_other_clip():
    a, b, c = spec(1), spec(1), spec(1, seed=1)
    fa, ka, _ = render_clip(a.character, a.motion, a.stage, 6, FPS)
    fb, kb, _ = render_clip(b.character, b.motion, b.stage, 6, FPS)
    fc, kc, _ = render_clip(c.character, c.motion, c.stage, 6, FPS)
    assert np.array_equal(fa, fb) and np.array_equal(ka.body, kb.body)
    assert not np.array_equal(fa, fc) and not np.allclose(ka.body, kc.body)
    assert len({json.dumps(spec(i).character.to_dict()) for i in range(5)}) == 5
    assert fa.shape == (6, 128, 128, 3) and fa.dtype == np.uint8


def _flat(character: Character) -> tuple[Character, dict[str, tuple]]:
    """The character with every style a unique solid colour (outline included), and style -> colour."""
    grid = [(r, g, b) for r in (0, 127, 254) for g in (0, 127, 254) for b in (0, 127, 254)][1:]  # far apart
    colours = {name: grid[k] for k, name in enumerate(character.styles)}
    styles = {
        n: Style(s.shape, Texture("solid", (colours[n],)), colours[n], s.roundness) for n, s in character.styles.items()
    }
    return dataclasses.replace(character, styles=styles), colours


def _dominant(pixel: np.ndarray, colours: dict[str, tuple]) -> tuple[str, float]:
    """The colour that makes up most of ``pixel`` when it is read as a blend of two of ``colours`` (an
    anti-aliased edge), and the blend's residual."""
    names, c = list(colours), np.array(list(colours.values()), np.float64)
    a, b = c[:, None], c[None, :]
    span = a - b
    alpha = np.clip(((pixel - b) * span).sum(-1) / np.maximum((span**2).sum(-1), 1e-9), 0, 1)
    residual = np.linalg.norm(pixel - (b + alpha[..., None] * span), axis=-1)
    i, j = np.unravel_index(np.argmin(residual), residual.shape)
    return (names[i] if alpha[i, j] >= 0.5 else names[j]), float(residual[i, j])


def test_keypoints_sit_on_their_body_parts_in_the_pixels():
    """At the pixel under the neck, wrists and ankles the frame shows the part built on that joint, unless a part
    drawn later covers it: checked in the RGB frame (every style a flat colour, on white) and in the per-side
    part-id map."""
    hits = total = 0
    for i in range(8):  # two clips of each motion kind, different characters and stages
        s = spec(i)
        character, colours = _flat(s.character)
        stage = dataclasses.replace(s.stage, background="solid", colors=((255, 255, 255),), shadow=False)
        frames, keypoints, ids = render_clip(character, s.motion, stage, 12, FPS, ids=True)
        for f in range(len(frames)):
            order = {}
            for k, part in enumerate(pose(character, s.motion, f / FPS).parts):
                order.setdefault(part.name, k)
            for joint, parts in ATTACHED.items():
                x, y = (int(v) for v in np.floor(keypoints.body[f, 0, joint, :2]))
                if not (0 <= x < SIZE[0] and 0 <= y < SIZE[1]):
                    continue
                total += 1
                shown = PART_NAMES[ids[f, y, x]] if ids[f, y, x] >= 0 else None
                style, residual = _dominant(frames[f, y, x].astype(np.float64), {**colours, "white": (255, 255, 255)})
                if shown in parts:
                    hits += 1
                    assert residual < 3 and style in {p[:-2] if p[-2:] in ("_r", "_l") else p for p in parts}, (
                        i,
                        f,
                        joint,
                        shown,
                        style,
                        residual,
                    )
                else:  # covered by a part drawn after one of the joint's parts
                    assert shown is not None and order[shown] > min(order[p] for p in parts), (i, f, joint, shown)
    assert total > 400 and hits / total > 0.9


def test_parts_are_built_exactly_on_the_keypoints():
    for i in range(4):
        s = spec(i)
        rig = pose(s.character, s.motion, 0.37)
        parts = {p.name: p for p in rig.parts}
        for name, (a, b) in {
            "lower_arm_r": (3, 4),
            "upper_arm_l": (5, 6),
            "thigh_r": (8, 9),
            "shin_l": (12, 13),
        }.items():
            p = parts[name]
            np.testing.assert_allclose(p.start + p.axis * p.width0, rig.keypoints[a], atol=1e-12)
            np.testing.assert_allclose(p.start + p.axis * (p.length - p.width1), rig.keypoints[b], atol=1e-12)


def test_limbs_are_rigid_within_a_clip_and_vary_across_characters():
    """Limb segments and neck-to-pelvis keep their length (1e-3 px); the breadth (shoulder span) may not: a turn
    squashes it on purpose (see kinematics)."""
    ratios = []
    for i in range(8):
        s = spec(i)
        _, keypoints, _ = render_clip(s.character, s.motion, s.stage, 24, FPS)
        body = keypoints.body[:, 0, :, :2].astype(np.float64)
        lengths = [np.linalg.norm(body[:, a] - body[:, b], axis=1) for a, b in RIGID]
        lengths.append(np.linalg.norm(body[:, 1] - (body[:, 8] + body[:, 11]) / 2, axis=1))
        for length in lengths:
            assert np.ptp(length) < 1e-3, np.ptp(length)
        b = s.character.body
        expected = [b.upper_arm, b.lower_arm] * 2 + [b.thigh, b.shin] * 2 + [b.torso]
        np.testing.assert_allclose([x[0] for x in lengths], np.array(expected) * s.stage.scale, rtol=1e-5)
        ratios.append([x[0] / lengths[-1][0] for x in lengths[:-1]])
        if s.motion.kind == "turn":
            assert np.ptp(np.linalg.norm(body[:, 2] - body[:, 5], axis=1)) > 1.0  # the squash is visible
    assert np.ptp(np.array(ratios), axis=0).min() > 0.1  # proportions differ between characters


def test_motions_are_smooth():
    for i, kind in enumerate(KINDS * 2):
        m = Motion.random(np.random.default_rng(i), kind)
        t = np.linspace(0, 4, 2001)
        values = np.array([[v for v in m.values(x).values()] for x in t])
        step = np.abs(np.diff(values, axis=0)).max()
        accel = np.abs(np.diff(values, 2, axis=0)).max()
        assert step < 0.03 and accel < 1e-3, (kind, step, accel)  # no jumps, no kinks at dt = 2 ms


def test_splits_never_overlap():
    n = 12
    specs = {split: [clip_spec(3, split, i, n, (64, 64), 2.0) for i in range(n)] for split in SPLITS}
    chars = {s: {c.character.id: json.dumps(c.character.to_dict()) for c in v} for s, v in specs.items()}
    moves = {s: {c.motion.id: json.dumps(c.motion.to_dict()) for c in v} for s, v in specs.items()}
    assert not set(chars["heldout_character"]) & set(chars["train"])
    assert not set(chars["heldout_character"].values()) & set(chars["train"].values())
    assert set(chars["heldout_motion"].items()) <= set(chars["train"].items())
    assert not set(moves["heldout_motion"]) & set(moves["train"])
    assert not set(moves["heldout_motion"].values()) & set(moves["train"].values())
    assert set(moves["heldout_character"].items()) <= set(moves["train"].items())
    assert all(TRAIN_TEMPO[0] <= c.motion.tempo < TRAIN_TEMPO[1] for c in specs["train"])
    assert all(HELDOUT_TEMPO[0] <= c.motion.tempo < HELDOUT_TEMPO[1] for c in specs["heldout_motion"])
    assert len({c.id for v in specs.values() for c in v}) == 3 * n


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A tiny benchmark made through the CLI (2 clips per split, 64 px, 6 frames)."""
    from animate_anyone_lab.cli import synthetic

    out = tmp_path_factory.mktemp("synthetic") / "bench"
    parser = argparse.ArgumentParser()
    synthetic.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(
        ["synthetic", "make", "--out", str(out), "--clips", "2", "--size", "64", "--frames", "6", "--quiet"]
    )
    args.run(args)
    return out


def test_cli_dataset_loads_in_the_training_format(made):
    from animate_anyone.data.dataset import VideoPoseDataset
    from animate_anyone.data.manifest import read_manifest, read_quarantine

    for split in SPLITS:
        root = made / split
        clips = read_manifest(root)
        assert [c.id for c in clips] == [f"{split}-00000", f"{split}-00001"]
        assert all((c.num_frames, c.width, c.height, c.fps) == (6, 64, 64, 12.0) for c in clips)
        assert read_quarantine(root) == [] and (root / "quarantine.jsonl").is_file()
        meta = {n: json.loads((root / f"{n}.json").read_text()) for n in ("characters", "motions", "clips")}
        assert set(meta["clips"]) == {c.id for c in clips} and len(meta["characters"]) == 2
        assert all((root / "references" / f"{c.id}.png").is_file() for c in clips)
        sample = VideoPoseDataset(root, frames=4, resolution=(64, 64))[1, 7]
        assert sample["pixels"].shape == (3, 4, 64, 64) and sample["pose"].shape == (3, 4, 64, 64)
        assert sample["pixels"].abs().max() <= 1 and sample["pose"].max() > 0.5  # a skeleton was drawn
        assert sample["reference"].shape == (3, 64, 64)


def test_make_dataset_resumes_and_guards_other_settings(made):
    video = made / "train" / "videos" / "train-00000.mp4"
    pose_file = made / "train" / "poses" / "train-00001.npz"
    before = video.stat().st_mtime_ns
    pose_file.unlink()
    make_dataset(made, 2, size=(64, 64), frames=6, fps=12)
    assert video.stat().st_mtime_ns == before and pose_file.is_file()
    with pytest.raises(FileExistsError):
        make_dataset(made, 2, size=(64, 64), frames=8, fps=12)


def test_preview_contact_sheet(tmp_path):
    from PIL import Image

    path = preview(tmp_path / "sheet.png", 0, characters=2, frames=2, size=64)
    assert Image.open(path).size == (5 * 66 - 2, 2 * 66 - 2)


def test_stage_framing_keeps_the_character_in_the_frame():
    for i in range(8):
        s = spec(i, size=(96, 160))
        _, keypoints, _ = render_clip(s.character, s.motion, s.stage, 24, FPS)
        ankles = keypoints.body[:, 0, [10, 13], 1]
        assert ankles.max() < s.stage.ground and keypoints.body[:, 0, 1, 1].min() > 0  # feet above ground, neck in
        assert isinstance(s.stage, Stage) and s.stage.width == 96 and not math.isnan(s.stage.scale)


def test_small_autoencoder_trains_and_saves_a_stock_vae(tmp_path):
    """A few steps only (quality needs thousands): the result is a diffusers AutoencoderKL with its latent scale set."""
    import torch
    from diffusers import AutoencoderKL

    from animate_anyone.models.sizes import MINI_LATENT_CHANNELS
    from animate_anyone_lab.autoencoder import reconstruction_psnr, train_autoencoder
    from toy_data import make_toy_dataset

    data = make_toy_dataset(tmp_path / "toy", clips=2, frames=4, size=(32, 32))
    out = train_autoencoder([data], tmp_path / "vae", size=32, steps=3, batch_size=2, progress=False)
    vae = AutoencoderKL.from_pretrained(out)
    assert 0 < vae.config.scaling_factor < 100 and vae.config.latent_channels == MINI_LATENT_CHANNELS == 8
    assert vae.encode(torch.zeros(1, 3, 32, 32)).latent_dist.mean.shape == (1, 8, 8, 8)  # 4x downsampling
    assert not vae.config.mid_block_add_attention
    assert reconstruction_psnr(vae, torch.zeros(1, 3, 32, 32)) > 0


def test_decoder_fine_tune_with_perceptual_and_adversarial_losses(tmp_path):
    """The decoder-only fine-tune with LPIPS and the patch adversarial loss keeps the encoder (so the latents and
    every model trained on them) bit for bit, and each loss reaches the decoder: the three fine-tunes (plain,
    + perceptual, + adversarial) from the same start and seed end with three different decoders."""
    import torch
    from diffusers import AutoencoderKL

    from animate_anyone_lab.autoencoder import train_autoencoder
    from toy_data import make_toy_dataset

    data = make_toy_dataset(tmp_path / "toy", clips=2, frames=4, size=(32, 32))
    base = train_autoencoder([data], tmp_path / "vae", size=32, steps=2, batch_size=2, progress=False)
    common = dict(size=32, steps=3, batch_size=2, progress=False, init=base, decoder_only=True)
    variants = {
        "plain": {},
        "perceptual": dict(perceptual_weight=1.0, perceptual_net="alex"),
        "adversarial": dict(adversarial_weight=0.5, adversarial_start=1),
    }
    start = AutoencoderKL.from_pretrained(base).state_dict()
    decoders = {}
    for name, extra in variants.items():
        vae = AutoencoderKL.from_pretrained(train_autoencoder([data], tmp_path / name, **common, **extra))
        state = vae.state_dict()
        frozen = [k for k in state if k.startswith(("encoder.", "quant_conv."))]
        assert frozen and all(torch.equal(state[k], start[k]) for k in frozen), name
        assert vae.config.scaling_factor == AutoencoderKL.from_pretrained(base).config.scaling_factor
        decoders[name] = torch.cat([v.flatten() for k, v in state.items() if k.startswith("decoder.")])
        assert not torch.equal(
            decoders[name], torch.cat([v.flatten() for k, v in start.items() if k.startswith("decoder.")])
        )
    assert not torch.equal(decoders["plain"], decoders["perceptual"])
    assert not torch.equal(decoders["plain"], decoders["adversarial"])
    with pytest.raises(ValueError, match="adversarial_weight=-1"):
        train_autoencoder([data], tmp_path / "bad", **common, adversarial_weight=-1)


def test_adversarial_loss_pieces():
    """The hinge loss and the adaptive weight on constructed inputs with known answers."""
    import torch

    from animate_anyone_lab.autoencoder import PatchDiscriminator, adaptive_weight, hinge_discriminator_loss

    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    # real: relu(1 - 2) = 0, relu(1 - 0.5) = 0.5 -> 0.25; fake: relu(1 - 2) = 0, relu(1 + 0) = 1 -> 0.5
    assert hinge_discriminator_loss(real, fake).item() == pytest.approx(0.5 * (0.25 + 0.5))
    w = torch.ones(4, 4, requires_grad=True)
    # gradients 3 and 0.5 everywhere: the ratio of their norms is 6 (up to the 1e-4 guard)
    assert adaptive_weight((3 * w).sum(), 0.5 * w.sum(), w).item() == pytest.approx(6.0, rel=1e-3)
    assert adaptive_weight((3 * w).sum(), 0 * w.sum(), w).item() == 1e4  # clamped
    assert PatchDiscriminator()(torch.zeros(2, 3, 64, 64)).shape == (2, 1, 14, 14)
