"""Bad input through a running processor: each gets a clear status or a flagged span, and the
processor keeps serving the next request.

Status mapping per receiver is covered in tests/processor/otlp/ (malformed protobuf and JSON,
content types, gzip bombs, size limits, chunked bodies, auth, TLS); here the same kinds of input
go through the whole service (receiver, pipeline, exporter) one after the other, each followed by
a good request that must still be priced and delivered.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from reliability_support import (
    add_trace,
    build_request,
    expected_cost,
    grpc_export,
    post,
    span_id,
    trace_id,
)
from support.sinks import OtlpHttpBackend

from spanledger import semconv
from spanledger.processor.config import Config
from spanledger.processor.exporters import OtlpHttpExporterConfig
from spanledger.processor.otlp.attributes import to_any_value
from spanledger.processor.pipeline.core import MAX_TAG_VALUE_CHARS
from spanledger.processor.receivers import GrpcReceiverConfig, HttpReceiverConfig
from spanledger.processor.rollup import RollupConfig
from spanledger.processor.service import Service
from spanledger.processor.sinks.ledger import LedgerConfig
from spanledger.processor.sinks.metrics import MetricsConfig

LIMIT = 2 * 1024 * 1024


class Running:
    def __init__(self, service: Service, backend: OtlpHttpBackend) -> None:
        assert service.http is not None and service.grpc is not None
        self.service = service
        self.backend = backend
        self.url = f"http://127.0.0.1:{service.http.port}/v1/traces"
        self.grpc_port = service.grpc.port
        self.good = 0

    def assert_still_serving(self) -> None:
        """A good request is accepted, priced and delivered."""
        number = 900_000 + self.good
        self.good += 1
        status, _, _ = post(
            self.url, build_request(range(number, number + 1), 1).SerializeToString()
        )
        assert status == 200
        call = self.backend.wait_for_span(trace_id(number), span_id(number, 1), timeout=10)
        attributes = call.attributes
        assert attributes[semconv.COST_STATUS] == semconv.STATUS_PRICED

    def grpc_export(self, body: bytes) -> grpc.RpcError | None:
        return grpc_export(self.grpc_port, body)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    backend = OtlpHttpBackend()
    backend.start()
    config = Config(
        grpc=GrpcReceiverConfig("127.0.0.1:0", max_request_bytes=LIMIT),
        http=HttpReceiverConfig("127.0.0.1:0", max_request_bytes=LIMIT),
        exporters=[OtlpHttpExporterConfig(backend.endpoint, initial_backoff=0.05)],
        rollup=RollupConfig(trace_idle=2.0, root_grace=0.05),
        ledger=LedgerConfig(path=str(tmp_path / "ledger.db")),
        metrics=MetricsConfig(prometheus_endpoint=None),
    )
    service = Service(config)
    service.start()
    try:
        yield Running(service, backend)
    finally:
        service.stop()
        backend.stop()


def _nested(depth: int) -> AnyValue:
    value = AnyValue(string_value="bottom")
    for _ in range(depth):
        outer = AnyValue()
        outer.array_value.values.append(value)
        value = outer
    return value


def _json_nested(depth: int) -> dict[str, object]:
    value: dict[str, object] = {"stringValue": "bottom"}
    for _ in range(depth):
        value = {"arrayValue": {"values": [value]}}
    return value


def _json_request(attribute_value: dict[str, object]) -> bytes:
    span = {
        "traceId": "5" * 32,
        "spanId": "6" * 16,
        "name": "nested",
        "attributes": [{"key": "deep", "value": attribute_value}],
    }
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}).encode()


def test_malformed_and_hostile_bodies_are_refused_and_the_processor_keeps_serving(
    running: Running,
) -> None:
    url = running.url
    bomb = gzip.compress(b"\0" * (LIMIT * 8))  # 16 MiB of zeros in about 16 KiB
    cases: list[tuple[bytes, str, dict[str, str], int]] = [
        (b"\x0a\xff\xff\xff\xff\x0f", "application/x-protobuf", {}, 400),
        (b"{not json", "application/json", {}, 400),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}',
            "application/json",
            {},
            400,
        ),
        (b"hello", "text/plain", {}, 415),
        (bomb, "application/x-protobuf", {"Content-Encoding": "gzip"}, 413),
        (
            gzip.compress(b"x" * 1000)[:-12],
            "application/x-protobuf",
            {"Content-Encoding": "gzip"},
            400,
        ),
        (b"\0" * (LIMIT + 1), "application/x-protobuf", {}, 413),
        (_json_request(_json_nested(150)), "application/json", {}, 400),
        # An enum (span kind) given as a string holding a lone surrogate, twice: protobuf's C
        # code once kept an exception pending, and the next request failed without an answer.
        (_surrogate_kind(), "application/json", {}, 400),
        (_surrogate_kind(), "application/json", {}, 400),
    ]
    for body, content_type, headers, expected in cases:
        status, _, answer = post(url, body, content_type, **headers)
        assert status == expected, (content_type, headers, answer[:200])
        running.assert_still_serving()

    for body, code in (
        (b"\x0a\xff\xff\xff\xff\x0f", grpc.StatusCode.INVALID_ARGUMENT),
        (b"\0" * (LIMIT + 1), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (_deeply_nested_request_bytes(150), grpc.StatusCode.INVALID_ARGUMENT),
    ):
        error = running.grpc_export(body)
        assert error is not None and error.code() is code, body[:20]
        running.assert_still_serving()


def _surrogate_kind() -> bytes:
    span = {"traceId": "5be1" * 8, "spanId": "5be1" * 4, "name": "x", "kind": "\ud800"}
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}).encode()


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    length, size = b"", len(payload)
    while True:
        byte, size = size & 0x7F, size >> 7
        length += bytes([byte | (0x80 if size else 0)])
        if not size:
            return bytes([number << 3 | 2]) + length + payload


def _deeply_nested_request_bytes(depth: int) -> bytes:
    """A request whose one attribute nests ``depth`` arrays, encoded by hand (the protobuf
    library refuses to build what it would refuse to parse)."""
    value = _field(1, b"bottom")  # AnyValue.string_value
    for _ in range(depth):
        value = _field(5, _field(1, value))  # AnyValue.array_value.values[0]
    attribute = _field(1, b"deep") + _field(2, value)  # KeyValue
    span = _nested_request(0).resource_spans[0].scope_spans[0].spans[0]
    span_bytes = span.SerializeToString() + _field(9, attribute)  # Span.attributes
    return _field(1, _field(2, _field(2, span_bytes)))  # resource_spans.scope_spans.spans


def _nested_request(depth: int) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    span = (
        request.resource_spans.add()
        .scope_spans.add()
        .spans.add(trace_id=trace_id(777), span_id=span_id(777, 0), name="nested")
    )
    span.attributes.add(key="deep").value.CopyFrom(_nested(depth))
    return request


def test_nesting_within_the_protobuf_limit_and_huge_values_are_forwarded_intact(
    running: Running,
) -> None:
    # Binary protobuf allows 100 message levels; each array adds two, the envelope six.
    assert running.grpc_export(_deeply_nested_request_bytes(45)) is None
    request = ExportTraceServiceRequest()
    huge = "x" * (LIMIT // 2)
    span = (
        request.resource_spans.add()
        .scope_spans.add()
        .spans.add(trace_id=trace_id(778), span_id=span_id(778, 0), name="huge")
    )
    span.attributes.add(key="huge").value.string_value = huge
    assert running.grpc_export(request.SerializeToString()) is None

    deep = running.backend.wait_for_span(trace_id(777), span_id(777, 0), timeout=10)
    wide = running.backend.wait_for_span(trace_id(778), span_id(778, 0), timeout=10)
    assert wide.attributes["huge"] == huge
    depth, value = 0, deep.attributes["deep"]
    while isinstance(value, list):
        depth, value = depth + 1, value[0]
    assert (depth, value) == (45, "bottom")

    status, _, _ = post(running.url, _json_request(_json_nested(45)), "application/json")
    assert status == 200
    running.assert_still_serving()


@pytest.mark.parametrize(
    ("input_tokens", "reason"),
    [
        (-5, "negative"),
        (10**12, "tokens"),
        ("lots", "not a number"),
        (float("nan"), "whole number"),
        (True, "not a number"),
        ("9" * 5000, "tokens"),
    ],
)
def test_unusable_token_counts_flag_the_span_unpriced_with_the_reason(
    running: Running, input_tokens: object, reason: str
) -> None:
    request = ExportTraceServiceRequest()
    add_trace(request, 555, 1)
    chat = request.resource_spans[0].scope_spans[0].spans[1]
    for attribute in chat.attributes:
        if attribute.key == "gen_ai.usage.input_tokens":
            to_any_value(input_tokens, attribute.value)
    status, _, _ = post(running.url, request.SerializeToString())
    assert status == 200
    call = running.backend.wait_for_span(trace_id(555), span_id(555, 1), timeout=10)
    attributes = call.attributes
    assert attributes[semconv.COST_STATUS] == semconv.STATUS_UNPRICED
    assert reason in attributes[semconv.COST_UNPRICED_REASON]
    assert "gen_ai.usage.cost" not in attributes  # never priced at $0
    root = running.backend.get(trace_id(555), span_id(555, 0)).attributes
    assert root[semconv.TRACE_UNPRICED_CALLS] == 1
    running.assert_still_serving()


def test_an_unknown_model_is_counted_unpriced_not_free(running: Running) -> None:
    request = ExportTraceServiceRequest()
    add_trace(request, 556, 1)
    chat = request.resource_spans[0].scope_spans[0].spans[1]
    for attribute in chat.attributes:
        if attribute.key in ("gen_ai.request.model", "gen_ai.response.model"):
            attribute.value.string_value = "no-such-model-3000"
    assert post(running.url, request.SerializeToString())[0] == 200
    call = running.backend.wait_for_span(trace_id(556), span_id(556, 1), timeout=10)
    attributes = call.attributes
    assert attributes[semconv.COST_STATUS] == semconv.STATUS_UNPRICED
    assert "no-such-model-3000" in attributes[semconv.COST_UNPRICED_REASON]
    running.assert_still_serving()


def test_a_20000_span_trace_is_rolled_up_whole(running: Running) -> None:
    """One trace of 20,000 spans (1,000 of them LLM calls) in four requests of 5,000 spans."""
    number, calls = 4242, 999
    whole = ExportTraceServiceRequest()
    add_trace(whole, number, calls)  # the root and 999 calls
    spans = whole.resource_spans[0].scope_spans[0].spans
    for index in range(calls + 1, 20_000):
        spans.add(
            trace_id=trace_id(number),
            span_id=span_id(number, index),
            parent_span_id=span_id(number, 1 + index % calls),
            name="tool",
            kind=Span.SPAN_KIND_INTERNAL,
        )
    assert len(spans) == 20_000
    ordered = [*list(spans)[1:], spans[0]]  # the root comes last, as SDKs export it
    for start in range(0, 20_000, 5_000):
        part = ExportTraceServiceRequest()
        part.resource_spans.add().scope_spans.add().spans.extend(ordered[start : start + 5_000])
        status, _, _ = post(running.url, part.SerializeToString())
        assert status == 200
    root = running.backend.wait_for_span(
        trace_id(number), span_id(number, 0), timeout=20
    ).attributes
    assert running.backend.wait_for_distinct(20_000 + running.good, timeout=20)
    assert root[semconv.TRACE_LLM_CALLS] == calls
    expected = expected_cost(range(number, number + 1), calls)
    assert abs(Decimal(repr(root[semconv.TRACE_COST])) - expected) < Decimal("1e-12")
    assert running.service.pipeline is not None
    assert running.service.pipeline.stats["early_flushes"] == 0
    running.assert_still_serving()


def test_a_huge_tag_value_is_cut_before_it_becomes_a_label_or_a_ledger_key(
    running: Running,
) -> None:
    request = ExportTraceServiceRequest()
    add_trace(request, 557, 1)
    chat = request.resource_spans[0].scope_spans[0].spans[1]
    for attribute in chat.attributes:
        if attribute.key == "customer":
            attribute.value.string_value = "c" * 100_000
    assert post(running.url, request.SerializeToString())[0] == 200
    running.backend.wait_for_span(trace_id(557), span_id(557, 1), timeout=10)
    running.assert_still_serving()  # the ledger has written the call by now
    assert running.service.ledger is not None
    rows = running.service.ledger.ledger.aggregate(["customer"])
    customers = {row.key[0] for row in rows}
    assert "c" * MAX_TAG_VALUE_CHARS in customers
    assert all(len(customer) <= MAX_TAG_VALUE_CHARS for customer in customers)
