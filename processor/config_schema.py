"""Turn YAML mappings into the components' config dataclasses, collecting every problem.

Each component owns a dataclass with defaults and a ``problems()`` method; this module only
checks shapes and types against the dataclass fields and says where a problem is. A ``float``
field takes a number; only a field declared :data:`Duration` also takes ``2s``, ``500ms``, ``1m``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Annotated, Any, TypeVar

T = TypeVar("T")

_DURATION_MARK = "duration"
Duration = Annotated[float, _DURATION_MARK]
"""Seconds, written as a number or as a string such as ``2s``, ``500ms``, ``1m``, ``1h``."""

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_DURATION_SCALE = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_NUMBER = re.compile(r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$")


class Problems:
    """Problems found while reading a config, each with the place it was found."""

    def __init__(self, lines: Mapping[str, int] | None = None) -> None:
        self.items: list[str] = []
        self._lines = lines or {}

    def add(self, where: str, message: str) -> None:
        line = self._lines.get(where)
        place = f"{where} (line {line})" if line else where
        self.items.append(f"{place}: {message}" if where else message)

    def __bool__(self) -> bool:
        return bool(self.items)


def storage_problems(directory: str, max_bytes: int) -> list[str]:
    """Problems of an on-disk store's settings: a usable ``directory`` and a positive size."""
    found = []
    if not directory:
        found.append("directory is required")
    elif os.path.exists(directory) and not os.path.isdir(directory):
        found.append(f"directory {directory!r} is not a directory")
    if max_bytes < 1:
        found.append(f"max_bytes must be at least 1, got {max_bytes}")
    return found


def parse_duration(value: object) -> float:
    """Seconds from a number or a string such as ``2s``, ``500ms``, ``1m``."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 2s or 500ms, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"expected a duration such as 2s or 500ms, got {value!r}")
        seconds = float(match.group(1)) * _DURATION_SCALE[match.group(2)]
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, got {value!r}")
    return seconds


def build(cls: type[T], raw: object, where: str, problems: Problems) -> T | None:
    """Build dataclass ``cls`` from ``raw`` (a mapping); unknown keys and bad types are problems."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        problems.add(where, f"expected a mapping, got {_kind(raw)}")
        return None
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for key, value in raw.items():
        place = f"{where}.{key}" if where else str(key)
        if key not in fields:
            known = ", ".join(sorted(fields))
            problems.add(place, f"unknown key (known keys: {known})")
            continue
        ok, converted = _convert(hints[key], value, place, problems)
        if ok:
            values[key] = converted
    try:
        instance = cls(**values)
    except (TypeError, ValueError) as exc:
        problems.add(where, str(exc))
        return None
    check = getattr(instance, "problems", None)
    if callable(check):
        for message in check():
            problems.add(where, message)
    return instance


def _convert(hint: Any, value: object, where: str, problems: Problems) -> tuple[bool, Any]:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is Annotated:
        if _DURATION_MARK in hint.__metadata__:
            return _checked(parse_duration, value, where, problems)
        return _convert(args[0], value, where, problems)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return True, None
        choices = [a for a in args if a is not type(None)]
        if len(choices) == 1:
            return _convert(choices[0], value, where, problems)
        for choice in choices:
            trial = Problems()
            ok, converted = _convert(choice, value, where, trial)
            if ok and not trial:
                return True, converted
        problems.add(where, f"unexpected value {value!r}")
        return False, None
    if dataclasses.is_dataclass(hint):
        built = build(hint, value, where, problems)
        return built is not None, built
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        if not isinstance(value, Mapping):
            problems.add(where, f"expected a mapping, got {_kind(value)}")
            return False, None
        return True, {str(k): str(v) for k, v in value.items()}
    if origin in (list, tuple) or hint in (list, tuple):
        if not isinstance(value, list | tuple):
            problems.add(where, f"expected a list, got {_kind(value)}")
            return False, None
        item = args[0] if args else str
        items = []
        for index, element in enumerate(value):
            ok, converted = _convert(item, element, f"{where}[{index}]", problems)
            if ok:
                items.append(converted)
        return True, tuple(items) if origin is tuple else items
    return _scalar(hint, value, where, problems)


def _scalar(hint: Any, value: object, where: str, problems: Problems) -> tuple[bool, Any]:
    if hint is typing.Any or hint is object:
        return True, value
    if hint is bool:
        if isinstance(value, bool):
            return True, value
        problems.add(where, f"expected true or false, got {value!r}")
        return False, None
    if hint is float:
        return _checked(parse_number, value, where, problems)
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return True, value
        problems.add(where, f"expected an integer, got {value!r}")
        return False, None
    if hint is str:
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return True, str(value)
        problems.add(where, f"expected a string, got {_kind(value)}")
        return False, None
    if typing.get_origin(hint) is typing.Literal:
        if value in typing.get_args(hint):
            return True, value
        choices = ", ".join(repr(a) for a in typing.get_args(hint))
        problems.add(where, f"expected one of {choices}, got {value!r}")
        return False, None
    return True, value


def parse_number(value: object) -> float:
    """A number, or a string holding one (``"12.5"``, as ``${env:NAME}`` gives); no units."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and _NUMBER.match(value):
        return float(value)
    hint = " (a duration is not accepted here)" if _is_duration_text(value) else ""
    raise ValueError(f"expected a number, got {value!r}{hint}")


def _is_duration_text(value: object) -> bool:
    return isinstance(value, str) and bool(_DURATION.match(value))


def _checked(
    parse: Callable[[object], float], value: object, where: str, problems: Problems
) -> tuple[bool, Any]:
    try:
        return True, parse(value)
    except ValueError as exc:
        problems.add(where, str(exc))
        return False, None


def _kind(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"
