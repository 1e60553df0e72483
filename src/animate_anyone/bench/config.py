"""One benchmark configuration: the workload (size, frames, steps, windows) and the pipeline optimisations."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..pipelines.optimisations import Optimisations


def default_switches() -> dict[str, bool]:
    """The pipeline's defaults (``Optimisations()``): the benchmark measures what ``animate`` runs."""
    return Optimisations().switches()


def check_switches(switches: dict[str, bool] | None) -> dict[str, bool]:
    """All switches, with the given ones overriding the pipeline's defaults; unknown names raise."""
    return Optimisations().with_switches(switches).switches()


@dataclass
class BenchConfig:
    size: str = "tiny"
    width: int | None = None  # None: the preset's benchmark workload (models.presets, ``Preset.bench``)
    height: int | None = None
    frames: int | None = None
    steps: int | None = None  # None: the sampling preset's, or (no preset) the size's benchmark workload
    guidance: bool = True
    guidance_scale: float | None = None  # None: the sampling preset's (quality: 3.5)
    preset: str | None = None  # a sampling preset (pipelines.presets): solver, guidance interval, feature caching
    context_frames: int = 24
    context_overlap: int = 4
    window_mode: str = "shifted"
    window_batch: int = 1
    decode_chunk_size: int = 8
    dtype: str = "auto"
    device: str = "auto"
    compile: bool = False
    switches: dict[str, bool] = field(default_factory=default_switches)
    warmup: int = 1
    repeats: int = 3
    seed: int = 0

    def replace(self, **changes) -> BenchConfig:
        return dataclasses.replace(self, **changes)

    def optimisations(self) -> Optimisations:
        """What the pipeline runs with under this configuration."""
        base = Optimisations(
            decode_chunk_size=self.decode_chunk_size, window_batch=self.window_batch, compile=self.compile
        )
        return base.with_switches(self.switches)

    def resolved(self) -> BenchConfig:
        """A copy with the preset's defaults filled in and every value checked (ValueError naming it)."""
        from ..model_dir import vae_scale_factor
        from ..models.presets import get_preset
        from ..pipelines.context import WINDOW_MODES, check_window
        from ..pipelines.presets import resolve_preset
        from ..runtime import check_size

        preset = get_preset(self.size)
        d = preset.bench
        sampling = resolve_preset(self.preset)  # an unknown preset name fails here
        cfg = self.replace(
            width=self.width or d["width"],
            height=self.height or d["height"],
            frames=self.frames if self.frames is not None else d["frames"],
            steps=self.steps if self.steps is not None else (sampling.steps if self.preset else d["steps"]),
            guidance_scale=self.guidance_scale if self.guidance_scale is not None else sampling.guidance,
            switches=check_switches(self.switches),
        )
        check_size(cfg.width, cfg.height, "bench size", vae_scale_factor(preset.vae))
        for name in ("frames", "steps", "repeats", "window_batch", "decode_chunk_size"):
            if getattr(cfg, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(cfg, name)}")
        if cfg.warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {cfg.warmup}")
        if cfg.window_mode not in WINDOW_MODES:
            raise ValueError(f"window_mode must be one of {WINDOW_MODES}, got {cfg.window_mode!r}")
        check_window(cfg.frames, cfg.context_frames, cfg.context_overlap)
        return cfg

    def label(self) -> str:
        """Short description of how this configuration differs from the defaults (for progress lines)."""
        default = default_switches()
        changed = [f"{'no ' if not v else ''}{k}" for k, v in self.switches.items() if v != default[k]]
        extra = [f"window_batch={self.window_batch}"] if self.window_batch != 1 else []
        return ", ".join([*changed, *extra]) or "default"
