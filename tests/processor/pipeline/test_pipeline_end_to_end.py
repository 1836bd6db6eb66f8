"""End to end over real OTLP: SDK apps → receivers → pipeline → OTLP/gRPC exporter → a receiver.

Two services report one trace: the front end through the OpenTelemetry SDK's OTLP/gRPC
exporter, the triage service as OTLP/JSON over HTTP with string-typed token counts. The priced
spans are forwarded by the processor's own OTLP/gRPC exporter to a second gRPC receiver.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from decimal import Decimal

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, format_span_id, format_trace_id
from support.pipelines import TAG_KEYS
from support.sinks import RecordingSink, TraceRecorder

from spanledger import semconv
from spanledger.processor.exporters import OtlpGrpcExporter, OtlpGrpcExporterConfig, TlsClientConfig
from spanledger.processor.pipeline.core import Pipeline
from spanledger.processor.pipeline.fanout import FanOut
from spanledger.processor.pricing import PriceBook, PricingConfig
from spanledger.processor.receivers import (
    GrpcReceiver,
    GrpcReceiverConfig,
    HttpReceiver,
    HttpReceiverConfig,
)
from spanledger.processor.rollup import RollupConfig


@pytest.fixture
def processor() -> Iterator[
    tuple[Pipeline, GrpcReceiver, HttpReceiver, TraceRecorder, RecordingSink]
]:
    downstream = TraceRecorder()  # the backend, behind a gRPC receiver
    backend = GrpcReceiver(GrpcReceiverConfig(endpoint="127.0.0.1:0"), downstream)
    backend.start()
    exporter = OtlpGrpcExporter(
        OtlpGrpcExporterConfig(
            endpoint=f"127.0.0.1:{backend.port}", tls=TlsClientConfig(insecure=True)
        )
    )
    sink = RecordingSink()
    pipeline = Pipeline(
        RollupConfig(trace_idle=1.0, root_grace=0.3),
        TAG_KEYS,
        PriceBook(PricingConfig()),
        FanOut([exporter], [sink]),
    )
    pipeline.start()
    grpc_in = GrpcReceiver(GrpcReceiverConfig(endpoint="127.0.0.1:0"), pipeline)
    http_in = HttpReceiver(HttpReceiverConfig(endpoint="127.0.0.1:0"), pipeline)
    grpc_in.start()
    http_in.start()
    try:
        yield pipeline, grpc_in, http_in, downstream, sink
    finally:
        grpc_in.stop(0.5)
        http_in.stop(0.5)
        pipeline.shutdown(5.0)
        pipeline.output.shutdown(5.0)
        backend.stop(0.5)


def _string(value: str) -> dict[str, str]:
    return {"stringValue": value}


def test_one_trace_from_two_services_is_priced_and_forwarded(processor):
    pipeline, grpc_in, http_in, downstream, sink = processor
    provider = TracerProvider(resource=Resource.create({"service.name": "frontend", "env": "prod"}))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"127.0.0.1:{grpc_in.port}", insecure=True))
    )
    tracer = provider.get_tracer("frontend.app")
    with tracer.start_as_current_span("POST /answer", kind=SpanKind.SERVER) as root:
        root.set_attribute("customer", "acme")
        context = root.get_span_context()
        trace_hex = format_trace_id(context.trace_id)
        root_hex = format_span_id(context.span_id)
        with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT) as llm:
            llm.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.usage.input_tokens": 1000,
                    "gen_ai.usage.output_tokens": 200,
                    "customer": "acme",
                }
            )
        # The triage service, called by the front end, reports over OTLP/JSON.
        triage_chat = {
            "traceId": trace_hex,
            "spanId": "00000000000000b2",
            "parentSpanId": "00000000000000b1",
            "name": "chat claude-sonnet-4-20250514",
            "kind": 3,
            "startTimeUnixNano": str(time.time_ns()),
            "endTimeUnixNano": str(time.time_ns() + 1000),
            "attributes": [
                {"key": "gen_ai.operation.name", "value": _string("chat")},
                {"key": "gen_ai.provider.name", "value": _string("anthropic")},
                {"key": "gen_ai.request.model", "value": _string("claude-sonnet-4-20250514")},
                {"key": "gen_ai.usage.input_tokens", "value": _string("2000")},
                {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "300"}},
            ],
        }
        triage_server = {
            "traceId": trace_hex,
            "spanId": "00000000000000b1",
            "parentSpanId": root_hex,
            "name": "POST /triage",
            "kind": 2,
            "startTimeUnixNano": str(time.time_ns()),
            "endTimeUnixNano": str(time.time_ns() + 2000),
        }
        body = {
            "resourceSpans": [
                {
                    "resource": {
                        "attributes": [
                            {"key": "service.name", "value": _string("triage")},
                            {"key": "team", "value": _string("support")},
                        ]
                    },
                    "scopeSpans": [
                        {"scope": {"name": "triage"}, "spans": [triage_chat, triage_server]}
                    ],
                }
            ]
        }
        posted = urllib.request.urlopen(
            urllib.request.Request(
                f"http://127.0.0.1:{http_in.port}/v1/traces",
                data=json.dumps(body).encode(),
                headers={"Content-Type": "application/json"},
            ),
            timeout=10,
        )
        assert posted.status == 200
    provider.shutdown()

    downstream.wait_for_spans(4, timeout=15.0)
    forwarded = downstream.forwarded()
    assert len(forwarded) == 4
    by_name = {item.span.name: (item.service, item.attributes) for item in forwarded}
    mini = Decimal("0.00027")  # 1000 x $0.15 + 200 x $0.60 per million
    sonnet = Decimal("0.0105")  # 2000 x $3 + 300 x $15 per million
    service, root_attributes = by_name["POST /answer"]
    assert service == "frontend"
    assert root_attributes[semconv.TRACE_COST] == float(mini + sonnet)
    assert root_attributes[semconv.TRACE_LLM_CALLS] == 2
    assert root_attributes[semconv.TRACE_INPUT_TOKENS] == 3000
    assert root_attributes[semconv.SUBTREE_COST] == float(mini + sonnet)
    assert by_name["chat gpt-4o-mini"][1][semconv.GEN_AI_USAGE_COST] == float(mini)
    service, triage_attributes = by_name["chat claude-sonnet-4-20250514"]
    assert service == "triage"
    assert triage_attributes[semconv.GEN_AI_USAGE_COST] == float(sonnet)
    assert by_name["POST /triage"][1][semconv.SUBTREE_COST] == float(sonnet)

    calls = {call.usage.model: call for call in sink.calls}
    assert calls["gpt-4o-mini"].tags["customer"] == "acme"
    assert calls["gpt-4o-mini"].tags["env"] == "prod"
    assert calls["claude-sonnet-4-20250514"].tags["team"] == "support"
    assert calls["claude-sonnet-4-20250514"].trace_id == trace_hex
    assert pipeline.stats["spans_forwarded"] == 4
