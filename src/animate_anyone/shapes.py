"""The output size and frame count a user asks for: parsed and checked, in one wording."""

from __future__ import annotations

from .config import SettingError


def size_rule(width: int, height: int, multiple: int = 8) -> str | None:
    """The rule ``width`` x ``height`` breaks, in words with the nearest valid value, or None: both sides must be
    positive multiples of ``multiple`` (the VAE's downsampling factor)."""
    for name, value in (("width", width), ("height", height)):
        if value <= 0 or value % multiple:
            nearest = max(multiple, round(value / multiple) * multiple)
            return f"{name} {value} is not a positive multiple of {multiple}; try {nearest}"
    return None


def check_size(width: int, height: int, what: str = "size", multiple: int = 8) -> tuple[int, int]:
    """ValueError ("{what}: <rule>") unless ``size_rule`` holds. Returns (width, height)."""
    broken = size_rule(width, height, multiple)
    if broken:
        raise ValueError(f"{what}: {broken}")
    return width, height


def parse_size(size: str | None, name: str = "size", multiple: int = 8) -> tuple[int, int] | None:
    """``"512x768"`` -> (512, 768) = (width, height), ``"64"`` -> (64, 64) (a square), checked by ``size_rule``
    against ``multiple``; None stays None. A broken rule is a ``SettingError`` of the setting ``name``."""
    if size is None:
        return None
    try:
        sides = [int(v) for v in str(size).lower().split("x")]
    except ValueError:
        sides = []
    if len(sides) not in (1, 2):
        raise SettingError(name, size, "must look like WIDTHxHEIGHT (e.g. 512x768) or N for a square")
    broken = size_rule(sides[0], sides[-1], multiple)
    if broken:
        raise SettingError(name, size, broken)
    return sides[0], sides[-1]


def parse_square(size: str, name: str = "size", multiple: int = 1) -> tuple[int, int]:
    """``"64"`` or ``"64x64"`` -> (64, 64), for the work that runs on squares; another shape is refused."""
    width, height = parse_size(size, name, multiple)
    if width != height:
        raise SettingError(name, size, f"must be a square, N or NxN (e.g. {min(width, height)})")
    return width, height


def frames_range(frames: int | None, source, available: int) -> SettingError:
    """The one wording of a frame count outside what the pose sequence holds (raise it; a command renames the
    setting to its flag)."""
    return SettingError(
        "frames",
        frames,
        f"the pose sequence {source} has {available} frames; use 1 to {available}, or leave it unset for all of them",
    )
