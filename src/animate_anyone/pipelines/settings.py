"""The sampling settings: one type from every front end to the sampler, resolved once, each value checked once.

    pipe(reference, poses, "fast")                                          # a preset by name
    pipe(reference, poses, SamplingRequest(preset="fast", cache_interval=1))  # ... without feature caching
    animate-anyone animate ... --preset fast --steps 10                     # the same from the command line

A front end (the ``animate`` command and its config file, the Python API, the app, the ComfyUI node, batch jobs, the
benchmarks) fills a ``SamplingRequest``: a preset name and any of the fields below, ``None`` meaning "the preset's"
(or the default window). ``SamplingRequest.resolve(ModelDefaults)`` turns it into ``SamplingSettings``, against the
model's own default preset and limits, and that object goes whole to the sampler (``pipelines.sampling``). Every
value rule lives here (``RULES``, checked when a ``SamplingSettings`` is made, and the model's limits in
``resolve``); a broken rule raises ``SettingError``, which names the field, the value and the rule, and which a
front end may rename to its own flag (``SettingError.named``). The fields:

* ``steps``, ``guidance``: denoising steps and classifier-free guidance scale (<= 1: no unconditional row).
* ``scheduler``: a diffusers solver built from the model directory's noise schedule (``SCHEDULERS``); "model": the
  model directory's own scheduler (DDIM for the public weights, LCM for a distilled student).
* ``guidance_interval``: (start, end) as fractions of the steps; step ``i`` of ``n`` is guided when
  ``start <= i / n < end`` and runs the conditional row alone otherwise (half the UNet rows).
* ``cache_interval``, ``cache_depth``: DeepCache-style reuse (``pipelines.feature_cache``). Every
  ``cache_interval``-th step runs the whole UNet and keeps the features entering its ``cache_depth`` outermost
  up-blocks; the steps between recompute only those outer levels (down and up) and take the deep features
  from the cache. 1: off.
* ``context_frames``, ``context_overlap``, ``window_mode``: the temporal windows of a long video
  (``pipelines.context``).

``quality`` is the pipeline's historical default (Moore-AnimateAnyone's 25 guided DDIM steps). ``fast`` cuts
UNet work about 5x (12 steps of DPM-Solver++ instead of 25, guidance on the first half only, the deep levels
recomputed every second step); its quality cost is measured in docs/benchmark.md and its speed in
docs/performance.md. ``student`` is for a few-step distilled model (``train distill``): 4 steps of its own
(LCM) scheduler, guidance folded into the weights. A preset sets no window: those keep their defaults.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..config import SettingError
from .context import WINDOW_MODES

ROW_KINDS = ("uncond", "cond")  # the UNet rows of a guided call, in batch order
SCHEDULERS: dict[str, str | None] = {  # name -> diffusers class; "model": the model directory's own
    "model": None,
    "ddim": "DDIMScheduler",
    "dpm++": "DPMSolverMultistepScheduler",
    "euler": "EulerDiscreteScheduler",
    "unipc": "UniPCMultistepScheduler",
    "lcm": "LCMScheduler",
}
STEP_FIELDS = ("steps", "guidance", "scheduler", "guidance_interval", "cache_interval", "cache_depth")
WINDOW_FIELDS = ("context_frames", "context_overlap", "window_mode")


def _whole(low: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= low


def _interval(v: Any) -> bool:
    return (
        isinstance(v, (tuple, list))
        and len(v) == 2
        and all(isinstance(x, numbers.Real) and not isinstance(x, bool) for x in v)
        and 0 <= v[0] < v[1] <= 1
    )


# field -> (the rule holds for the value, the rule in words); context_overlap's rule also reads context_frames
RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "steps": (_whole(1), "must be a whole number >= 1"),
    "guidance": (
        lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) and v >= 0,
        "must be a finite number >= 0 (1 or less turns classifier-free guidance off)",
    ),
    "scheduler": (lambda v: v in SCHEDULERS, f"must be one of {', '.join(SCHEDULERS)}"),
    "guidance_interval": (
        _interval,
        "must be [start, end] with 0 <= start < end <= 1 (to switch guidance off, set guidance to 1)",
    ),
    "cache_interval": (_whole(1), "must be a whole number >= 1 (1: no feature caching)"),
    "cache_depth": (_whole(1), "must be a whole number >= 1 (the outer UNet levels run at every step)"),
    "context_frames": (_whole(1), "must be a whole number >= 1"),
    "context_overlap": (_whole(0), "must be a whole number >= 0 and less than context_frames"),
    "window_mode": (lambda v: v in WINDOW_MODES, f"must be one of {', '.join(WINDOW_MODES)}"),
}


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


@dataclass(frozen=True)
class SamplingSettings:
    """Everything the sampler follows, resolved and checked (made by ``SamplingRequest.resolve``; the presets are
    instances too)."""

    steps: int = 25
    guidance: float = 3.5
    scheduler: str = "model"  # a key of SCHEDULERS
    guidance_interval: tuple[float, float] = (0.0, 1.0)
    cache_interval: int = 1
    cache_depth: int = 1
    context_frames: int = 24
    context_overlap: int = 4
    window_mode: str = "shifted"  # pipelines.context.WINDOW_MODES
    # What each step runs (``step_plan``): made once with the settings; the one rule the sampler follows and the
    # costs are counted from.
    plan: tuple[StepPlan, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        for name, (holds, rule) in RULES.items():
            value = getattr(self, name)
            if not holds(value):
                raise SettingError(name, value, rule)
        if self.context_overlap >= self.context_frames:
            raise SettingError(
                "context_overlap", self.context_overlap, f"{RULES['context_overlap'][1]} ({self.context_frames})"
            )
        object.__setattr__(self, "guidance_interval", tuple(float(x) for x in self.guidance_interval))
        object.__setattr__(
            self, "plan", step_plan(self.steps, self.guidance, self.guidance_interval, self.cache_interval)
        )

    def unet_rows(self) -> tuple[int, int]:
        """(full, shallow-only) UNet rows per window over the whole schedule: what the settings cost."""
        full = sum(len(s.kinds) for s in self.plan if s.refresh)
        shallow = sum(len(s.kinds) for s in self.plan if not s.refresh)
        return full, shallow

    def part(self, fields: tuple[str, ...]) -> dict[str, Any]:
        """The values of ``fields`` (``STEP_FIELDS`` or ``WINDOW_FIELDS``) as a dict, e.g. for a record."""
        return {name: getattr(self, name) for name in fields}


PRESETS: dict[str, SamplingSettings] = {
    "quality": SamplingSettings(),
    "fast": SamplingSettings(
        steps=12, scheduler="dpm++", guidance_interval=(0.0, 0.5), cache_interval=2, cache_depth=1
    ),
    "student": SamplingSettings(steps=4, guidance=1.0),
}


@dataclass(frozen=True)
class ModelDefaults:
    """What a model brings to the resolution of a request: its default preset (model_index.json
    ``default_preset``: "student" for a ``train distill`` export, else "quality") and its limits."""

    preset: str = "quality"
    levels: int | None = None  # the denoising UNet's levels: cache_depth must leave one inside
    max_window: int | None = None  # the temporal layers' positional-encoding length: the longest window
    student_steps: int | None = None  # a phased student's steps (``train distill`` with phases): its student preset

    @classmethod
    def read(cls, index: Mapping[str, Any], unet_config: Mapping[str, Any]) -> ModelDefaults:
        """From a model's ``model_index.json`` (or the pipeline's config) and its denoising UNet's config."""
        return cls(
            index.get("default_preset") or "quality",
            len(unet_config["block_out_channels"]),
            unet_config.get("motion_max_seq_length"),
            index.get("student_steps"),
        )

    @classmethod
    def of_directory(cls, directory) -> ModelDefaults:
        """From a ``model_dir.ModelDirectory``'s configs, before any weights load."""
        return cls.read(directory.index(), directory.config("denoising_unet"))

    def preset_settings(self, name: str) -> SamplingSettings:
        """The preset ``name`` on this model: ``student`` takes the steps a phased student was distilled for."""
        if name not in PRESETS:
            raise SettingError("preset", name, f"must be one of {', '.join(PRESETS)}")
        if name == "student" and self.student_steps:
            return dataclasses.replace(PRESETS[name], steps=self.student_steps)
        return PRESETS[name]

    @property
    def distilled(self) -> bool:
        return self.preset == "student"


def _field(help: str):
    """A request field: None (the preset's value) by default, with the help every front end shows for it (read from
    the field's metadata, as ``transformers.HfArgumentParser`` does)."""
    return field(default=None, metadata={"help": help})


@dataclass
class SamplingRequest:
    """What a front end asks for: a preset (None: the model's own) and the fields that differ from it (None: the
    preset's value, or the default window). Plain data: checked when resolved."""

    preset: str | None = _field(
        f"sampling preset ({', '.join(PRESETS)}): quality (25 guided DDIM steps), fast (fewer, cheaper UNet passes), "
        "student (a distilled model); default: the model's own. The fields below override it one by one"
    )
    steps: int | None = _field("denoising steps (default: the preset's; quality 25)")
    guidance: float | None = _field("classifier-free guidance scale (default: the preset's, quality 3.5; <= 1: off)")
    scheduler: str | None = _field(
        f"solver: {', '.join(SCHEDULERS)} (default: the preset's; model: the directory's own)"
    )
    guidance_interval: tuple[float, float] | None = _field(
        "(start, end): the fractions of the steps that are guided (default: the preset's; quality 0,1)"
    )
    cache_interval: int | None = _field("deep UNet features recomputed every N steps (default: the preset's; 1: off)")
    cache_depth: int | None = _field("outer UNet levels recomputed at every step when caching (default: the preset's)")
    context_frames: int | None = _field("temporal window length in frames (default 24; at most the model's limit)")
    context_overlap: int | None = _field("frames shared by neighbouring windows (default 4)")
    window_mode: str | None = _field(f"long-video window schedule: {', '.join(WINDOW_MODES)} (default shifted)")

    @classmethod
    def of(cls, value: SamplingRequest | str | Mapping[str, Any] | None) -> SamplingRequest:
        """A request from what the Python API takes: a request, a preset name, a mapping of fields, or None."""
        if value is None:
            return cls()
        if isinstance(value, SamplingRequest):
            return value
        if isinstance(value, str):
            return cls(preset=value)
        if isinstance(value, Mapping):
            names = {f.name for f in dataclasses.fields(cls)}
            unknown = sorted(set(value) - names)
            if unknown:
                raise ValueError(f"unknown sampling setting(s) {unknown}; known: {sorted(names)}")
            return cls(**value)
        raise TypeError(
            "sampling must be SamplingSettings, a SamplingRequest, a preset name, a dict of its fields or None, "
            f"got {type(value).__name__}"
        )

    def given(self) -> dict[str, Any]:
        """The fields this request sets (not None), the preset left out."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name != "preset" and getattr(self, f.name) is not None
        }

    def resolve(self, model: ModelDefaults | None = None) -> SamplingSettings:
        """The settings of this request on ``model``: the preset (None: the model's own), its fields replaced by
        the given ones, every value checked once (``SettingError``), the model's limits included. Settings that do
        not suit the model (``mismatch``) warn with a ``SettingsWarning``. Without a model: a "quality" model
        without limits, and no warning (nothing to judge the settings against, e.g. when pricing them)."""
        judged, model = model is not None, model or ModelDefaults()
        name = self.preset or model.preset
        settings = dataclasses.replace(model.preset_settings(name), **self.given())
        if model.levels is not None and settings.cache_depth >= model.levels:
            raise SettingError(
                "cache_depth",
                settings.cache_depth,
                f"must be less than the denoising UNet's {model.levels} levels (one must stay inside the cache)",
            )
        if model.max_window is not None and settings.context_frames > model.max_window:
            raise SettingError(
                "context_frames",
                settings.context_frames,
                f"exceeds the temporal layers' positional-encoding limit of {model.max_window} frames; "
                f"use {model.max_window} or less",
            )
        problem = mismatch(settings, model.distilled, name) if judged else None
        if problem is not None:
            warnings.warn(problem, SettingsWarning, stacklevel=2)
        return settings


# diffusers' call keywords for the settings every diffusers pipeline names -> the field they set
DIFFUSERS_NAMES = {"num_inference_steps": "steps", "guidance_scale": "guidance"}


def with_diffusers_names(
    sampling: SamplingSettings | SamplingRequest | str | Mapping[str, Any] | None, **keywords: Any
) -> SamplingSettings | SamplingRequest | str | Mapping[str, Any] | None:
    """``sampling`` with diffusers' keywords (``DIFFUSERS_NAMES``; None: not given) folded in as the request's fields:
    the one request a ``__call__`` resolves, whichever names a caller used. A value given both ways (or with
    ``SamplingSettings``, already resolved) is an error naming both."""
    given = {name: value for name, value in keywords.items() if value is not None}
    if not given:
        return sampling
    if isinstance(sampling, SamplingSettings):
        name, value = next(iter(given.items()))
        raise ValueError(
            f"{name}={value} and sampling (SamplingSettings, already resolved: {DIFFUSERS_NAMES[name]}="
            f"{getattr(sampling, DIFFUSERS_NAMES[name])}) both set the {DIFFUSERS_NAMES[name]}: give a preset or a "
            f"SamplingRequest with {name}, or the settings alone"
        )
    request = SamplingRequest.of(sampling)
    for name, value in given.items():
        twice = getattr(request, DIFFUSERS_NAMES[name])
        if twice is not None:
            raise ValueError(
                f"{name}={value} and sampling {DIFFUSERS_NAMES[name]}={twice} set the same setting: give one of them"
            )
    return dataclasses.replace(request, **{DIFFUSERS_NAMES[name]: value for name, value in given.items()})


def unset_markers(values: Mapping[str, Any], unset: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` of a UI whose widgets always hold something, with its markers for "the default" (``unset``:
    field -> the widget value that means it, e.g. steps 0) and empty widgets made None: the one mapping such a
    front end adds. Every other value goes on as it is, to the rules every front end shares."""
    return {
        key: None if value is None or (key in unset and value == unset[key]) else value for key, value in values.items()
    }


class SettingsWarning(UserWarning):
    """Sampling settings that do not suit the model they run on (``mismatch``)."""


def mismatch(settings: SamplingSettings, distilled: bool, name: str | None = None) -> str | None:
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
                "4 unguided steps leave the video blurred: use preset quality or fast"
            )
        return None
    reasons = []
    if settings.guidance > 1:
        reasons.append(f"guidance {settings.guidance:g} applies guidance twice (set guidance to 1)")
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
        + "; use preset student"
    )


def make_scheduler(scheduler, name: str):
    """A fresh scheduler of kind ``name`` with ``scheduler``'s noise schedule (betas, prediction type, zero-SNR
    rescaling); "model" returns ``scheduler`` itself."""
    if SCHEDULERS[name] is None:
        return scheduler
    import diffusers

    return getattr(diffusers, SCHEDULERS[name]).from_config(scheduler.config)
