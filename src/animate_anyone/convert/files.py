"""Reading weight files (.safetensors, .pth/.pt/.ckpt/.bin) into plain state dicts."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

TORCH_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin")


def load_weights(path: str | Path) -> dict[str, Tensor]:
    """Load a state dict from ``path``; a checkpoint wrapping it under ``"state_dict"`` is unwrapped.

    Pickled files are read with ``weights_only=True`` (no code from the file is executed).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weight file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    elif path.suffix in TORCH_SUFFIXES:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # pickle errors come in many types
            raise ValueError(f"{path}: not a readable PyTorch weights file ({exc})") from exc
    else:
        raise ValueError(f"{path}: unknown weight file type {path.suffix!r}; expected .safetensors or {TORCH_SUFFIXES}")
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a mapping of parameter names to tensors")
    return state
