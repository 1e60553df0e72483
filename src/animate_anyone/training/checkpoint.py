"""Checkpoints (atomic, resumable) and the final export (a model directory the pipeline loads).

OUTPUT_DIR/checkpoints/step-000100/   accelerate state (model, optimizer, lr scheduler, RNG) + trainer.json
                                      (+ ema.pt) + manifest.json (every file's size and sha256, written last);
                                      written to a temporary sibling and renamed
OUTPUT_DIR/final/                     model directory: trained networks (EMA weights when EMA is on),
                                      the starting directory's VAE / image encoder / processor, and the
                                      scheduler configuration used for training
"""

from __future__ import annotations

import errno
import hashlib
import json
import shutil
from pathlib import Path

import torch

from ..atomic import replace
from ..hub import Card, card_sources
from ..model_dir import write_model_directory


def checkpoint_dir(output_dir: str | Path, step: int) -> Path:
    return Path(output_dir) / "checkpoints" / f"step-{step:06d}"


MANIFEST = "manifest.json"


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    found = sorted((Path(output_dir) / "checkpoints").glob("step-*[0-9]"))
    return found[-1] if found else None


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(folder: Path) -> None:
    """``manifest.json``: the size and sha256 of every other file of the checkpoint (the check on resume)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)
    entries = {p.relative_to(folder).as_posix(): {"bytes": p.stat().st_size, "sha256": _digest(p)} for p in files}
    (folder / MANIFEST).write_text(json.dumps(entries, indent=1))


def checkpoint_damage(folder: Path) -> str | None:
    """Why the checkpoint cannot be trusted (a file missing, truncated or changed since it was written), or None.
    A checkpoint without a manifest (written before there was one) is trusted if it has its trainer.json."""
    if not (folder / MANIFEST).is_file():
        return None if (folder / "trainer.json").is_file() else "no trainer.json"
    try:
        entries = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        return f"{MANIFEST} unreadable ({exc})"
    for name, entry in entries.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != entry["bytes"]:
            return f"{name} has {path.stat().st_size} bytes, {entry['bytes']} were written"
        if _digest(path) != entry["sha256"]:
            return f"{name} does not match its checksum"
    return None


def latest_complete_checkpoint(output_dir: str | Path) -> tuple[Path | None, list[str]]:
    """The newest checkpoint that passes ``checkpoint_damage``, and one line for each newer one passed over."""
    skipped = []
    for folder in sorted((Path(output_dir) / "checkpoints").glob("step-*[0-9]"), reverse=True):
        damage = checkpoint_damage(folder)
        if damage is None:
            return folder, skipped
        skipped.append(f"checkpoint {folder} is damaged ({damage}); passing over it")
    return None, skipped


def save_checkpoint(
    accelerator, output_dir, step: int, ema=None, keep: int = 2, extra: dict | None = None, resume_name: str = "resume"
) -> Path:
    """Everything needed to continue bit for bit; the newest ``keep`` checkpoints are kept. ``resume_name``: the
    caller's name for resuming (a command's flag), in the message when the disk is full.

    All processes write into ``step-N.partial`` (accelerate saves each process's RNG state); the main
    process renames it to ``step-N`` once everyone is done, so a crash never leaves a checkpoint that looks
    complete.
    """
    out = checkpoint_dir(output_dir, step)
    tmp = out.with_name(out.name + ".partial")
    try:
        if accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(tmp))
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            (tmp / "trainer.json").write_text(json.dumps({"step": step, **(extra or {})}, indent=2))
            if ema is not None:
                torch.save(ema.state_dict(), tmp / "ema.pt")
            write_manifest(tmp)
    except Exception as exc:  # OSError; torch.save's RuntimeError; safetensors' SafetensorError (an Exception)
        if not _no_space(exc, tmp):
            raise
        shutil.rmtree(tmp, ignore_errors=True)
        previous = latest_checkpoint(output_dir)
        kept = f"the previous checkpoint {previous} is intact" if previous else "there is no earlier checkpoint"
        fix = f"free space, then continue with {resume_name}"
        raise OSError(f"no space left for checkpoint {out} ({kept}); {fix}") from None
    if accelerator.is_main_process:
        replace(tmp, out)
        for old in sorted(out.parent.glob("step-*[0-9]"))[:-keep]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()
    return out


def _no_space(exc: BaseException, folder: Path) -> bool:
    """A full disk: as the OS says it (ENOSPC), as a library quotes it (safetensors: "No space left on device (os
    error 28)"), or, where the writer says only that its write failed (torch.save on a full disk: "basic_ios::clear:
    iostream error", then "unexpected pos ..."), a file system with no space left where ``folder`` is, looked at
    before the partial checkpoint is removed."""
    seen: BaseException | None = exc
    for _ in range(8):  # the exception and the ones it was raised from or while handling
        if seen is None:
            break
        if getattr(seen, "errno", None) == errno.ENOSPC or "No space left on device" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    if not isinstance(exc, (OSError, RuntimeError)):
        return False
    try:
        return shutil.disk_usage(folder if folder.exists() else folder.parent).free < 1 << 20
    except OSError:
        return False


def load_checkpoint(accelerator, path: str | Path, ema=None) -> int:
    """Restore a checkpoint; returns its step."""
    path = Path(path)
    if not (path / "trainer.json").is_file():
        raise FileNotFoundError(f"{path} is not a training checkpoint (no trainer.json)")
    accelerator.load_state(str(path))
    if ema is not None:
        if not (path / "ema.pt").is_file():
            raise FileNotFoundError(f"{path} has no ema.pt but EMA is on; resume with the same ema_decay")
        ema.load_state_dict(torch.load(path / "ema.pt", weights_only=True))
    return int(json.loads((path / "trainer.json").read_text())["step"])


def export_model(
    model,
    pretrained: str | Path,
    scheduler,
    out: str | Path,
    use_reference_net: bool = True,
    default_preset: str | None = None,
    student_steps: int | None = None,
) -> Path:
    """Write a complete model directory from the trained networks, the starting directory's VAE, image encoder
    and processor (and light decoder, if it has one), and the training scheduler (``use_reference_net=False``:
    the ablation's setting; ``default_preset``: "student" for a distilled model; ``student_steps``: a phased
    student's steps). Its model card lists the starting directory's sources (``hub.card_sources``)."""
    pretrained = Path(pretrained)
    parts = {name: pretrained / name for name in ("vae", "image_encoder", "feature_extractor")}
    if (pretrained / "light_decoder").is_dir():  # the same VAE, so its light decoder still fits
        parts["light_decoder"] = pretrained / "light_decoder"
    return write_model_directory(
        out,
        model,
        {**parts, "scheduler": scheduler},
        use_reference_net=use_reference_net,
        default_preset=default_preset,
        student_steps=student_steps,
        overwrite=True,
        card=Card(
            "Trained with `animate-anyone train`, from a model directory of these sources.", card_sources(pretrained)
        ),
    )
