"""OTLP/JSON codec: round trips against protobuf and the specification's deviations."""

from __future__ import annotations

import json

import pytest
from google.rpc.status_pb2 import Status
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import (
    ResourceSpans,
    ScopeSpans,
    Span,
)
from opentelemetry.proto.trace.v1.trace_pb2 import (
    Status as SpanStatus,
)

from spanledger.processor.otlp.json import (
    OtlpJsonError,
    decode_message,
    decode_request,
    encode_message,
    encode_request,
)

_text = st.text(max_size=12)
_int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_uint64 = st.integers(min_value=0, max_value=2**64 - 1)
_scalar_values = st.one_of(
    _text.map(lambda v: AnyValue(string_value=v)),
    st.booleans().map(lambda v: AnyValue(bool_value=v)),
    _int64.map(lambda v: AnyValue(int_value=v)),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda v: AnyValue(double_value=v)),
    st.binary(max_size=8).map(lambda v: AnyValue(bytes_value=v)),
)
_values = st.recursive(
    _scalar_values,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda vs: AnyValue(array_value=ArrayValue(values=vs))),
        st.lists(st.tuples(_text, inner), max_size=3).map(
            lambda kvs: AnyValue(
                kvlist_value=KeyValueList(values=[KeyValue(key=k, value=v) for k, v in kvs])
            )
        ),
    ),
    max_leaves=6,
)
_attributes = st.lists(st.builds(KeyValue, key=_text, value=_values), max_size=4)


@st.composite
def _spans(draw: st.DrawFn) -> Span:
    span = Span(
        trace_id=draw(st.binary(min_size=16, max_size=16)),
        span_id=draw(st.binary(min_size=8, max_size=8)),
        parent_span_id=draw(st.one_of(st.just(b""), st.binary(min_size=8, max_size=8))),
        trace_state=draw(_text),
        flags=draw(st.integers(min_value=0, max_value=2**32 - 1)),
        name=draw(_text),
        kind=draw(st.sampled_from(list(Span.SpanKind.values()))),
        start_time_unix_nano=draw(_uint64),
        end_time_unix_nano=draw(_uint64),
        attributes=draw(_attributes),
        dropped_attributes_count=draw(st.integers(min_value=0, max_value=2**32 - 1)),
        status=SpanStatus(
            code=draw(st.sampled_from(list(SpanStatus.StatusCode.values()))), message=draw(_text)
        ),
    )
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        event = span.events.add(time_unix_nano=draw(_uint64), name=draw(_text))
        event.attributes.extend(draw(_attributes))
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        span.links.add(
            trace_id=draw(st.binary(min_size=16, max_size=16)),
            span_id=draw(st.binary(min_size=8, max_size=8)),
            trace_state=draw(_text),
        )
    return span


@st.composite
def _requests(draw: st.DrawFn) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        resource_spans = ResourceSpans(
            resource=Resource(attributes=draw(_attributes)), schema_url=draw(_text)
        )
        for _ in range(draw(st.integers(min_value=0, max_value=2))):
            resource_spans.scope_spans.append(
                ScopeSpans(
                    scope=InstrumentationScope(name=draw(_text), version=draw(_text)),
                    spans=draw(st.lists(_spans(), max_size=3)),
                )
            )
        request.resource_spans.append(resource_spans)
    return request


@settings(max_examples=100, deadline=None)
@given(_requests())
def test_json_round_trip_reproduces_the_protobuf_request(
    request: ExportTraceServiceRequest,
) -> None:
    decoded = decode_request(encode_request(request))
    assert decoded == request
    assert decoded.SerializeToString(deterministic=True) == request.SerializeToString(
        deterministic=True
    )


def test_encoding_follows_the_otlp_json_deviations(make_request) -> None:  # type: ignore[no-untyped-def]
    request = make_request(spans=2)
    document = json.loads(encode_request(request))
    span = document["resourceSpans"][0]["scopeSpans"][0]["spans"][1]
    assert span["traceId"] == request.resource_spans[0].scope_spans[0].spans[1].trace_id.hex()
    assert span["spanId"] == "00000000000003ea"
    assert span["parentSpanId"] == "00000000000003e9"
    assert span["kind"] == 3  # enums are integers
    assert span["startTimeUnixNano"] == "1700000000000000001"  # int64 as decimal strings
    attribute = {a["key"]: a["value"] for a in span["attributes"]}
    assert attribute["gen_ai.usage.input_tokens"] == {"intValue": "101"}


def test_decoding_accepts_original_names_numbers_upper_case_hex_and_unknown_fields() -> None:
    body = json.dumps(
        {
            "resource_spans": [
                {
                    "scopeSpans": [
                        {
                            "spans": [
                                {
                                    "trace_id": "5B8EFFF798038103D269B633813FC60C",
                                    "spanId": "eee19b7ec3c1b174",
                                    "parentSpanId": "",
                                    "name": "chat",
                                    "kind": 3,
                                    "startTimeUnixNano": 1544712660000000000,
                                    "end_time_unix_nano": "1544712661000000000",
                                    "attributes": [
                                        {"key": "n", "value": {"intValue": 7}},
                                        {"key": "s", "value": {"intValue": "8"}},
                                    ],
                                    "someFutureField": {"x": 1},
                                }
                            ]
                        }
                    ],
                    "futureResourceField": 1,
                }
            ]
        }
    )
    span = decode_request(body).resource_spans[0].scope_spans[0].spans[0]
    assert span.trace_id.hex() == "5b8efff798038103d269b633813fc60c"
    assert span.span_id.hex() == "eee19b7ec3c1b174"
    assert span.parent_span_id == b""
    assert span.kind == Span.SPAN_KIND_CLIENT
    assert span.start_time_unix_nano == 1544712660000000000
    assert span.end_time_unix_nano == 1544712661000000000
    assert [a.value.int_value for a in span.attributes] == [7, 8]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"{", "not JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[]", "expected a JSON object"),
        (b'{"resourceSpans": 5}', "resourceSpans: expected a list"),
        (b'{"resourceSpans": [{"scopeSpans": [7]}]}', "resourceSpans[0].scopeSpans[0]: expected"),
        (
            b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}',
            "resourceSpans[0].scopeSpans[0].spans[0].traceId: 'zz' is not a hex string",
        ),
        (
            b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"spanId":"abcd"}]}]}]}',
            "spans[0].spanId: expected 16 hex digits, got 4",
        ),
        (
            b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"links":[{"traceId":5}]}]}]}]}',
            "spans[0].links[0].traceId: expected a hex string, got a number",
        ),
        (
            b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":"soon"}]}]}]}',
            "startTimeUnixNano",
        ),
        (b"[" * 50_000 + b"]" * 50_000, "nested too deeply"),
    ],
)
def test_invalid_documents_raise_a_clear_error(body: bytes, expected: str) -> None:
    with pytest.raises(OtlpJsonError, match=None) as caught:
        decode_request(body)
    assert expected in str(caught.value)


def _attribute_value(value: object) -> AnyValue:
    body = json.dumps(
        {
            "resourceSpans": [
                {"scopeSpans": [{"spans": [{"attributes": [{"key": "k", "value": value}]}]}]}
            ]
        }
    )
    return decode_request(body).resource_spans[0].scope_spans[0].spans[0].attributes[0].value


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"stringValue": "x"}, AnyValue(string_value="x")),
        ({"string_value": "x"}, AnyValue(string_value="x")),
        ({"intValue": "-9223372036854775808"}, AnyValue(int_value=-(2**63))),
        ({"intValue": 12.0}, AnyValue(int_value=12)),
        ({"doubleValue": "NaN"}, None),
        ({"doubleValue": "-Infinity"}, AnyValue(double_value=float("-inf"))),
        ({"doubleValue": 3}, AnyValue(double_value=3.0)),
        ({"bytesValue": "aGk="}, AnyValue(bytes_value=b"hi")),
        ({"bytesValue": "aGk"}, AnyValue(bytes_value=b"hi")),
        ({"boolValue": False}, AnyValue(bool_value=False)),
        ({"arrayValue": {"values": [{"intValue": 1}, {"boolValue": True}]}}, None),
        ({"kvlistValue": {"values": [{"key": "a", "value": {"stringValue": "b"}}]}}, None),
        ({}, AnyValue()),
        ({"stringValue": None}, AnyValue()),
        ({"futureValue": 1}, AnyValue()),
    ],
)
def test_attribute_values_in_every_accepted_form(value: object, expected: AnyValue | None) -> None:
    decoded = _attribute_value(value)
    if expected is not None:
        assert decoded == expected
    elif "doubleValue" in value:  # type: ignore[operator]
        assert decoded.double_value != decoded.double_value  # NaN
    elif "arrayValue" in value:  # type: ignore[operator]
        assert [v.WhichOneof("value") for v in decoded.array_value.values] == [
            "int_value",
            "bool_value",
        ]
    else:
        assert decoded.kvlist_value.values[0].value.string_value == "b"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"intValue": "12x"}, "attributes[0].value.intValue: expected an integer, got '12x'"),
        ({"intValue": str(2**63)}, "is out of range"),
        ({"intValue": True}, "expected an integer, got a boolean"),
        ({"boolValue": "true"}, "boolValue: expected true or false"),
        ({"doubleValue": "fast"}, "doubleValue: expected a number"),
        ({"bytesValue": "%%%"}, "bytesValue: '%%%' is not base64"),
        ({"stringValue": 5}, "stringValue: expected a string, got a number"),
        ({"arrayValue": {"values": [1]}}, "arrayValue.values[0]: expected an object"),
        ("x", "attributes[0].value: expected an object, got a string"),
    ],
)
def test_bad_attribute_values_say_where(value: object, expected: str) -> None:
    with pytest.raises(OtlpJsonError) as caught:
        _attribute_value(value)
    assert expected in str(caught.value)
    assert str(caught.value).startswith("resourceSpans[0].scopeSpans[0].spans[0].attributes[0]")


def test_span_fields_out_of_range_and_enum_names() -> None:
    def span(**fields: object) -> Span:
        body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [fields]}]}]})
        return decode_request(body).resource_spans[0].scope_spans[0].spans[0]

    assert span(kind="SPAN_KIND_SERVER").kind == Span.SPAN_KIND_SERVER  # tolerated
    assert span(kind=42).kind == 42  # enums are open
    assert span(flags=2**32 - 1, droppedAttributesCount=None).flags == 2**32 - 1
    for fields, message in (
        ({"kind": "SERVER"}, "kind: expected an enum integer"),
        ({"flags": 2**32}, "flags: 4294967296 is out of range"),
        ({"startTimeUnixNano": -1}, "startTimeUnixNano: -1 is out of range"),
        ({"status": {"code": 2.5}}, "status.code: expected an enum integer"),
    ):
        with pytest.raises(OtlpJsonError, match=None) as caught:
            span(**fields)
        assert message in str(caught.value)


def test_nesting_deeper_than_binary_protobuf_allows_is_refused() -> None:
    value: dict[str, object] = {"stringValue": "leaf"}
    for _ in range(60):
        value = {"arrayValue": {"values": [value]}}
    with pytest.raises(OtlpJsonError, match="nested too deeply"):
        _attribute_value(value)


def test_messages_without_ids_round_trip() -> None:
    response = ExportTraceServiceResponse()
    response.partial_success.rejected_spans = 3
    response.partial_success.error_message = "no model"
    document = json.loads(encode_message(response))
    assert document == {"partialSuccess": {"rejectedSpans": "3", "errorMessage": "no model"}}
    assert decode_message(encode_message(response), ExportTraceServiceResponse) == response
    status = Status(code=3, message="bad")
    assert decode_message(encode_message(status), Status) == status
    with pytest.raises(OtlpJsonError):
        decode_message(b"[1]", Status)
