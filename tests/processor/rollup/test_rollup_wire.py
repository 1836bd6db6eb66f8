"""Reassembling held span bytes into an OTLP request under their resource and scope."""

from __future__ import annotations

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from spanledger.processor.rollup import Origin, OriginTable, build_request


def origin(service: str, scope: str, schema: str = "") -> Origin:
    resource = Resource()
    resource.attributes.add(key="service.name").value.string_value = service
    return Origin(
        resource.SerializeToString(),
        schema,
        InstrumentationScope(name=scope).SerializeToString(),
        schema,
    )


def test_spans_are_grouped_by_resource_then_scope_in_arrival_order():
    long_name = "x" * 300  # a length that needs a two-byte varint
    spans = [Span(name=f"s{n}-{long_name}", span_id=bytes([n]) * 8) for n in range(5)]
    a_http, a_db, b_http = origin("a", "http", "s1"), origin("a", "db", "s1"), origin("b", "http")
    held = [
        (a_http, spans[0].SerializeToString()),
        (b_http, spans[1].SerializeToString()),
        (a_db, spans[2].SerializeToString()),
        (a_http, spans[3].SerializeToString()),
        (b_http, spans[4].SerializeToString()),
    ]
    built = build_request(held)

    expected = ExportTraceServiceRequest()
    first = expected.resource_spans.add(
        resource=Resource.FromString(a_http.resource), schema_url="s1"
    )
    first.scope_spans.add(
        scope=InstrumentationScope(name="http"), spans=[spans[0], spans[3]], schema_url="s1"
    )
    first.scope_spans.add(scope=InstrumentationScope(name="db"), spans=[spans[2]], schema_url="s1")
    second = expected.resource_spans.add(resource=Resource.FromString(b_http.resource))
    second.scope_spans.add(scope=InstrumentationScope(name="http"), spans=[spans[1], spans[4]])
    assert built == expected


def test_empty_resource_and_scope_stay_unset():
    built = build_request([(Origin(b"", "", b"", ""), Span(name="bare").SerializeToString())])
    assert not built.resource_spans[0].HasField("resource")
    assert not built.resource_spans[0].scope_spans[0].HasField("scope")
    assert built.resource_spans[0].scope_spans[0].spans[0].name == "bare"


def test_origin_table_shares_equal_origins_and_stays_bounded():
    table = OriginTable(capacity=2)
    resource = Resource().SerializeToString()
    resource_spans = ResourceSpans(schema_url="r")
    first = table.of(resource_spans, ScopeSpans(scope=InstrumentationScope(name="x")), resource)
    again = table.of(resource_spans, ScopeSpans(scope=InstrumentationScope(name="x")), resource)
    assert first is again
    for name in ("y", "z", "w"):
        table.of(resource_spans, ScopeSpans(scope=InstrumentationScope(name=name)), resource)
    assert len(table._known) <= 2
