"""Splits: which character, motion and stage each clip gets, as pure functions of ``(seed, split, index)``.

Everything is drawn from ``np.random.default_rng([seed, stream, index])`` with a separate ``stream`` per pool,
so a pool's i-th member never depends on how many members are made or on any other pool:

* characters: pool ``train`` (stream 1, ids ``char-train-NNNNN``) and pool ``heldout`` (stream 2, ids
  ``char-heldout-NNNNN``);
* motions: pool ``train`` (stream 3, ids ``motion-train-NNNNN``, tempo in ``TRAIN_TEMPO`` = [0.75, 1.0)) and pool
  ``heldout`` (stream 4, ids ``motion-heldout-NNNNN``, tempo in ``HELDOUT_TEMPO`` = [1.0, 1.3)); the i-th motion
  of either pool has kind ``KINDS[i % 4]`` (dance, walk, jump, turn);
* stages (framing and background): stream 5, per split and clip.

With ``n`` = the number of train clips (the *train pool*), clip ``i`` of

* ``train`` is train character ``i`` doing train motion ``i``;
* ``heldout_character`` is heldout character ``i`` doing train motion ``i % n``: new characters, motions seen in
  training (the exact ones);
* ``heldout_motion`` is train character ``i % n`` doing heldout motion ``i``: characters seen in training, new
  motions, also at a faster tempo than any train motion (the tempo bands are half-open and disjoint).

So the heldout character ids never occur in ``train`` (different id prefix and seed stream), nor the heldout
motion ids; the heldout motions also differ in tempo from every train motion, by construction.

The world splits (``WORLD_SPLITS``, made only when asked for) measure what users fight most:

* ``long`` clip ``i``: heldout character ``1000 + i`` doing long motion ``i`` (pool ``long``, stream 6: a
  heldout-tempo motion of kind ``KINDS[i % 4]`` without its own travel, on a ``motion.random_route`` that crosses
  the stage with turns and pauses), rendered for ``long_frames`` frames (at least 240: 10 windows of 24);
* ``cross_body_small`` / ``cross_body_large`` clip ``i``: the reference character A = heldout character
  ``2000 + i`` / ``3000 + i`` doing heldout motion ``1000 + i`` / ``2000 + i`` is the ground truth; the *driver*
  B (stream 7: the first of candidates ``[seed, 7, band, i, j]``, j = 0, 1, ..., whose ``proportion_gap`` to A
  lies in the band ``GAPS[split]``) does the same motion on its own stage: same framing as A's for the small gap,
  0.8-0.88x or 1.12-1.2x A's size and shifted sideways for the large gap. Its keypoints are what a user would
  extract from the driving video; A's (the truth's) are what an oracle of retargeting would give. The reference
  image shows A where the motion starts (``reference_at``): retargeting puts the driver's first frame on the
  reference, so these splits measure proportions, not where a user's reference happens to stand.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from .character import Body, Character
from .motion import KINDS, Motion, random_route
from .render import Stage

SPLITS = ("train", "heldout_character", "heldout_motion")  # the benchmark's: what `synthetic make` writes
WORLD_SPLITS = ("long", "cross_body_small", "cross_body_large")  # see the module doc
ALL_SPLITS = SPLITS + WORLD_SPLITS
TRAIN_TEMPO, HELDOUT_TEMPO = (0.75, 1.0), (1.0, 1.3)
LONG_FRAMES = 240  # frames of a long clip, by default (10 windows of 24)
GAPS = {"cross_body_small": (0.04, 0.1), "cross_body_large": (0.25, 1.0)}  # proportion_gap bands of the driver
GAP_LIMBS = ("upper_arm", "lower_arm", "thigh", "shin", "torso", "shoulders", "hips", "neck")
_CHARACTERS, _MOTIONS, _STAGES = {"train": 1, "heldout": 2}, {"train": 3, "heldout": 4, "long": 6}, 5
_DRIVERS = 7
_OFFSETS = {"long": 1000, "cross_body_small": 2000, "cross_body_large": 3000}  # heldout characters of each split


@dataclass(frozen=True)
class ClipSpec:
    id: str
    split: str
    character: Character
    motion: Motion
    stage: Stage
    driver: Character | None = None  # cross-body splits: who drives (its keypoints), on driver_stage
    driver_stage: Stage | None = None


def character(seed: int, pool: str, index: int) -> Character:
    """The ``index``-th character of ``pool`` ('train' or 'heldout')."""
    rng = np.random.default_rng([seed, _CHARACTERS[pool], index])
    return Character.random(rng, f"char-{pool}-{index:05d}")


def motion(seed: int, pool: str, index: int, duration: float) -> Motion:
    """The ``index``-th motion of ``pool``; ``duration`` (seconds of a clip) bounds a walk's travel."""
    rng = np.random.default_rng([seed, _MOTIONS[pool], index])
    tempo = TRAIN_TEMPO if pool == "train" else HELDOUT_TEMPO
    return Motion.random(rng, KINDS[index % len(KINDS)], f"motion-{pool}-{index:05d}", duration=duration, tempo=tempo)


def long_motion(seed: int, index: int, duration: float) -> Motion:
    """The ``index``-th long motion: a heldout-tempo motion whose own travel (a walk's) is replaced by a route
    across the stage for ``duration`` seconds (see the module doc)."""
    rng = np.random.default_rng([seed, _MOTIONS["long"], index])
    base = Motion.random(
        rng, KINDS[index % len(KINDS)], f"motion-long-{index:05d}", duration=duration, tempo=HELDOUT_TEMPO
    )
    channels = {k: v for k, v in base.channels.items() if k != "root_x"}
    if base.kind == "walk":  # the route decides where a walk faces: keep only the sway of its yaw
        channels["turn"] = dataclasses.replace(channels["turn"], bias=0.0)
    return dataclasses.replace(base, channels=channels, velocity=0.0, route=random_route(rng, duration))


def proportion_gap(a: Body, b: Body) -> float:
    """How different two bodies' proportions are: the mean over ``GAP_LIMBS`` of ``|log((b_l / b_height) /
    (a_l / a_height))|`` (0 = the same proportions at any size)."""
    return float(np.mean([abs(math.log(getattr(b, n) / b.height * a.height / getattr(a, n))) for n in GAP_LIMBS]))


def driver(seed: int, split: str, index: int, reference: Character) -> Character:
    """The driver of cross-body clip ``index``: the first candidate whose gap to ``reference`` is in ``GAPS[split]``."""
    low, high = GAPS[split]
    for j in range(10_000):
        rng = np.random.default_rng([seed, _DRIVERS, ALL_SPLITS.index(split), index, j])
        candidate = Character.random(rng, f"char-driver-{split.removeprefix('cross_body_')}-{index:05d}")
        if low <= proportion_gap(reference.body, candidate.body) < high:
            return candidate
    raise RuntimeError(f"no driver within the gap band {GAPS[split]} of {reference.id} in 10,000 candidates")


def reference_at(spec: ClipSpec) -> float:
    """Where the reference image stands (root x, character units): where a cross-body clip's motion starts, else 0."""
    return spec.motion.values(0.0)["root_x"] if spec.driver is not None else 0.0


def clip_spec(seed: int, split: str, index: int, train_pool: int, size: tuple[int, int], duration: float) -> ClipSpec:
    """Clip ``index`` of ``split`` (see the module doc); ``train_pool`` = the number of train clips (>= 1);
    ``duration``: seconds of the clip (a long clip's too)."""
    if split not in ALL_SPLITS:
        raise ValueError(f"unknown split {split!r}; one of {', '.join(ALL_SPLITS)}")
    if train_pool < 1:
        raise ValueError(f"the train pool must hold at least one clip, got {train_pool}")
    clip_id = f"{split}-{index:05d}"
    if split in WORLD_SPLITS:
        who = character(seed, "heldout", _OFFSETS[split] + index)
        rng = np.random.default_rng([seed, _STAGES, ALL_SPLITS.index(split), index])
        stage = Stage.random(rng, size, who)
        if split == "long":
            return ClipSpec(clip_id, split, who, long_motion(seed, index, duration), stage)
        what = motion(seed, "heldout", _OFFSETS[split] - 1000 + index, duration)
        other = driver(seed, split, index, who)
        size_ratio, shift = 1.0, 0.0
        if split == "cross_body_large":
            size_ratio = float(rng.choice([-1.0, 1.0]) * rng.uniform(0.12, 0.2) + 1.0)
            shift = float(rng.choice([-1.0, 1.0]) * rng.uniform(0.05, 0.1) * stage.width)
        scale = stage.scale * size_ratio * who.body.height / other.body.height  # B's pixel height: A's x size_ratio
        other_stage = dataclasses.replace(stage, scale=scale, origin_x=stage.origin_x + shift)
        return ClipSpec(clip_id, split, who, what, stage, other, other_stage)
    char_pool, char_index = ("heldout", index) if split == "heldout_character" else ("train", index % train_pool)
    motion_pool, motion_index = ("heldout", index) if split == "heldout_motion" else ("train", index % train_pool)
    who = character(seed, char_pool, char_index)
    stage = Stage.random(np.random.default_rng([seed, _STAGES, SPLITS.index(split), index]), size, who)
    return ClipSpec(clip_id, split, who, motion(seed, motion_pool, motion_index, duration), stage)
