"""Sampling presets: how many denoising steps, which solver, where guidance applies, and deep-feature caching.

    pipe(reference, poses, preset="fast")                      # the fast preset
    pipe(reference, poses, preset="fast", cache_interval=1)    # ... without feature caching
    animate-anyone animate ... --preset fast --steps 10        # the same from the command line

A preset is a named ``SamplingPreset``; every field can be overridden one by one (a ``None`` override keeps the
preset's value). The settings:

* ``steps``, ``guidance``: denoising steps and classifier-free guidance scale (<= 1: no unconditional row).
* ``scheduler``: a diffusers solver built from the model directory's noise schedule (``SCHEDULERS``); None: the
  model directory's own scheduler (DDIM for the public weights, LCM for a distilled student).
* ``guidance_interval``: (start, end) as fractions of the steps; step ``i`` of ``n`` is guided when
  ``start <= i / n < end`` and runs the conditional row alone otherwise (half the UNet rows).
* ``cache_interval``, ``cache_depth``: DeepCache-style reuse (``pipelines.feature_cache``). Every
  ``cache_interval``-th step runs the whole UNet and keeps the features entering its ``cache_depth`` outermost
  up-blocks; the steps between recompute only those outer levels (down and up) and take the deep features
  from the cache. 1: off.

``quality`` is the pipeline's historical default (Moore-AnimateAnyone's 25 guided DDIM steps). ``fast`` cuts
UNet work about 5x (12 steps of DPM-Solver++ instead of 25, guidance on the first half only, the deep levels
recomputed every second step); its quality cost is measured in docs/benchmark.md and its speed in
docs/performance.md. ``student`` is for a few-step distilled model (``train distill``): 4 steps of its own
(LCM) scheduler, guidance folded into the weights.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

ROW_KINDS = ("uncond", "cond")  # the UNet rows of a guided call, in batch order
SCHEDULERS: dict[str, str | None] = {  # name -> diffusers class; "model": the model directory's own
    "model": None,
    "ddim": "DDIMScheduler",
    "dpm++": "DPMSolverMultistepScheduler",
    "euler": "EulerDiscreteScheduler",
    "unipc": "UniPCMultistepScheduler",
    "lcm": "LCMScheduler",
}


@dataclass(frozen=True)
class SamplingPreset:
    steps: int = 25
    guidance: float = 3.5
    scheduler: str = "model"  # a key of SCHEDULERS
    guidance_interval: tuple[float, float] = (0.0, 1.0)
    cache_interval: int = 1
    cache_depth: int = 1

    def __post_init__(self):
        if self.steps < 1:
            raise ValueError(f"steps (num_inference_steps, --steps) must be >= 1, got {self.steps}")
        if self.guidance < 0:
            raise ValueError(
                f"guidance (guidance_scale, --guidance) must be >= 0 (1 or less disables guidance), got {self.guidance}"
            )
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"unknown scheduler {self.scheduler!r}; choose one of {', '.join(SCHEDULERS)}")
        start, end = self.guidance_interval
        if not 0.0 <= start < end <= 1.0:
            raise ValueError(
                f"guidance_interval must be (start, end) with 0 <= start < end <= 1, got {self.guidance_interval}"
                " (to switch guidance off, set guidance to 1)"
            )
        if self.cache_interval < 1:
            raise ValueError(f"cache_interval must be >= 1 (1: no caching), got {self.cache_interval}")
        if self.cache_depth < 1:
            raise ValueError(f"cache_depth must be >= 1, got {self.cache_depth}")

    def plan(self) -> tuple[StepPlan, ...]:
        """What each step runs (``step_plan``): the one rule the sampler follows and the costs are counted from."""
        return step_plan(self.steps, self.guidance, self.guidance_interval, self.cache_interval)

    def unet_rows(self) -> tuple[int, int]:
        """(full, shallow-only) UNet rows per window over the whole schedule: what the preset costs."""
        full = sum(len(s.kinds) for s in self.plan() if s.refresh)
        shallow = sum(len(s.kinds) for s in self.plan() if not s.refresh)
        return full, shallow


@dataclass(frozen=True)
class StepPlan:
    """What one denoising step runs.

    ``kinds``: its UNet rows, in batch order (("uncond", "cond") when guided, ("cond",) otherwise). ``refresh``:
    the whole UNet runs; otherwise only the outer levels, on the deep features its refresh step kept. ``grid``:
    the step whose window grid it uses (itself when it refreshes, else its refresh step's, so that every window
    finds the features it kept). ``keep``: the row kinds a refresh step keeps for the shallow steps after it.
    """

    kinds: tuple[str, ...]
    refresh: bool
    grid: int
    keep: tuple[str, ...] = ()

    @property
    def guided(self) -> bool:
        return "uncond" in self.kinds


def is_guided(step: int, steps: int, guidance: float, interval: tuple[float, float]) -> bool:
    """Whether step ``step`` (0-based, of ``steps``) runs the unconditional row."""
    start, end = interval
    return guidance > 1.0 and start <= step / steps < end


def step_plan(
    steps: int, guidance: float, guidance_interval: tuple[float, float] = (0.0, 1.0), cache_interval: int = 1
) -> tuple[StepPlan, ...]:
    """The plan of every step. Step ``i`` refreshes when ``i`` is a multiple of ``cache_interval``, and also when
    it is guided but its refresh step was not (no unconditional features were kept to reuse): its cost is then a
    whole step, which ``unet_rows`` counts too."""
    plan: list[StepPlan] = []
    last = 0  # the latest refresh step
    for i in range(steps):
        kinds = ("uncond", "cond") if is_guided(i, steps, guidance, guidance_interval) else ("cond",)
        refresh = i % cache_interval == 0 or not set(kinds) <= set(plan[last].kinds)
        last = i if refresh else last
        plan.append(StepPlan(kinds, refresh, last))
    keep = {i: {k for s in plan if not s.refresh and s.grid == i for k in s.kinds} for i in range(steps)}
    return tuple(
        dataclasses.replace(s, keep=tuple(k for k in ROW_KINDS if k in keep[i])) if s.refresh else s
        for i, s in enumerate(plan)
    )


PRESETS: dict[str, SamplingPreset] = {
    "quality": SamplingPreset(),
    "fast": SamplingPreset(steps=12, scheduler="dpm++", guidance_interval=(0.0, 0.5), cache_interval=2, cache_depth=1),
    "student": SamplingPreset(steps=4, guidance=1.0),
}


def resolve_preset(preset: str | SamplingPreset | None = None, **overrides) -> SamplingPreset:
    """The preset (a name, a ``SamplingPreset``, or None: ``quality``) with the non-None ``overrides`` applied."""
    if preset is None:
        preset = "quality"
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        preset = PRESETS[preset]
    fields = {f.name for f in dataclasses.fields(SamplingPreset)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown preset setting(s) {unknown}; known: {sorted(fields)}")
    changes = {k: v for k, v in overrides.items() if v is not None}
    if "guidance_interval" in changes:
        changes["guidance_interval"] = tuple(float(x) for x in changes["guidance_interval"])
    return dataclasses.replace(preset, **changes)


class SettingsWarning(UserWarning):
    """Sampling settings that do not suit the model they run on (``mismatch``)."""


def mismatch(settings: SamplingPreset, distilled: bool, name: str | None = None) -> str | None:
    """One line saying why ``settings`` (of the preset ``name``, when it has one) do not suit the model, or None.

    A distilled student (``train distill``, model directory ``default_preset: student``) has its guidance folded
    into its weights and was trained for its own few-step LCM schedule: guidance above 1 applies it twice, and
    another solver or feature caching samples a function it was not trained for. A model that was never
    distilled needs its guided multi-step schedule: the ``student`` preset's few unguided steps leave it blurred.
    """
    if not distilled:
        if name == "student" or (name is None and settings == PRESETS["student"]):
            return (
                "preset student is for a model distilled with `train distill`; this model was not distilled, so "
                "4 unguided steps leave the video blurred: use --preset quality or fast"
            )
        return None
    reasons = []
    if settings.guidance > 1:
        reasons.append(f"guidance {settings.guidance:g} applies guidance twice (use --guidance 1)")
    if settings.scheduler not in ("model", "lcm"):
        reasons.append(f"scheduler {settings.scheduler} is not the LCM schedule it was trained for")
    if settings.cache_interval > 1:
        reasons.append(f"cache_interval {settings.cache_interval} reuses features between its few steps")
    if not reasons:
        return None
    what = f"preset {name}" if name else "these sampling settings"
    return (
        f"{what} on a distilled student (its guidance is in its weights): "
        + "; ".join(reasons)
        + ("; use --preset student")
    )


def make_scheduler(scheduler, name: str):
    """A fresh scheduler of kind ``name`` with ``scheduler``'s noise schedule (betas, prediction type, zero-SNR
    rescaling); "model" returns ``scheduler`` itself."""
    if name not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {name!r}; choose one of {', '.join(SCHEDULERS)}")
    if SCHEDULERS[name] is None:
        return scheduler
    import diffusers

    return getattr(diffusers, SCHEDULERS[name]).from_config(scheduler.config)
