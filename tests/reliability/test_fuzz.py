"""Property-based fuzzing of what faces untrusted input: the OTLP decoders, gunzip, usage
extraction and the pipeline itself. Bounded (a fixed number of derandomized examples each) so it
runs in seconds in CI and the same way every time.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from reliability_support import build_request
from support.sinks import TraceRecorder

from spanledger.processor.components import Backpressure, PermanentError
from spanledger.processor.otlp import json as otlp_json
from spanledger.processor.otlp.attributes import to_any_value
from spanledger.processor.pipeline.core import Pipeline
from spanledger.processor.pipeline.fanout import FanOut
from spanledger.processor.pricing import PriceBook, PricingConfig
from spanledger.processor.receivers.handling import Rejection, gunzip, parse_protobuf
from spanledger.processor.rollup import RollupConfig
from spanledger.processor.usage import extract_usage
from spanledger.processor.usage.counts import MAX_TOKENS
from spanledger.processor.usage.extract import (
    CACHE_READ,
    CACHE_WRITE,
    INPUT_TOTAL,
    OUTPUT_TOTAL,
    REASONING,
)

FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SEED = build_request(range(3), 2).SerializeToString()
BOOK = PriceBook(PricingConfig())

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=30,
)
otlp_keys = st.sampled_from(
    [
        "resourceSpans",
        "scopeSpans",
        "spans",
        "traceId",
        "spanId",
        "parentSpanId",
        "name",
        "attributes",
        "key",
        "value",
        "stringValue",
        "intValue",
        "doubleValue",
        "arrayValue",
        "kvlistValue",
        "values",
        "startTimeUnixNano",
        "kind",
        "status",
        "events",
        "links",
        "resource",
        "scope",
    ]
)
otlp_shaped = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=34) | st.floats(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(otlp_keys, children, max_size=5)
    ),
    max_leaves=40,
)


@FUZZ
@given(st.binary(max_size=2000))
def test_binary_protobuf_decoding_either_parses_or_is_a_clear_rejection(body: bytes) -> None:
    try:
        parse_protobuf(body)
    except Rejection as rejection:
        assert rejection.http_status == 400
        assert "not a valid protobuf" in rejection.message


@FUZZ
@given(st.data())
def test_mutated_protobuf_requests_either_parse_or_are_rejected(data: st.DataObject) -> None:
    body = bytearray(SEED)
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(body) - 1))
        body[position] = data.draw(st.integers(0, 255))
    try:
        parse_protobuf(bytes(body))
    except Rejection as rejection:
        assert rejection.http_status == 400


@FUZZ
@given(st.one_of(json_values, otlp_shaped))
def test_json_decoding_either_parses_or_raises_its_own_error(document: Any) -> None:
    body = json.dumps({"resourceSpans": [document]} if isinstance(document, dict) else document)
    try:
        otlp_json.decode_request(body.encode())
    except otlp_json.OtlpJsonError as error:
        assert str(error)


@FUZZ
@given(st.binary(max_size=3000))
def test_json_decoding_of_arbitrary_bytes_never_fails_otherwise(body: bytes) -> None:
    with contextlib.suppress(otlp_json.OtlpJsonError):
        otlp_json.decode_request(body)


@FUZZ
@given(st.binary(max_size=500), st.integers(1, 4096))
def test_gunzip_never_produces_more_than_its_limit(payload: bytes, limit: int) -> None:
    for body in (payload, gzip.compress(payload), gzip.compress(payload)[: len(payload) // 2]):
        try:
            out = gunzip(body, limit)
        except Rejection as rejection:
            assert rejection.http_status in (400, 413)
        else:
            assert len(out) <= limit
            assert out == payload


token_values = (
    st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.booleans()
    | st.none()
    | st.lists(st.integers(), max_size=3)
    | st.binary(max_size=10)
)
usage_keys = st.sampled_from(
    [
        *INPUT_TOTAL,
        *OUTPUT_TOTAL,
        *CACHE_READ,
        *CACHE_WRITE,
        *REASONING,
        "gen_ai.operation.name",
        "gen_ai.provider.name",
        "gen_ai.system",
        "gen_ai.request.model",
        "gen_ai.response.model",
        "llm.model_name",
        "spanledger.cost.reported",
        "llm.usage.total_tokens",
        "gen_ai.openai.request.service_tier",
    ]
)


@FUZZ
@given(st.dictionaries(usage_keys, token_values, max_size=10), st.text(max_size=30))
def test_usage_extraction_never_raises_and_keeps_counts_sane(
    attributes: dict[str, object], name: str
) -> None:
    usage = extract_usage(attributes, name)
    if usage is None:
        return
    for field in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"):
        count = getattr(usage, field)
        assert isinstance(count, int) and 0 <= count <= MAX_TOKENS, (field, count)
    if usage.reported_cost is not None:
        assert usage.reported_cost.is_finite() and usage.reported_cost >= 0
    cost = BOOK.price(usage, 1_767_225_600 * 10**9)
    assert cost.status in ("priced", "unpriced")
    if cost.status == "priced":
        assert cost.total.is_finite() and cost.total >= 0
        assert math.isfinite(float(cost.total))


span_ids = st.binary(min_size=0, max_size=10)


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.integers(0, 3),  # trace
            span_ids,
            span_ids,
            st.dictionaries(usage_keys, token_values, max_size=6),
        ),
        max_size=25,
    )
)
@pytest.mark.slow
def test_the_pipeline_survives_any_spans_and_forwards_every_accepted_one(
    spans: list[tuple[int, bytes, bytes, dict[str, object]]],
) -> None:
    recorder = TraceRecorder()
    pipeline = Pipeline(RollupConfig(max_spans=20, max_traces=3), [], BOOK, FanOut([recorder], []))
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for trace, span_id, parent, attributes in spans:
        span = scope.spans.add(
            trace_id=bytes([trace + 1]) * 16, span_id=span_id, parent_span_id=parent, name="x"
        )
        for key, value in attributes.items():
            if value is None or (isinstance(value, bytes | list) and not value):
                continue
            try:
                to_any_value(value, span.attributes.add(key=key).value)
            except (TypeError, ValueError, OverflowError):
                del span.attributes[-1]
    with contextlib.suppress(Backpressure, PermanentError):
        pipeline.consume(request)
    pipeline.flush_all()
    stats = pipeline.stats
    assert stats["annotate_errors"] == 0
    assert stats["spans_held"] == 0 and stats["spans_in_flight"] == 0
    assert len(recorder.spans()) == stats["spans_forwarded"]
    assert stats["spans_received"] == (
        stats["spans_forwarded"] + stats["duplicates"] + stats["spans_rejected"]
    )
