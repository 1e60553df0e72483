"""The output size and frame count a user asks for: parsed and checked, in one wording."""

from __future__ import annotations


def check_size(width: int, height: int, what: str = "size", multiple: int = 8) -> tuple[int, int]:
    """ValueError unless both sides are positive multiples of ``multiple`` (the VAE's downsampling factor);
    the message suggests the nearest valid value. Returns (width, height)."""
    for name, value in (("width", width), ("height", height)):
        if value <= 0 or value % multiple:
            nearest = max(multiple, round(value / multiple) * multiple)
            raise ValueError(f"{what}: {name} {value} is not a positive multiple of {multiple}; try {nearest}")
    return width, height


def parse_size(size: str | None, what: str = "--size") -> tuple[int, int] | None:
    """``"512x768"`` -> (512, 768) = (width, height), checked by :func:`check_size`; None stays None."""
    if size is None:
        return None
    try:
        width, height = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise ValueError(f"{what} must look like WIDTHxHEIGHT (e.g. 512x768), got {size!r}") from None
    return check_size(width, height, f"{what} {size}")


def frames_range(frames: int | None, source, available: int) -> str:
    """The one wording of a --frames value outside what the pose sequence holds."""
    return (
        f"--frames {frames}: the pose sequence {source} has {available} frames; use 1 to {available}, "
        "or leave --frames out for all of them"
    )
