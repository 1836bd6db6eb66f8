"""Reassembling held span bytes into an OTLP request under their resource and scope."""

from __future__ import annotations

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from spanledger.processor.otlp.attributes import attributes_to_dict, set_attributes
from spanledger.processor.otlp.wire import with_attributes
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


def test_equal_origins_held_as_distinct_objects_share_one_group_and_long_spans_keep_their_bytes():
    first, twin, other = origin("a", "http"), origin("a", "http"), origin("b", "http")
    assert first == twin and first is not twin
    huge = Span(name="y" * 20_000, span_id=b"\x07" * 8)  # a length past the small-varint table
    spans = [Span(name=f"s{n}", span_id=bytes([n]) * 8) for n in range(3)]
    held = [
        (first, spans[0].SerializeToString()),
        (other, spans[1].SerializeToString()),
        (twin, huge.SerializeToString()),
        (twin, spans[2].SerializeToString()),
    ]
    built = build_request(held)
    assert len(built.resource_spans) == 2
    assert list(built.resource_spans[0].scope_spans[0].spans) == [spans[0], huge, spans[2]]
    assert list(built.resource_spans[1].scope_spans[0].spans) == [spans[1]]


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


def test_attributes_appended_on_the_wire_read_back_like_protobuf_set_ones():
    values = {
        "spanledger.subtree.cost": 0.008445,
        "spanledger.trace.llm_calls": 2,
        "spanledger.trace.partial": True,
        "spanledger.cost.status": "priced",
        "negative": -(2**63),
        "long.text": "é" * 200,
    }
    original = Span(name="root", span_id=b"\x01" * 8)
    original.attributes.add(key="http.route").value.string_value = "/ask"
    for _ in range(2):  # the second round is served from the encoding caches
        appended = Span.FromString(with_attributes(original.SerializeToString(), values))
        expected = Span()
        expected.CopyFrom(original)
        set_attributes(expected, values)
        assert appended == expected
        assert attributes_to_dict(appended.attributes) == {"http.route": "/ask", **values}


def test_appending_refuses_values_it_cannot_encode():
    with pytest.raises(TypeError, match="cannot store list"):
        with_attributes(b"", {"k": [1]})
