"""The project's model directory: one folder per component, each with its config and safetensors weights.

    DIR/model_index.json
    DIR/reference_net/       ReferenceNet          (config.json = a diffusers UNet2DConditionModel config)
    DIR/denoising_unet/      AnimateAnyoneUNet     (config.json = a diffusers UNetMotionModel config)
    DIR/pose_guider/         PoseGuider
    DIR/vae/, image_encoder/, feature_extractor/, scheduler/   (stock diffusers / transformers components)

Directories are written to a temporary sibling and renamed into place, so a crash never leaves a
half-written model.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch

from .models import AnimateAnyone, AnimateAnyoneUNet, PoseGuider, ReferenceNet

NETWORKS = {"reference_net": ReferenceNet, "denoising_unet": AnimateAnyoneUNet, "pose_guider": PoseGuider}
LIBRARY = {
    "reference_net": ("animate_anyone.models", "ReferenceNet"),
    "denoising_unet": ("animate_anyone.models", "AnimateAnyoneUNet"),
    "pose_guider": ("animate_anyone.models", "PoseGuider"),
    "vae": ("diffusers", "AutoencoderKL"),
    "image_encoder": ("transformers", "CLIPVisionModelWithProjection"),
    "feature_extractor": ("transformers", "CLIPImageProcessor"),
    "scheduler": ("diffusers", "DDIMScheduler"),
}


@contextmanager
def atomic_directory(out: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``out`` only if the block finishes without error."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists; choose another --out or pass --overwrite")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp creates 0700; the result should look like any other directory
    try:
        yield tmp
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old)
        else:
            os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def write_model_index(directory: Path, components: list[str], classes: dict[str, type] | None = None) -> None:
    """``classes`` overrides the default class of a component (e.g. the image-processor backend in use)."""
    import diffusers

    index = {"_class_name": "AnimateAnyonePipeline", "_diffusers_version": diffusers.__version__}
    for name in components:
        library, class_name = LIBRARY[name]
        if classes and name in classes:
            class_name = classes[name].__name__
        index[name] = [library, class_name]
    (directory / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")


def save_networks(model: AnimateAnyone, directory: Path) -> None:
    """Write the three networks into an existing (temporary) directory."""
    for name in NETWORKS:
        getattr(model, name).save_pretrained(directory / name, safe_serialization=True)


def load_networks(
    model_dir: str | Path, device: str | torch.device | None = None, dtype: torch.dtype | None = None
) -> AnimateAnyone:
    """Load ReferenceNet, denoising UNet and Pose Guider from a model directory."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise FileNotFoundError(f"model directory not found: {model_dir}")
    parts = {}
    for name, cls in NETWORKS.items():
        sub = model_dir / name
        if not (sub / "config.json").is_file():
            raise FileNotFoundError(
                f"{model_dir} has no {name}/config.json; a model directory needs {', '.join(NETWORKS)} "
                f"(create one with `animate-anyone init-model` or `animate-anyone convert moore`)"
            )
        parts[name] = cls.from_pretrained(sub, dtype=dtype)
    model = AnimateAnyone(**parts)
    return model.to(device) if device is not None else model
