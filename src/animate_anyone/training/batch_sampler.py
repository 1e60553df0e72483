"""Which sample every process sees at every micro-step: a pure function of (seed, position).

Sample position ``s`` (0, 1, 2, ... over the whole run) is clip ``perm(seed, epoch)[s % N]`` of epoch
``s // N``, and its random choices (frames, crop, noise, timestep, dropout) are seeded by
``sample_seed(seed, s)``. Micro-step ``m`` of process ``p`` (of ``P``) takes positions
``[(m * P + p) * B, ... + B)``. Resuming is therefore just "start at micro-step m": no data-loader state.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def sample_seed(seed: int, position: int) -> int:
    return int(np.random.SeedSequence([seed, position]).generate_state(1)[0])


class ResumableBatchSampler:
    """Yields lists of (clip index, sample seed) forever, starting at micro-step ``start``."""

    def __init__(
        self, num_clips: int, batch_size: int, seed: int, start: int = 0, process_index: int = 0, num_processes: int = 1
    ):
        if num_clips < 1:
            raise ValueError("the dataset has no usable clips")
        self.num_clips, self.batch_size, self.seed, self.start = num_clips, batch_size, seed, start
        self.process_index, self.num_processes = process_index, num_processes
        self._perm_epoch, self._perm = -1, None

    def _clip(self, position: int) -> int:
        epoch = position // self.num_clips
        if epoch != self._perm_epoch:
            self._perm = np.random.default_rng([self.seed, epoch]).permutation(self.num_clips)
            self._perm_epoch = epoch
        return int(self._perm[position % self.num_clips])

    def batch(self, micro_step: int) -> list[tuple[int, int]]:
        first = (micro_step * self.num_processes + self.process_index) * self.batch_size
        return [(self._clip(s), sample_seed(self.seed, s)) for s in range(first, first + self.batch_size)]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        micro_step = self.start
        while True:
            yield self.batch(micro_step)
            micro_step += 1
