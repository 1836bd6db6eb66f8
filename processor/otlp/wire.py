"""Held spans in their protobuf wire form, and reassembly of them into an OTLP request.

The rollup keeps each span as the bytes it was serialized to on arrival: that costs little more
memory than the span took on the wire and frees the sender's request at once. Spans the rollup
does not annotate are forwarded as those same bytes, reassembled under their original resource
and instrumentation scope without being parsed again.

Wire layout used here (all fields length-delimited, wire type 2):
``ExportTraceServiceRequest.resource_spans = 1``; ``ResourceSpans``: ``resource = 1``,
``scope_spans = 2``, ``schema_url = 3``; ``ScopeSpans``: ``scope = 1``, ``spans = 2``,
``schema_url = 3``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans


class Origin(NamedTuple):
    """Where a span came from: its resource and instrumentation scope, serialized."""

    resource: bytes
    resource_schema_url: str
    scope: bytes
    scope_schema_url: str

    def parsed_resource(self) -> Resource:
        return Resource.FromString(self.resource)


class OriginTable:
    """Shares one ``Origin`` among all spans with equal resource and scope (bounded)."""

    def __init__(self, capacity: int = 4096) -> None:
        self._capacity = capacity
        self._known: dict[Origin, Origin] = {}

    def of(self, resource_spans: ResourceSpans, scope_spans: ScopeSpans, resource: bytes) -> Origin:
        origin = Origin(
            resource,
            resource_spans.schema_url,
            scope_spans.scope.SerializeToString(),
            scope_spans.schema_url,
        )
        known = self._known.get(origin)
        if known is not None:
            return known
        if len(self._known) >= self._capacity:
            self._known.clear()
        self._known[origin] = origin
        return origin


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_SMALL_VARINTS = [_encode_varint(value) for value in range(1 << 14)]


def _varint(value: int) -> bytes:
    return _SMALL_VARINTS[value] if value < 16384 else _encode_varint(value)


def _field(number: int, payload: bytes) -> bytes:
    return _varint((number << 3) | 2) + _varint(len(payload)) + payload


_SPAN_HEADS = [b"\x12" + varint for varint in _SMALL_VARINTS]
"""``ScopeSpans.spans`` field tag and length, for spans shorter than 16 KiB."""


def _span_fields(spans: Iterable[bytes]) -> bytes:
    parts: list[bytes] = []
    add = parts.extend
    heads = _SPAN_HEADS
    for span in spans:
        size = len(span)
        add((heads[size] if size < 16384 else b"\x12" + _encode_varint(size), span))
    return b"".join(parts)


_DOUBLE = struct.Struct("<d")
_CACHE_LIMIT = 4096
_KEY_FIELDS: dict[str, bytes] = {}
"""Per key: the ``KeyValue.key`` field, encoded."""
_FLOAT_PREFIXES: dict[str, bytes] = {}
"""Per key: a ``Span.attributes`` entry holding a double, up to the 8 bytes of the value."""
_ENCODED: dict[tuple[str, type, object], bytes] = {}
"""Whole ``Span.attributes`` entries for str, int and bool values seen recently."""


def _any_value(value: object) -> bytes:
    """``AnyValue`` for a str, bool, int or float (fields 1, 2, 3 and 4)."""
    kind = type(value)
    if kind is float:
        return b"\x21" + _DOUBLE.pack(value)  # type: ignore[arg-type]
    if kind is str:
        raw = value.encode()  # type: ignore[attr-defined]
        return b"\x0a" + _varint(len(raw)) + raw
    if kind is bool:
        return b"\x10\x01" if value else b"\x10\x00"
    if kind is int:
        if not -(2**63) <= value < 2**63:  # type: ignore[operator]
            raise ValueError(f"integer {value} does not fit an OTLP int64 attribute")
        return b"\x18" + _varint(value & 0xFFFF_FFFF_FFFF_FFFF)  # type: ignore[operator]
    raise TypeError(f"cannot store {kind.__name__} as an OTLP attribute value")


def _key_field(key: str) -> bytes:
    found = _KEY_FIELDS.get(key)
    if found is None:
        raw_key = key.encode()
        found = b"\x0a" + _varint(len(raw_key)) + raw_key
        if len(_KEY_FIELDS) >= _CACHE_LIMIT:
            _KEY_FIELDS.clear()
        _KEY_FIELDS[key] = found
    return found


def _attribute(key: str, value: object) -> bytes:
    """One ``Span.attributes`` entry (field 9): ``KeyValue{key = 1, value = 2}``."""
    encoded = _any_value(value)
    key_value = _key_field(key) + b"\x12" + _varint(len(encoded)) + encoded
    return b"\x4a" + _varint(len(key_value)) + key_value


def with_attributes(span: bytes, values: Mapping[str, object]) -> bytes:
    """``span`` (serialized) with ``values`` appended as attributes, without parsing it.

    Protobuf merges a repeated field's elements across the message, so appended ``KeyValue``
    fields simply follow the span's own attributes. The caller makes sure none of the keys is
    already on the span. Values are str, bool, int or float.
    """
    parts = [span]
    for key, value in values.items():
        kind = type(value)
        if kind is float:
            prefix = _FLOAT_PREFIXES.get(key)
            if prefix is None:
                if len(_FLOAT_PREFIXES) >= _CACHE_LIMIT:
                    _FLOAT_PREFIXES.clear()
                prefix = _FLOAT_PREFIXES[key] = _attribute(key, 0.0)[:-8]
            parts.append(prefix + _DOUBLE.pack(value))  # type: ignore[arg-type]
        elif kind is str or kind is int or kind is bool:
            entry = _ENCODED.get((key, kind, value))
            if entry is None:
                if len(_ENCODED) >= _CACHE_LIMIT:
                    _ENCODED.clear()
                entry = _ENCODED[(key, kind, value)] = _attribute(key, value)
            parts.append(entry)
        else:
            parts.append(_attribute(key, value))
    return b"".join(parts)


def encode(spans: Iterable[Sequence]) -> bytes:
    """Serialized ``ExportTraceServiceRequest`` holding ``spans`` grouped by resource and scope.

    Each item starts with its ``Origin`` and serialized span; items may carry more after those
    two (the rollup's held spans do). Spans keep their relative order within each
    (resource, scope) group.
    """
    by_origin: dict[Origin, list[bytes]] = {}
    last: Origin | None = None
    group: list[bytes] = []
    for item in spans:
        origin = item[0]
        if origin is not last:  # neighbours mostly share one Origin object: skip the hashing
            known = by_origin.get(origin)
            if known is None:
                known = by_origin[origin] = []
            group, last = known, origin
        group.append(item[1])
    by_resource: dict[tuple[bytes, str], list[bytes]] = {}
    for origin, group in by_origin.items():
        scope_parts = [_field(1, origin.scope)] if origin.scope else []
        scope_parts.append(_span_fields(group))
        if origin.scope_schema_url:
            scope_parts.append(_field(3, origin.scope_schema_url.encode()))
        resource = (origin.resource, origin.resource_schema_url)
        by_resource.setdefault(resource, []).append(_field(2, b"".join(scope_parts)))
    out = []
    for (resource, resource_schema_url), scopes in by_resource.items():
        parts = [_field(1, resource)] if resource else []
        parts += scopes
        if resource_schema_url:
            parts.append(_field(3, resource_schema_url.encode()))
        out.append(_field(1, b"".join(parts)))
    return b"".join(out)


def build_request(spans: Iterable[tuple[Origin, bytes]]) -> ExportTraceServiceRequest:
    """An ``ExportTraceServiceRequest`` holding ``spans`` under their original resource/scope."""
    return ExportTraceServiceRequest.FromString(encode(spans))
