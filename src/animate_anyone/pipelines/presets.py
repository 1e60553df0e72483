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

    def guided(self, step: int) -> bool:
        return is_guided(step, self.steps, self.guidance, self.guidance_interval)

    def refresh(self, step: int) -> bool:
        return is_refresh(step, self.cache_interval)

    def unet_rows(self) -> tuple[int, int]:
        """(full, shallow-only) UNet rows per window over the whole schedule: what the preset costs."""
        full = shallow = 0
        for step in range(self.steps):
            rows = 2 if self.guided(step) else 1
            if self.refresh(step):
                full += rows
            else:
                shallow += rows
        return full, shallow


def is_guided(step: int, steps: int, guidance: float, interval: tuple[float, float]) -> bool:
    """Whether step ``step`` (0-based, of ``steps``) runs the unconditional row."""
    start, end = interval
    return guidance > 1.0 and start <= step / steps < end


def is_refresh(step: int, cache_interval: int) -> bool:
    """Whether step ``step`` runs the whole UNet (and refreshes the cached deep features)."""
    return step % cache_interval == 0


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


def make_scheduler(scheduler, name: str):
    """A fresh scheduler of kind ``name`` with ``scheduler``'s noise schedule (betas, prediction type, zero-SNR
    rescaling); "model" returns ``scheduler`` itself."""
    if name not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {name!r}; choose one of {', '.join(SCHEDULERS)}")
    if SCHEDULERS[name] is None:
        return scheduler
    import diffusers

    return getattr(diffusers, SCHEDULERS[name]).from_config(scheduler.config)
