"""Everything a training run can check before its first step, checked before anything loads: the config's values,
the output folder, the checkpoint to resume from, the model directories and weight files it starts from, the
distillation's grid against the model's noise schedule, the dataset, and the logger. A run that would fail after
hours for a reason it could name at once fails in a second instead, with one line and nothing written."""

from __future__ import annotations

import importlib.util
import json
import shutil
import warnings
from collections.abc import Mapping
from pathlib import Path

from ..atomic import check_writable
from ..config import SettingError
from .config import TrainConfig
from .setup import model_directory, pretrained_directory

# In output_dir, every log_every steps: {"step", "loss" (mean since the last line), "lr", "time" (Unix seconds)}.
LOG_FILE = "train_log.jsonl"


def preflight(config: TrainConfig, resume: str | None, overwrite: bool, names: Mapping[str, str] | None = None):
    """Check ``config`` and the files it names; returns the training dataset (read once, here). ``names``: the
    caller's names for ``resume`` and ``overwrite`` in messages (a command's flags; default the parameters')."""
    from ..data.dataset import VideoPoseDataset
    from .checkpoint import checkpoint_damage

    config.check()
    check_output_dir(Path(config.output_dir), resume, overwrite, names)
    if resume not in (None, "auto"):
        damage = checkpoint_damage(Path(resume)) if Path(resume).is_dir() else "not a folder"
        if damage is not None:
            raise SettingError("resume", resume, f"not a usable training checkpoint ({damage})")
    directory = pretrained_directory(config)
    for key in ("sd15_unet", "motion_module"):
        path = getattr(config.model, key)
        if path and not Path(path).exists():
            raise FileNotFoundError(f"model.{key}={path}: no such file or folder")
    if config.stage == "distill":
        from .distill import check_distill

        if config.distill.teacher:
            model_directory("distill.teacher", config.distill.teacher)
        schedule = json.loads((directory.path / "scheduler" / "scheduler_config.json").read_text())
        check_distill(config, schedule.get("num_train_timesteps", 1000))
    from diffusers.optimization import SchedulerType

    names = [t.value for t in SchedulerType]
    if config.optim.lr_scheduler not in names:
        raise ValueError(f"optim.lr_scheduler {config.optim.lr_scheduler!r}: choose one of {', '.join(names)}")
    if config.optim.adam_8bit and importlib.util.find_spec("bitsandbytes") is None:
        raise ValueError("optim.adam_8bit needs bitsandbytes (pip install bitsandbytes, CUDA only), or set it false")
    if config.log_with == "tensorboard":
        try:
            import tensorboard  # noqa: F401
        except ImportError:
            from ..extras import install_hint

            raise ValueError(
                f"log_with=tensorboard needs tensorboard ({install_hint('train')}), or set log_with=none"
            ) from None
    d = config.data
    with warnings.catch_warnings(record=True) as said:  # skipped clips: said below, or by the error
        warnings.simplefilter("always")
        dataset = VideoPoseDataset(
            d.root, frames=d.frames, stride=d.stride, resolution=tuple(d.resolution), augment=d.augment
        )
    if len(dataset) == 0:
        why = (
            f"all {len(dataset.skipped)} are shorter than the {dataset.span} frames a sample spans (data.frames="
            f"{d.frames} at data.stride={d.stride}); lower data.frames or data.stride, or add longer clips"
            if dataset.skipped
            else "its manifest.jsonl lists none; add clips with `animate-anyone data prepare` (data.prepare_dataset)"
        )
        raise ValueError(f"data.root={d.root}: no usable clips: {why}")
    for warning in said:
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return dataset


def check_output_dir(out: Path, resume: str | None, overwrite: bool, names: Mapping[str, str] | None = None) -> None:
    """``out`` is a folder (or can be made) that this process may write, and a used one is continued (``resume``)
    or replaced (``overwrite``), never silently mixed. ``names``: the caller's names for those two."""
    check_writable(out, f"output_dir={out}", "choose another output_dir=...")
    used = used_outputs(out)
    if used and resume is None and not overwrite:
        names = names or {}
        raise FileExistsError(
            f"output_dir {out} holds an earlier run ({', '.join(p.name for p in used)}); continue it with "
            f"{names.get('resume', 'resume')}, start over with {names.get('overwrite', 'overwrite')}, or choose "
            "another output_dir=..."
        )


def used_outputs(out: Path) -> list[Path]:
    return [p for p in (out / "checkpoints", out / "final", out / LOG_FILE) if p.exists()]


def remove_earlier_run(out: Path) -> None:
    """``overwrite``: the earlier run's checkpoints, export and log (the main process does it)."""
    for p in used_outputs(out):
        shutil.rmtree(p) if p.is_dir() else p.unlink()
