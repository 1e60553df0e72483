"""One benchmark configuration: the sampling request, the workload (size, frames) and the pipeline optimisations.

The sampling request is a ``SamplingRequest`` and the optimisations an ``Optimisations``, each held whole and
declared, and checked, in the type that owns it; the benchmark adds only its workload and its repeats.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..pipelines.optimisations import Optimisations
from ..pipelines.pipeline_animate_anyone import DECODERS
from ..pipelines.settings import STEP_FIELDS, WINDOW_FIELDS, SamplingRequest


@dataclass
class BenchConfig:
    """The model's architecture (``size``: a name of ``models.sizes.SIZES``), the sampling request (None fields:
    the preset's, or the default window), then the workload: ``width``, ``height``, ``frames`` (None: the
    architecture's benchmark workload, ``ModelSize.bench``; so are the steps when no preset is named) and the
    ``decoder`` of the final latents ("vae", or "light": a light decoder of TAESD's size, ``models.LightDecoder``;
    the stage keeps the name ``vae_decode``)."""

    size: str = "tiny"
    sampling: SamplingRequest = field(default_factory=SamplingRequest)
    width: int | None = None
    height: int | None = None
    frames: int | None = None
    decoder: str = "vae"
    optimisations: Optimisations = field(default_factory=Optimisations)  # the pipeline's defaults: what animate runs
    dtype: str = "auto"
    device: str = "auto"
    warmup: int = 1
    repeats: int = 3
    seed: int = 0

    def replace(self, **changes) -> BenchConfig:
        return dataclasses.replace(self, **changes)

    def resolved(self) -> BenchConfig:
        """A copy with the workload's defaults and the resolved sampling settings filled in, every value checked
        (ValueError naming it; the sampling values by ``SamplingRequest.resolve``, the rules every front end
        shares)."""
        from ..model_dir import vae_scale_factor
        from ..models.sizes import get_size
        from ..shapes import check_size

        size = get_size(self.size)
        d = size.bench
        request = self.sampling
        steps = request.steps if request.steps is not None or request.preset else d["steps"]
        settings = dataclasses.replace(request, steps=steps).resolve()
        cfg = self.replace(
            width=self.width or d["width"],
            height=self.height or d["height"],
            frames=self.frames if self.frames is not None else d["frames"],
            sampling=dataclasses.replace(request, **settings.part(STEP_FIELDS + WINDOW_FIELDS)),
        )
        check_size(cfg.width, cfg.height, "bench size", vae_scale_factor(size.vae))
        for name in ("frames", "repeats"):
            if getattr(cfg, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(cfg, name)}")
        if cfg.warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {cfg.warmup}")
        if cfg.decoder not in DECODERS:
            raise ValueError(f"decoder={cfg.decoder!r}: choose one of {', '.join(DECODERS)}")
        return cfg

    def record(self) -> dict[str, Any]:
        """JSON-ready: the sampling request's fields and every other field, the optimisations as their on/off
        switches plus the window batch, decode chunk size and compile flag."""
        held = ("sampling", "optimisations")
        own = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in held}
        opts = self.optimisations
        return {
            **dataclasses.asdict(self.sampling),
            **own,
            "switches": opts.switches(),
            "window_batch": opts.window_batch,
            "decode_chunk_size": opts.decode_chunk_size,
            "compile": opts.compile,
        }

    def label(self) -> str:
        """Short description of how this configuration differs from the defaults (for progress lines)."""
        default = Optimisations().switches()
        changed = [f"{'no ' if not v else ''}{k}" for k, v in self.optimisations.switches().items() if v != default[k]]
        batch = self.optimisations.window_batch
        extra = [f"window_batch={batch}"] if batch != 1 else []
        return ", ".join([*changed, *extra]) or "default"
