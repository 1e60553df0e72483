"""Temporal windows for long videos (pure functions).

A schedule returns, for one denoising step, the list of windows (frame indices, in the order the temporal
layers see them) and a per-position blend weight for each window. Predictions of a frame are averaged over
the windows that cover it with those weights.

* ``moore``: the public implementation's closed-loop "uniform" schedule, identical at every step; windows
  wrap around the end of the video (frame 0 follows the last frame) and weights are uniform.
* ``shifted`` (default): windows never wrap; their offset changes from step to step so seams do not stay in
  place, and weights fall off linearly towards a window's edges so the seams are blended.
* ``anchored``: ``shifted`` windows of ``context_frames - context_overlap`` frames over the frames after the
  first ``context_overlap``, each led by those first frames (the anchor), so the temporal layers of every window
  attend to the same frames and no window drifts away from the start. Only the first window (which is then the
  video's first ``context_frames`` frames, in order) predicts the anchor frames: elsewhere their weight is 0.
"""

from __future__ import annotations

WINDOW_MODES = ("shifted", "moore", "anchored")


def moore_windows(num_frames: int, context_frames: int, context_overlap: int) -> list[list[int]]:
    """Moore-AnimateAnyone's ``uniform`` schedule at step 0 (the only step it uses), closed loop, with its
    default ``context_stride`` 1 (the recorded reference run's too): windows of consecutive frames only."""
    if num_frames <= context_frames:
        return [list(range(num_frames))]
    starts = range(0, num_frames, context_frames - context_overlap)
    return [[i % num_frames for i in range(start, start + context_frames)] for start in starts]


def shifted_windows(num_frames: int, context_frames: int, context_overlap: int, step_index: int) -> list[list[int]]:
    """Non-wrapping windows of ``context_frames`` with ``context_overlap``, offset by the step index.

    Consecutive windows start ``context_frames - context_overlap`` apart; at step ``k`` the grid is shifted
    by ``k * (stride // 2 + 1) mod stride`` frames so seams move between steps. Every frame is covered.
    """
    if num_frames <= context_frames:
        return [list(range(num_frames))]
    stride = context_frames - context_overlap
    shift = (step_index * (stride // 2 + 1)) % stride
    starts = list(range(shift - stride if shift else 0, num_frames - context_frames + 1, stride))
    starts = sorted({min(max(s, 0), num_frames - context_frames) for s in starts} | {num_frames - context_frames})
    return [list(range(s, s + context_frames)) for s in starts]


def anchored_windows(num_frames: int, context_frames: int, context_overlap: int, step_index: int) -> list[list[int]]:
    """``shifted_windows`` over frames ``context_overlap ..`` with ``context_frames - context_overlap`` frames each,
    every window led by frames ``0 .. context_overlap - 1`` (see the module doc); one window for a short video."""
    anchor = list(range(context_overlap))
    if num_frames <= context_frames or context_overlap == 0:
        return shifted_windows(num_frames, context_frames, context_overlap, step_index)
    body, overlap = context_frames - context_overlap, min(context_overlap, context_frames - context_overlap - 1)
    rest = shifted_windows(num_frames - context_overlap, body, overlap, step_index)
    return [anchor + [context_overlap + i for i in window] for window in rest]


def blend_weights(length: int, ramp: int) -> list[float]:
    """Per-position weights of a window: 1 in the middle, falling linearly over ``ramp`` frames at each edge
    (never 0, so a frame covered by a single window keeps its prediction)."""
    if ramp <= 0:
        return [1.0] * length
    return [min(1.0, (i + 1) / (ramp + 1), (length - i) / (ramp + 1)) for i in range(length)]


def window_schedule(
    mode: str, num_frames: int, context_frames: int, context_overlap: int, step_index: int
) -> list[tuple[list[int], list[float]]]:
    """(frames, weights) for every window of one denoising step."""
    if mode == "moore":
        return [(w, [1.0] * len(w)) for w in moore_windows(num_frames, context_frames, context_overlap)]
    if mode == "shifted":
        windows = shifted_windows(num_frames, context_frames, context_overlap, step_index)
        return [(w, blend_weights(len(w), context_overlap)) for w in windows]
    if mode == "anchored":
        windows = anchored_windows(num_frames, context_frames, context_overlap, step_index)
        if len(windows) == 1:
            return [(windows[0], blend_weights(len(windows[0]), context_overlap))]
        a = context_overlap
        return [
            (w, ([1.0] * a if k == 0 else [0.0] * a) + blend_weights(len(w) - a, min(a, len(w) - a - 1)))
            for k, w in enumerate(windows)
        ]
    raise ValueError(f"unknown window mode {mode!r}; choose one of {WINDOW_MODES}")


def window_seams(mode: str, num_frames: int, context_frames: int, context_overlap: int, step_index: int) -> list[int]:
    """The frames ``t`` (1 <= t < num_frames) where the set of windows that predict a frame (weight > 0) differs
    from frame ``t - 1``'s at step ``step_index``: where windows meet."""
    covering: list[set[int]] = [set() for _ in range(num_frames)]
    schedule = window_schedule(mode, num_frames, context_frames, context_overlap, step_index)
    for k, (frames, weights) in enumerate(schedule):
        for frame, weight in zip(frames, weights):
            if weight > 0:
                covering[frame].add(k)
    return [t for t in range(1, num_frames) if covering[t] != covering[t - 1]]
