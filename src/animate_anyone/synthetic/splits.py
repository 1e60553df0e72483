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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .character import Character
from .motion import KINDS, Motion
from .render import Stage

SPLITS = ("train", "heldout_character", "heldout_motion")
TRAIN_TEMPO, HELDOUT_TEMPO = (0.75, 1.0), (1.0, 1.3)
_CHARACTERS, _MOTIONS, _STAGES = {"train": 1, "heldout": 2}, {"train": 3, "heldout": 4}, 5


@dataclass(frozen=True)
class ClipSpec:
    id: str
    split: str
    character: Character
    motion: Motion
    stage: Stage


def character(seed: int, pool: str, index: int) -> Character:
    """The ``index``-th character of ``pool`` ('train' or 'heldout')."""
    rng = np.random.default_rng([seed, _CHARACTERS[pool], index])
    return Character.random(rng, f"char-{pool}-{index:05d}")


def motion(seed: int, pool: str, index: int, duration: float) -> Motion:
    """The ``index``-th motion of ``pool``; ``duration`` (seconds of a clip) bounds a walk's travel."""
    rng = np.random.default_rng([seed, _MOTIONS[pool], index])
    tempo = TRAIN_TEMPO if pool == "train" else HELDOUT_TEMPO
    return Motion.random(rng, KINDS[index % len(KINDS)], f"motion-{pool}-{index:05d}", duration=duration, tempo=tempo)


def clip_spec(seed: int, split: str, index: int, train_pool: int, size: tuple[int, int], duration: float) -> ClipSpec:
    """Clip ``index`` of ``split`` (see the module doc); ``train_pool`` = the number of train clips (>= 1)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; one of {', '.join(SPLITS)}")
    if train_pool < 1:
        raise ValueError(f"the train pool must hold at least one clip, got {train_pool}")
    char_pool, char_index = ("heldout", index) if split == "heldout_character" else ("train", index % train_pool)
    motion_pool, motion_index = ("heldout", index) if split == "heldout_motion" else ("train", index % train_pool)
    who = character(seed, char_pool, char_index)
    stage = Stage.random(np.random.default_rng([seed, _STAGES, SPLITS.index(split), index]), size, who)
    return ClipSpec(f"{split}-{index:05d}", split, who, motion(seed, motion_pool, motion_index, duration), stage)
