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


@pytest.mark.parametrize("frames, overlap", [(4, 4), (0, 0), (4, -1)])
def test_bad_windows_are_rejected_with_the_value(frames, overlap):
    """Where the window values are made (the schedules here take them as given: checked once, upstream)."""
    from animate_anyone.pipelines.settings import SamplingSettings, SettingError

    with pytest.raises(SettingError, match=r"context_(frames|overlap) -?\d+: must be"):
        SamplingSettings(context_frames=frames, context_overlap=overlap)


def test_unknown_mode_is_named():
    with pytest.raises(ValueError, match="'loop'"):
        window_schedule("loop", 10, 4, 1, 0)


@pytest.mark.parametrize("frames,size,overlap", [(60, 24, 4), (240, 24, 4), (30, 8, 2), (20, 24, 4)])
def test_anchored_windows_lead_with_the_first_frames_and_cover_the_video(frames, size, overlap):
    from animate_anyone.pipelines.context import anchored_windows

    for step in range(4):
        schedule = window_schedule("anchored", frames, size, overlap, step)
        windows = anchored_windows(frames, size, overlap, step)
        assert [w for w, _ in schedule] == windows
        assert windows[0] == list(range(min(size, frames)))  # the first window is the video's start, in order
        predicted = {f for w, weights in schedule for f, x in zip(w, weights) if x > 0}
        assert predicted == set(range(frames))
        for w, weights in schedule[1:]:
            assert w[:overlap] == list(range(overlap)) and len(w) == size  # led by the anchor
            assert weights[:overlap] == [0.0] * overlap and min(weights[overlap:]) > 0  # anchors not predicted
            assert w[overlap:] == list(range(w[overlap], w[overlap] + size - overlap))


def test_window_seams_are_where_the_covering_windows_change():
    from animate_anyone.pipelines.context import window_seams

    # moore at 10 frames, windows of 4 with overlap 1: [0-3], [3-6], [6-9], [9, 0, 1, 2] (wraps)
    assert window_seams("moore", 10, 4, 1, 0) == [3, 4, 6, 7, 9]
    assert window_seams("shifted", 20, 24, 4, 0) == []  # one window: no seam
    seams = [window_seams("shifted", 100, 24, 4, step) for step in range(3)]
    assert seams[0] != seams[1]  # shifted windows move their seams
    # anchored: frames 0-23 are predicted by the first window only (the anchors' weight is 0 elsewhere), so the
    # first seam is where the second window's own frames begin
    second = window_schedule("anchored", 60, 24, 4, 0)[1][0]
    assert window_seams("anchored", 60, 24, 4, 0)[0] == second[4]
