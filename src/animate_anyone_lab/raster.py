"""Painting one placed part onto a float canvas: signed distances, textures, outline, analytic anti-aliasing.

A part's shape is a signed distance ``d`` (character units, negative inside) in its local frame: ``u`` along the
axis from ``start`` (the part covers u in [0, length]) and ``v`` across. A pixel (its centre) is covered by
``clip(0.5 - d * scale, 0, 1)``: a one-pixel linear ramp across the edge, so edges are anti-aliased without
supersampling and everything stays a deterministic function of the inputs (float64 numpy, no randomness).
Texture edges (stripes, checks, dots) get the same one-pixel ramp. The outline is the outermost
``outline_px`` pixels of the shape. Shapes' distances are exact for capsules and untapered boxes and a first
order approximation for ellipses and tapered parts, which is all the anti-aliasing needs.
"""

from __future__ import annotations

import math

import numpy as np

from .character import Style, Texture
from .kinematics import Placed


def signed_distance(
    shape: str, u: np.ndarray, v: np.ndarray, length: float, w0: float, w1: float, roundness: float = 0.5
) -> np.ndarray:
    """Signed distance (negative inside) of local points to a part of ``shape`` ('box', 'ellipse', 'capsule')."""
    if shape == "capsule":
        x0, seg = w0, max(length - w0 - w1, 1e-9)
        t = np.clip((u - x0) / seg, 0.0, 1.0)
        return np.hypot(u - (x0 + t * seg), v) - (w0 + (w1 - w0) * t)
    c = u - length / 2
    if shape == "ellipse":
        a, b = max(length / 2, 1e-9), max((w0 + w1) / 2, 1e-9)
        k = np.hypot(c / a, v / b)
        g = np.maximum(np.hypot(c / (a * a), v / (b * b)), 1e-12)
        return np.where(k < 0.5, (k - 1) * min(a, b), k * (k - 1) / g)
    if shape == "box":
        w = w0 + (w1 - w0) * np.clip(u / max(length, 1e-9), 0.0, 1.0)
        r = min(roundness * min(w0, w1), length / 2)
        qx, qy = np.abs(c) - (length / 2 - r), np.abs(v) - (w - r)
        return np.hypot(np.maximum(qx, 0), np.maximum(qy, 0)) + np.minimum(np.maximum(qx, qy), 0) - r
    raise ValueError(f"unknown shape {shape!r}")


def _band(x: np.ndarray, period: float, width: float, px: float) -> np.ndarray:
    """1 inside bands of ``width`` centred on multiples of ``period``, 0 outside, a ``px``-wide ramp between."""
    q = np.abs(x - period * np.round(x / period))
    return np.clip((width / 2 - q) / px + 0.5, 0.0, 1.0)


def shade(texture: Texture, a: np.ndarray, b: np.ndarray, px: float) -> np.ndarray:
    """(N, 3) float colours of ``texture`` at texture coordinates (a, b) in character units; ``px`` = one pixel."""
    colors = np.asarray(texture.colors, np.float64)
    if texture.kind == "solid" or len(colors) == 1:
        return np.broadcast_to(colors[0], (a.size, 3))
    ca, sa = math.cos(texture.angle), math.sin(texture.angle)
    a, b = a * ca + b * sa, -a * sa + b * ca
    p = texture.period
    if texture.kind == "stripes":
        w = _band(a, p, texture.duty * p, px)
    elif texture.kind == "checks":
        x, y = _band(a, 2 * p, p, px), _band(b, 2 * p, p, px)
        w = x + y - 2 * x * y  # a smooth exclusive or
    elif texture.kind == "dots":
        da, db = a - p * np.round(a / p), b - p * np.round(b / p)
        w = np.clip((texture.duty * p - np.hypot(da, db)) / px + 0.5, 0.0, 1.0)
    elif texture.kind == "gradient":
        w = np.clip(a / p + 0.5, 0.0, 1.0)
    else:
        raise ValueError(f"unknown texture {texture.kind!r}")
    return colors[0] * (1 - w[:, None]) + colors[1] * w[:, None]


def paint(
    canvas: np.ndarray,
    part: Placed,
    style: Style,
    scale: float,
    origin: tuple[float, float],
    outline_px: float = 1.0,
    ids: np.ndarray | None = None,
    index: int = 0,
) -> None:
    """Composite ``part`` over ``canvas`` (H, W, 3 float64, changed in place); world -> pixel is
    ``origin + scale * p``. ``ids``: an (H, W) int map that gets ``index`` where the coverage is >= 0.5."""
    height, width = canvas.shape[:2]
    start = np.asarray(origin) + scale * part.start
    axis, normal = part.axis, np.array([-part.axis[1], part.axis[0]])
    reach = scale * max(part.width0, part.width1)
    ends = np.stack([start, start + axis * scale * part.length])
    lo = np.floor(ends.min(0) - reach - 2).astype(int)
    hi = np.ceil(ends.max(0) + reach + 2).astype(int)
    x0, y0, x1, y1 = max(lo[0], 0), max(lo[1], 0), min(hi[0], width), min(hi[1], height)
    if x0 >= x1 or y0 >= y1:
        return
    ys, xs = np.mgrid[y0:y1, x0:x1]
    dx, dy = (xs + 0.5 - start[0]) / scale, (ys + 0.5 - start[1]) / scale
    u, v = dx * axis[0] + dy * axis[1], dx * normal[0] + dy * normal[1]
    d = signed_distance(style.shape, u, v, part.length, part.width0, part.width1, style.roundness) * scale
    alpha = np.clip(0.5 - d, 0.0, 1.0)
    inside = alpha > 0
    if not inside.any():
        return
    px = 1.0 / scale
    colour = shade(style.texture, u[inside] - part.length / 2, v[inside] / part.squash, px)
    edge = np.clip(-d[inside] - outline_px + 0.5, 0.0, 1.0)[:, None]
    colour = np.asarray(style.outline, np.float64) * (1 - edge) + colour * edge
    region = canvas[y0:y1, x0:x1]
    a = alpha[inside][:, None]
    region[inside] = region[inside] * (1 - a) + colour * a
    if ids is not None:
        ids[y0:y1, x0:x1][alpha >= 0.5] = index
