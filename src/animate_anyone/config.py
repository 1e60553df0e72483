"""Typed configuration: dataclasses, YAML instances and dotted overrides; unknown keys and wrong types raise.

    config = load_config(TrainConfig, "configs/train/stage1.yaml", ["optim.lr=1e-5", "data.frames=1"])

Values are checked against the dataclass field types (bool, int, float, str, optional, tuples and lists of
those, nested dataclasses). An override's value is parsed as YAML, so ``a.b=1e-5``, ``a.c=[512, 768]`` and
``a.d=null`` work.

A config may hold another type whole and still keep its keys at its own level (``inline``): ``AnimateConfig.sampling``
is a ``SamplingRequest``, written ``steps: 30`` (not ``sampling: {steps: 30}``), so the request travels as one object
while the YAML keys, job lines and ``key=value`` words stay those of the settings.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or override that does not fit the schema; the message names the key."""


class SettingError(ValueError):
    """A setting's value that breaks its rule. ``str()``: "<name> <value>: <rule>", the name being the setting's
    unless a front end gave its own (``named``: a flag, a field of a page, a widget)."""

    def __init__(self, field: str, value: Any, rule: str, name: str | None = None):
        self.field, self.value, self.rule, self.name = field, value, rule, name or field
        shown = list(value) if isinstance(value, tuple) else value
        super().__init__(f"{self.name} {shown}: {rule}")

    def named(self, names: Mapping[str, str]) -> SettingError:
        """The same error under a front end's name for the setting (e.g. ``{"steps": "--steps"}``)."""
        return SettingError(self.field, self.value, self.rule, names.get(self.field, self.name))


def load_config(
    schema: type[T],
    path: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    values: dict[str, Any] | None = None,
) -> T:
    """Defaults of ``schema``, updated by the YAML file, then by ``values`` (``{"key.sub": value}`` already typed,
    e.g. command-line flags), then by ``key.sub=value`` overrides (values parsed as YAML)."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of keys, got {type(data).__name__}")
    for key, value in (values or {}).items():
        _set_dotted(data, key, value)
    for override in overrides:
        key, sep, value = override.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {override!r} must look like key.sub=value")
        _set_dotted(data, key.strip(), yaml.safe_load(value))
    return build(schema, data)


def inline(schema: type) -> Any:
    """A field holding a ``schema`` whose keys are written at the level of the config that holds it (see the module
    doc); its default is ``schema()``."""
    return dataclasses.field(default_factory=schema, metadata={"inline": True})


def _inlined(schema) -> dict[str, str]:
    """Key -> the inline field of ``schema`` that holds it."""
    return {
        key.name: f.name
        for f in dataclasses.fields(schema)
        if f.metadata.get("inline")
        for key in dataclasses.fields(typing.get_type_hints(schema)[f.name])
    }


def keys(schema) -> list[str]:
    """The keys ``schema`` is written with: its fields, an inline field's own keys in its place."""
    inlined = _inlined(schema)
    out = []
    for f in dataclasses.fields(schema):
        out += [k for k, owner in inlined.items() if owner == f.name] if f.metadata.get("inline") else [f.name]
    return out


def build(schema: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Instantiate ``schema`` from a nested mapping, checking keys and types."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(schema)
    inlined = _inlined(schema)
    valid = keys(schema)
    unknown = sorted(set(data) - set(valid))
    if unknown:
        raise ConfigError(
            f"unknown key(s) {', '.join(prefix + k for k in unknown)}; "
            f"valid keys: {', '.join(prefix + k for k in valid)}"
        )
    values = {name: _convert(hints[name], value, prefix + name) for name, value in data.items() if name not in inlined}
    for owner in dict.fromkeys(inlined.values()):  # each inline section from its keys at this level
        given = {k: v for k, v in data.items() if inlined.get(k) == owner}
        values[owner] = build(hints[owner], given, prefix)
    return schema(**values)


def to_dict(config) -> dict[str, Any]:
    """Plain nested dict (tuples as lists), in the keys the config is written with (inline sections at their
    holder's level), e.g. to save beside a checkpoint."""
    return yaml.safe_load(yaml.safe_dump(_plain(_tree(config))))


def _tree(config) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.metadata.get("inline"):
            out.update(_tree(value))
        else:
            out[f.name] = _tree(value) if dataclasses.is_dataclass(value) else value
    return out


def dotted(config) -> dict[str, Any]:
    """A config (or ``to_dict`` tree) as ``{"group.key": value}``: the form of ``key=value`` overrides."""
    tree = config if isinstance(config, dict) else to_dict(config)
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in dotted(value).items()})
        else:
            flat[key] = value
    return flat


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _set_dotted(data: dict, key: str, value: Any) -> None:
    *parents, last = key.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {key}: {part} is not a section")
    node[last] = value


def _convert(hint, value, key: str):
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return build(hint, value, key + ".")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _convert(option, value, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{key}: {value!r} fits none of {hint}")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{key}: expected {len(args)} values, got {len(value)}")
            return tuple(_convert(a, v, key) for a, v in zip(args, value))
        item = args[0] if args else Any
        return origin(_convert(item, v, key) for v in value)
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if hint is Any:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):  # YAML 1.1 reads "3e-5" (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    if (
        hint is bool
        and not isinstance(value, bool)
        or hint is not bool
        and isinstance(value, bool)
        or not isinstance(value, hint)
    ):
        raise ConfigError(f"{key}: expected {hint.__name__}, got {value!r}")
    return value
