"""The output size and frame count a user asks for: parsed and checked, in one wording."""

from __future__ import annotations

from .config import SettingError


def check_size(width: int, height: int, what: str = "size", multiple: int = 8) -> tuple[int, int]:
    """ValueError unless both sides are positive multiples of ``multiple`` (the VAE's downsampling factor);
    the message suggests the nearest valid value. Returns (width, height)."""
    for name, value in (("width", width), ("height", height)):
        if value <= 0 or value % multiple:
            nearest = max(multiple, round(value / multiple) * multiple)
            raise ValueError(f"{what}: {name} {value} is not a positive multiple of {multiple}; try {nearest}")
    return width, height


def parse_size(size: str | None, what: str = "size", multiple: int = 8) -> tuple[int, int] | None:
    """``"512x768"`` -> (512, 768) = (width, height), ``"64"`` -> (64, 64) (a square), checked by
    :func:`check_size` against ``multiple``; None stays None."""
    if size is None:
        return None
    try:
        sides = [int(v) for v in str(size).lower().split("x")]
    except ValueError:
        sides = []
    if len(sides) not in (1, 2):
        raise ValueError(f"{what} must look like WIDTHxHEIGHT (e.g. 512x768) or N for a square, got {size!r}")
    return check_size(sides[0], sides[-1], f"{what} {size}", multiple)


def parse_square(size: str, what: str = "size", multiple: int = 1) -> tuple[int, int]:
    """``"64"`` or ``"64x64"`` -> (64, 64), for the work that runs on squares; another shape is refused."""
    width, height = parse_size(size, what, multiple)
    if width != height:
        raise ValueError(f"{what} {size}: must be a square, N or NxN (e.g. {min(width, height)})")
    return width, height


def frames_range(frames: int | None, source, available: int) -> SettingError:
    """The one wording of a frame count outside what the pose sequence holds (raise it; a command renames the
    setting to its flag)."""
    return SettingError(
        "frames",
        frames,
        f"the pose sequence {source} has {available} frames; use 1 to {available}, or leave it unset for all of them",
    )
