"""Temporal window schedules: coverage, no wrap-around in the default mode, seams that move, errors."""

from __future__ import annotations

import pytest

from animate_anyone.pipelines.context import blend_weights, moore_windows, shifted_windows, window_schedule


@pytest.mark.parametrize("frames,size,overlap", [(6, 4, 2), (100, 24, 4), (25, 24, 4), (7, 8, 2), (33, 16, 0)])
def test_shifted_windows_cover_every_frame_without_wrapping(frames, size, overlap):
    for step in range(6):
        windows = shifted_windows(frames, size, overlap, step)
        covered = {i for w in windows for i in w}
        assert covered == set(range(frames))
        for w in windows:
            assert w == list(range(w[0], w[0] + len(w)))  # contiguous, in order, never wraps
            assert len(w) == min(size, frames)


def test_shifted_windows_move_their_seams_between_steps():
    starts = {tuple(w[0] for w in shifted_windows(100, 24, 4, step)) for step in range(4)}
    assert len(starts) > 1


def test_blend_weights_fall_off_towards_edges_and_stay_positive():
    w = blend_weights(8, 3)
    assert w == w[::-1] and min(w) > 0 and max(w) == 1.0 and w[0] < w[1] < w[2] < w[3]
    assert blend_weights(5, 0) == [1.0] * 5


def test_moore_schedule_is_closed_loop_and_uniform():
    assert moore_windows(6, 4, 2) == [[0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 0, 1]]
    assert moore_windows(3, 4, 2) == [[0, 1, 2]]
    for _, weights in window_schedule("moore", 10, 4, 1, step_index=3):
        assert weights == [1.0] * 4


@pytest.mark.parametrize("args", [(10, 4, 4), (10, 0, 0), (0, 4, 1), (10, 4, -1)])
def test_bad_windows_are_rejected_with_the_value(args):
    with pytest.raises(ValueError, match="must be"):
        shifted_windows(*args, step_index=0)


def test_unknown_mode_is_named():
    with pytest.raises(ValueError, match="'loop'"):
        window_schedule("loop", 10, 4, 1, 0)
