"""Strict, table-driven state-dict renaming (pure functions: tensors in, tensors out, no I/O)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ..weights import check_keys


@dataclass(frozen=True)
class Rule:
    """Rename: every match of ``pattern`` in a key is replaced by ``replacement`` (``re.sub``)."""

    pattern: str
    replacement: str


class ConversionError(ValueError):
    """A configuration the conversion cannot express (an unsupported block type or option); a state dict that does
    not fit raises ``weights.WeightsError``."""


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
    ``weights.WeightsError`` naming the offending keys (``weights.check_keys``, the report strict loading gives).
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
    check_keys(
        what,
        missing=sorted(missing),
        unexpected=sorted(unexpected),
        wrong_shape=sorted(wrong_shape),
        conflicts=sorted(conflicts),
        limit=12,
    )
    return out


def target_shapes(module) -> dict[str, tuple[int, ...]]:
    """``key -> shape`` of a module's state dict: the ``target`` of :func:`convert_state_dict`."""
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def _equal(a: Tensor, b: Tensor) -> bool:
    if a.is_meta or b.is_meta:
        return a.shape == b.shape
    return torch.equal(a, b)
