"""Small helpers for OTLP protobuf attributes and ids.

OTLP carries attributes as repeated ``KeyValue`` messages whose ``AnyValue`` holds one of
string, bool, int, double, bytes, array or key-value list. These helpers convert between that
and plain Python values, and set attributes on a span in place (replacing a key that is already
there, so a span passing through twice does not end up with the key twice).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

AttributeValue = str | bool | int | float | bytes | list[object] | dict[str, object] | None
"""What an ``AnyValue`` becomes in Python (None when no value is set)."""


def from_any_value(value: AnyValue) -> AttributeValue:
    """The Python value held by ``value``: lists for arrays, dicts for key-value lists."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "array_value":
        return [from_any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: from_any_value(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return value.bytes_value
    return None


def to_any_value(python: object, value: AnyValue) -> None:
    """Write ``python`` into ``value`` (bool, int, float, str, bytes, sequences, mappings).

    Raises ``TypeError`` for anything else, and ``ValueError`` for an int outside int64.
    """
    if isinstance(python, bool):
        value.bool_value = python
    elif isinstance(python, int):
        if not -(2**63) <= python < 2**63:
            raise ValueError(f"integer {python} does not fit an OTLP int64 attribute")
        value.int_value = python
    elif isinstance(python, float):
        value.double_value = python
    elif isinstance(python, str):
        value.string_value = python
    elif isinstance(python, bytes):
        value.bytes_value = python
    elif isinstance(python, Mapping):
        kvlist = value.kvlist_value
        kvlist.Clear()
        for key, item in python.items():
            to_any_value(item, kvlist.values.add(key=str(key)).value)
    elif isinstance(python, list | tuple):
        array = value.array_value
        array.Clear()
        for item in python:
            to_any_value(item, array.values.add())
    else:
        raise TypeError(f"cannot store {type(python).__name__} as an OTLP attribute value")


_SCALARS = frozenset(("string_value", "int_value", "double_value", "bool_value", "bytes_value"))


def attributes_to_dict(attributes: Iterable[KeyValue]) -> dict[str, AttributeValue]:
    """A dict of the attributes; when a key repeats (invalid OTLP), the last one wins."""
    found: dict[str, AttributeValue] = {}
    for kv in attributes:
        value = kv.value
        kind = value.WhichOneof("value")
        found[kv.key] = getattr(value, kind) if kind in _SCALARS else from_any_value(value)
    return found


def get_attribute(attributes: Iterable[KeyValue], key: str) -> AttributeValue:
    """The value of ``key`` among ``attributes``, or None when it is absent."""
    for kv in attributes:
        if kv.key == key:
            return from_any_value(kv.value)
    return None


def set_attributes(span: Span, values: Mapping[str, object]) -> None:
    """Set each of ``values`` on ``span``, replacing the value of keys already present."""
    if not values:
        return
    remaining = dict(values)
    for kv in span.attributes:
        if kv.key in remaining:
            kv.value.Clear()
            to_any_value(remaining.pop(kv.key), kv.value)
            if not remaining:
                return
    for key, item in remaining.items():
        to_any_value(item, span.attributes.add(key=key).value)


def set_attribute(span: Span, key: str, value: object) -> None:
    """Set one attribute on ``span``, replacing its value if the key is already present."""
    set_attributes(span, {key: value})


def hex_id(raw: bytes) -> str:
    """A trace or span id as lowercase hex (``""`` for an empty id)."""
    return raw.hex()


def id_from_hex(text: str, size: int) -> bytes:
    """The ``size``-byte id written as hex in ``text``; raises ``ValueError`` otherwise."""
    raw = bytes.fromhex(text)
    if len(raw) != size:
        raise ValueError(f"expected {size * 2} hex digits, got {len(text)} in {text!r}")
    return raw
