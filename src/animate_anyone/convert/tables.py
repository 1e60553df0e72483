"""Strict, table-driven state-dict renaming (pure functions: tensors in, tensors out, no I/O)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Rule:
    """Rename: every match of ``pattern`` in a key is replaced by ``replacement`` (``re.sub``)."""

    pattern: str
    replacement: str


class ConversionError(ValueError):
    """A conversion that would leave a key unused, a target key unfilled, or a shape wrong."""


def _listing(keys: Sequence[str], limit: int = 12) -> str:
    keys = sorted(keys)
    more = f" ... and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def rename(key: str, rules: Sequence[Rule]) -> str:
    for rule in rules:
        key = re.sub(rule.pattern, rule.replacement, key)
    return key


def convert_state_dict(
    sources: Sequence[Mapping[str, Tensor]],
    rules: Sequence[Rule],
    target: Mapping[str, torch.Size | Sequence[int]],
    what: str,
    merge_equal: str | None = None,
) -> dict[str, Tensor]:
    """Rename the union of ``sources`` onto exactly the keys of ``target`` (key -> shape).

    Every source key must land on a target key, every target key must be filled, shapes must agree.
    Several source keys may land on one target key only if that key matches the regex ``merge_equal`` and
    the tensors are equal (e.g. AnimateDiff's two copies of one positional-encoding table). Raises
    ``ConversionError`` naming the offending keys.
    """
    out: dict[str, Tensor] = {}
    origin: dict[str, str] = {}
    seen: set[str] = set()
    unexpected, wrong_shape, conflicts = [], [], []
    for source in sources:
        for key, tensor in source.items():
            if key in seen:
                conflicts.append(f"{key} (given twice)")
                continue
            seen.add(key)
            new = rename(key, rules)
            if new not in target:
                unexpected.append(f"{key} -> {new}")
                continue
            if tuple(tensor.shape) != tuple(target[new]):
                wrong_shape.append(f"{key}: {tuple(tensor.shape)} vs {new}: {tuple(target[new])}")
                continue
            if new in out:
                same = merge_equal and re.search(merge_equal, new) and _equal(out[new], tensor)
                if not same:
                    conflicts.append(f"{origin[new]} and {key} -> {new}")
                continue
            out[new], origin[new] = tensor, key
    missing = [k for k in target if k not in out]
    problems = []
    if unexpected:
        problems.append(f"{len(unexpected)} unused source keys: {_listing(unexpected)}")
    if missing:
        problems.append(f"{len(missing)} target keys not filled: {_listing(missing)}")
    if wrong_shape:
        problems.append(f"{len(wrong_shape)} shape mismatches: {_listing(wrong_shape)}")
    if conflicts:
        problems.append(f"{len(conflicts)} conflicting keys: {_listing(conflicts)}")
    if problems:
        raise ConversionError(f"{what}: " + "; ".join(problems))
    return out


def target_shapes(module) -> dict[str, tuple[int, ...]]:
    """``key -> shape`` of a module's state dict: the ``target`` of :func:`convert_state_dict`."""
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def _equal(a: Tensor, b: Tensor) -> bool:
    if a.is_meta or b.is_meta:
        return a.shape == b.shape
    return torch.equal(a, b)
