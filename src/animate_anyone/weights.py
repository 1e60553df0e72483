"""Weight files: reading them into plain state dicts, and loading state dicts strictly.

Every weight file the project reads (public checkpoints, SD-1.5 and motion modules, evaluation networks) goes
through :func:`read_state_dict`, and every load into a module through :func:`load_strict`: a missing key, an
unused key or a wrong shape is an error that names the file and the keys, never a silently random tensor.
Pickled files are read with ``weights_only=True`` (no code from the file runs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

TORCH_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin")
WEIGHT_SUFFIXES = (".safetensors", *TORCH_SUFFIXES)  # every weight file read_state_dict reads
# The weight files of a component folder: what diffusers' / transformers' save_pretrained write and from_pretrained
# read (diffusion_pytorch_model.safetensors, model.safetensors, pytorch_model.bin, ...); a lone .pt is no component.
PRETRAINED_SUFFIXES = tuple(s for s in WEIGHT_SUFFIXES if s in (".safetensors", ".bin"))


class WeightsError(ValueError):
    """A weight file that cannot be read as weights, or that does not fit the module it is loaded into."""


def read_state_dict(path: str | Path, prefix: str | None = None) -> dict[str, Tensor]:
    """A flat ``name -> tensor`` dict from a ``.safetensors`` file or a torch checkpoint.

    A checkpoint that wraps its weights in ``{"state_dict": ...}`` is unwrapped, and a ``module.`` prefix that
    every key carries (``DataParallel``) is dropped. ``prefix``: keep only the keys that start with it (from a
    ``.safetensors`` file only those are read).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weight file not found: {path}")
    if path.suffix == ".safetensors":
        obj: Any = _read_safetensors(path, prefix)
    elif path.suffix in TORCH_SUFFIXES:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # pickle errors, refused globals, not a torch file at all
            raise WeightsError(f"{path}: not a readable PyTorch weights file ({type(exc).__name__}: {exc})") from exc
    else:
        raise WeightsError(
            f"{path}: unknown weight file type {path.suffix!r}; expected one of {', '.join(WEIGHT_SUFFIXES)}"
        )
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or (not obj and prefix is None):
        raise WeightsError(f"{path}: expected a state dict (name -> tensor), got {type(obj).__name__}")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, Tensor)]
    if bad:
        raise WeightsError(f"{path}: not a flat state dict; entries that are not tensors: {bad[:5]}")
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module.") :]: v for k, v in obj.items()}
    if prefix is not None:
        obj = {k: v for k, v in obj.items() if k.startswith(prefix)}
    return obj


def _read_safetensors(path: Path, prefix: str | None) -> dict[str, Tensor]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys() if prefix is None or k.startswith(prefix)}
    except SafetensorError as exc:
        raise WeightsError(f"{path}: not a readable safetensors file ({exc})") from exc


def _listing(keys: Iterable[str], limit: int = 5) -> str:
    keys = list(keys)
    more = f" ... and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def check_keys(
    what: str,
    *,
    missing: Sequence[str] = (),
    unexpected: Sequence[str] = (),
    wrong_shape: Sequence[str] = (),
    conflicts: Sequence[str] = (),
    limit: int = 5,
) -> None:
    """The one report of a state dict that does not fit: :class:`WeightsError` starting with ``what`` and listing
    (up to ``limit`` of each) the missing keys, the unexpected (unused) ones, the shape mismatches and the keys
    filled twice; nothing when all are empty. Used by strict loading and by weight conversion."""
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys ({_listing(missing, limit)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys ({_listing(unexpected, limit)})")
    if wrong_shape:
        problems.append(f"{len(wrong_shape)} shape mismatches (given vs expected: {_listing(wrong_shape, limit)})")
    if conflicts:
        problems.append(f"{len(conflicts)} conflicting keys ({_listing(conflicts, limit)})")
    if problems:
        raise WeightsError(f"{what}: " + "; ".join(problems))


def load_strict(
    module: nn.Module,
    state: Mapping[str, Tensor],
    what: str,
    keep: Iterable[str] = (),
    optional: Callable[[str], bool] | None = None,
    assign: bool = False,
) -> None:
    """Load ``state`` into ``module``: every key of the module comes from ``state`` with the same shape, and
    ``state`` has no other key. Exceptions: the keys in ``keep`` keep the module's current values (e.g. the
    temporal layers when SD-1.5 weights fill the rest); keys for which ``optional(key)`` is true may be absent
    (e.g. BatchNorm's ``num_batches_tracked``). ``assign``: take the tensors as they are (modules built on the
    meta device). Raises :class:`WeightsError` starting with ``what`` (name the file there)."""
    current = module.state_dict()
    keep = set(keep)
    missing = [k for k in current if k not in state and k not in keep and not (optional and optional(k))]
    unexpected = [k for k in state if k not in current]
    wrong = [
        f"{k}: {tuple(state[k].shape)} vs {tuple(current[k].shape)}"
        for k in current
        if k in state and tuple(state[k].shape) != tuple(current[k].shape)
    ]
    check_keys(what, missing=missing, unexpected=unexpected, wrong_shape=wrong)
    full = {k: current[k] for k in current if k not in state}  # kept and optional keys: their current values
    module.load_state_dict({**full, **state}, strict=True, assign=assign)
