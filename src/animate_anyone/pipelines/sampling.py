"""The denoising loop over a whole video, with overlapping temporal windows."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from contextlib import nullcontext

import torch
from torch import Tensor

from ..distributed import Ranks
from ..models import AnimateAnyone, ReferenceBank
from .context import window_schedule
from .feature_cache import DeepFeatureCache
from .settings import SamplingSettings


@torch.no_grad()
def sample_video(
    model: AnimateAnyone,
    scheduler,
    noise: Tensor,
    image_embeds: Tensor,
    pose_features: Tensor | Callable[[Tensor], Tensor],
    reference: ReferenceBank | None,
    settings: SamplingSettings,
    *,
    generator: torch.Generator | None = None,
    eta: float = 0.0,
    callback: Callable[[int, int], None] | None = None,
    window_batch: int = 1,
    on_step_end: Callable[[int, Tensor, Tensor], Tensor | None] | None = None,
    interrupted: Callable[[], bool] | None = None,
    stats: dict[str, int] | None = None,
    ranks: Ranks = Ranks(),
) -> Tensor:
    """Denoise ``noise`` (batch, 4, frames, h, w; unit variance, scaled here by the scheduler's initial sigma)
    with ``settings`` (``pipelines.settings.SamplingSettings``, already checked: steps, guidance, solver-independent
    step plan, windows); returns the final latents. ``scheduler`` is the solver to step with (the pipeline makes it
    from ``settings.scheduler``).

    At every step each window is predicted (guided rows [uncond, cond]), predictions are averaged per frame
    with the windows' blend weights, then one scheduler step is taken on the whole video. ``callback(step,
    window)`` is called after every window (for progress bars), ``on_step_end(step, timestep, latents)`` after every
    scheduler step; the latents it returns (None: the same) are the ones the next step takes. ``interrupted()`` is
    asked before every step: True ends the loop there, and the latents so far are returned.

    ``pose_features`` is either the whole video's (b, C0, frames, h, w) or a function from a window's frame
    indices to that window's features; the pipeline passes a function so that long videos never hold pose
    features for all frames at once.

    ``window_batch``: up to this many windows of a step (of equal length) go through the UNet in one call,
    stacked on the batch axis. Rows are independent, so this changes float rounding only; it trades memory
    (activations grow with the batch) for fewer, larger kernel launches.

    The speed settings (``settings.plan``: the one rule, which ``unet_rows`` counts from): step ``i`` is guided
    only when ``start <= i / steps < end`` (``guidance_interval``), and with ``cache_interval`` > 1 only every
    ``cache_interval``-th step runs the whole UNet, the others its ``cache_depth`` outer levels on the window grid
    of their refresh step (``pipelines.feature_cache``; windows then go one per call, whatever
    ``window_batch`` says). ``stats``, when given, receives the UNet rows run: "full_rows" and "shallow_rows" (rows
    x windows, summed over the steps), and "windows" (the windows run at each step).

    ``ranks``: the processes that share this video (``distributed.Ranks``; default this process alone, whatever
    process group exists). Handed several, each process predicts the windows ``rank, rank + world, ...`` of every
    step; the per-frame weighted sums and weights are summed over the processes (one all-reduce of the latents' size
    per step) and every process takes the same scheduler step. ``stats`` and
    ``callback`` then count this process's own windows. With caching, every process keeps the deep features of its
    own windows, which are the same windows at the refresh step and at the steps that reuse them.
    """
    plan = settings.plan
    cache = None
    if any(not s.refresh for s in plan):
        cache = DeepFeatureCache(model.denoising_unet, settings.cache_depth)
        window_batch = 1  # the cache keeps features per call of one window
    counts = {"full_rows": 0, "shallow_rows": 0, "windows": []}
    pose_of = pose_features if callable(pose_features) else lambda idx: pose_features[:, :, idx]
    num_frames = noise.shape[2]
    scheduler.set_timesteps(settings.steps, device=noise.device)
    latents = noise * scheduler.init_noise_sigma  # (b, 4, F, h, w)
    accepted = _step_parameters(scheduler)
    step_kwargs = {k: v for k, v in {"eta": eta, "generator": generator}.items() if k in accepted}
    schedules = step_schedules(plan, settings, num_frames)
    total = torch.empty_like(latents, dtype=torch.float32)  # (b, 4, F, h, w): the weighted sum of the predictions
    weight = torch.empty(num_frames, device=latents.device, dtype=torch.float32)  # (F,): their weights
    for step_index, (t, step, schedule) in enumerate(zip(scheduler.timesteps, plan, schedules)):
        if interrupted is not None and interrupted():
            break
        # 1. Windows of this step (on its refresh step's grid) and their blend weights; the sums start at zero.
        total.zero_(), weight.zero_()
        model_input = scheduler.scale_model_input(latents, t)
        guidance = settings.guidance if step.guided else 1.0  # this step's: 1 runs the conditional row alone
        if cache is not None and step.refresh:
            cache.refresh(step.keep)
        mine = ranks.mine(len(schedule))
        counts["windows"].append(len(mine))
        # 2. Guided prediction per window (or per group of windows), accumulated per frame.
        for group in _window_groups(schedule, window_batch, mine):
            idxs = [torch.tensor(schedule[i][0], device=latents.device) for i in group]
            if len(group) == 1:
                window = schedule[group[0]][0]
                pose = pose_of(torch.tensor(window))  # host indices: the pose frames live on the host
                with cache.call(window, step.kinds, not step.refresh) if cache is not None else nullcontext(False):
                    preds = [model.denoise(model_input[:, :, idxs[0]], t, image_embeds, pose, reference, guidance)]
            else:
                windows = [torch.tensor(schedule[i][0]) for i in group]
                preds = _denoise_windows(
                    model, model_input, t, image_embeds, pose_of, reference, guidance, idxs, windows
                )
            rows = len(step.kinds) * latents.shape[0] * len(group)
            counts["full_rows" if step.refresh else "shallow_rows"] += rows
            for window_index, idx, pred in zip(group, idxs, preds):
                w = torch.tensor(schedule[window_index][1], device=latents.device, dtype=torch.float32)
                total.index_add_(2, idx, pred.float() * w.view(1, 1, -1, 1, 1))
                weight.index_add_(0, idx, w)
                if callback is not None:
                    callback(step_index, window_index)
        ranks.all_reduce_sum(total, weight)  # the other processes' windows (nothing to do alone)
        noise_pred = (total / weight.view(1, 1, -1, 1, 1)).to(latents.dtype)
        # 3. One scheduler step on the whole video.
        latents = scheduler.step(noise_pred, t, latents, **step_kwargs, return_dict=False)[0]
        if on_step_end is not None:
            changed = on_step_end(step_index, t, latents)
            latents = latents if changed is None else changed
    if stats is not None:
        stats.update(counts)
    return latents


def step_schedules(plan, settings: SamplingSettings, num_frames: int) -> list[list[tuple[list[int], list[float]]]]:
    """The windows (frames, blend weights) of every step of ``plan`` (``settings.plan``) under the windows of
    ``settings``: each step uses the grid of its refresh step (``StepPlan.grid``)."""
    mode, size, overlap = settings.window_mode, settings.context_frames, settings.context_overlap
    return [window_schedule(mode, num_frames, size, overlap, step.grid) for step in plan]


def _window_groups(schedule, window_batch: int, indices: list[int] | None = None) -> list[list[int]]:
    """Window indices (``indices``, default all) in groups of at most ``window_batch`` consecutive ones of the
    same length."""
    groups: list[list[int]] = []
    for i in range(len(schedule)) if indices is None else indices:
        frames = schedule[i][0]
        last = groups[-1] if groups else None
        if last is not None and len(last) < window_batch and len(schedule[last[0]][0]) == len(frames):
            last.append(i)
        else:
            groups.append([i])
    return groups


def _denoise_windows(model, model_input, t, image_embeds, pose_of, reference: ReferenceBank, guidance, idxs, windows):
    """One UNet call for several windows stacked on the batch axis (``idxs``: their frames on the latents' device,
    ``windows``: the same on the host, for ``pose_of``); returns one (b, 4, f, h, w) per window."""
    b, n = model_input.shape[0], len(idxs)
    latents = torch.cat([model_input[:, :, idx] for idx in idxs])  # (n*b, 4, f, h, w)
    pose = torch.cat([pose_of(window).expand(b, -1, -1, -1, -1) for window in windows])
    embeds = image_embeds.expand(b, -1, -1)
    embeds = embeds if b == 1 else embeds.repeat(n, 1, 1)
    bank_rows = 1 if reference is None else next(iter(reference.tokens.values())).shape[0]
    if bank_rows != 1:  # one bank row per video row: repeat it for every window
        reference = ReferenceBank(
            tokens={k: v.repeat(n, 1, 1) for k, v in reference.tokens.items()},
            keys_values=None
            if reference.keys_values is None
            else {k: (kk.repeat(n, 1, 1, 1), vv.repeat(n, 1, 1, 1)) for k, (kk, vv) in reference.keys_values.items()},
        )
    pred = model.denoise(latents, t, embeds, pose, reference, guidance)  # (n*b, 4, f, h, w)
    return list(pred.split(b))


def _step_parameters(scheduler) -> set[str]:
    return set(inspect.signature(scheduler.step).parameters)
