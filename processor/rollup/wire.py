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

from collections.abc import Iterable
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


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint((number << 3) | 2) + _varint(len(payload)) + payload


def _span_fields(spans: Iterable[bytes]) -> bytes:
    return b"".join([_field(2, span) for span in spans])


def encode(spans: Iterable[tuple[Origin, bytes]]) -> bytes:
    """Serialized ``ExportTraceServiceRequest`` holding ``spans`` grouped by resource and scope.

    Spans keep their relative order within each (resource, scope) group.
    """
    groups: dict[tuple[bytes, str], dict[tuple[bytes, str], list[bytes]]] = {}
    for origin, span in spans:
        by_scope = groups.get((origin.resource, origin.resource_schema_url))
        if by_scope is None:
            by_scope = groups[(origin.resource, origin.resource_schema_url)] = {}
        by_scope.setdefault((origin.scope, origin.scope_schema_url), []).append(span)
    out = []
    for (resource, resource_schema_url), by_scope in groups.items():
        parts = [_field(1, resource)] if resource else []
        for (scope, scope_schema_url), group in by_scope.items():
            scope_parts = [_field(1, scope)] if scope else []
            scope_parts.append(_span_fields(group))
            if scope_schema_url:
                scope_parts.append(_field(3, scope_schema_url.encode()))
            parts.append(_field(2, b"".join(scope_parts)))
        if resource_schema_url:
            parts.append(_field(3, resource_schema_url.encode()))
        out.append(_field(1, b"".join(parts)))
    return b"".join(out)


def build_request(spans: Iterable[tuple[Origin, bytes]]) -> ExportTraceServiceRequest:
    """An ``ExportTraceServiceRequest`` holding ``spans`` under their original resource/scope."""
    return ExportTraceServiceRequest.FromString(encode(spans))
