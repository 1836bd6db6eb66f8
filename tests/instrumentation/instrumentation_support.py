"""Helpers for the SDK instrumentation tests: an instrumentor switched on for a block, and the
real processor behind an instrumented app, for tests that check tokens and costs.

The app's tracer provider exports each span as it ends over OTLP/gRPC to the processor's gRPC
receiver (synchronously: once an SDK call returns, its span is in the pipeline); ``calls()``
flushes the pipeline and returns what it counted, ``forwarded()`` the spans it forwarded with
their cost attributes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from genai_prices import Usage as PricesUsage
from genai_prices import calc_price
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from spanledger.instrumentation.baggage.span_processor import TagSpanProcessor
from spanledger.processor.model import CountedCall
from spanledger.processor.otlp.attributes import attributes_to_dict
from spanledger.processor.pipeline.core import Pipeline
from spanledger.processor.pipeline.fanout import FanOut
from spanledger.processor.pricing import PriceBook, PricingConfig
from spanledger.processor.receivers import GrpcReceiver, GrpcReceiverConfig
from spanledger.processor.rollup import RollupConfig
from spanledger.semconv import DEFAULT_TAG_KEYS


@contextmanager
def instrumented(
    instrumentor: BaseInstrumentor, tracer_provider: TracerProvider
) -> Iterator[BaseInstrumentor]:
    """``instrumentor`` on for the block, fully uninstrumented afterwards."""
    instrumentor.instrument(tracer_provider=tracer_provider)
    try:
        yield instrumentor
    finally:
        instrumentor.uninstrument()


class _Recorder:
    """The processor's downstream: a span exporter and a call sink that keep what they get."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.calls: list[CountedCall] = []
        self._lock = threading.Lock()

    def export(self, request: ExportTraceServiceRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def record(self, calls: Sequence[CountedCall]) -> None:
        with self._lock:
            self.calls.extend(calls)

    def shutdown(self, timeout: float) -> None:
        return None


class PricedCalls:
    """A running processor and the tracer provider of an app that sends it its spans."""

    def __init__(self) -> None:
        self._recorder = _Recorder()
        self.pipeline = Pipeline(
            RollupConfig(trace_idle=60.0, root_grace=1.0),
            DEFAULT_TAG_KEYS,
            PriceBook(PricingConfig()),
            FanOut([self._recorder], [self._recorder]),
        )
        self.receiver = GrpcReceiver(GrpcReceiverConfig(endpoint="127.0.0.1:0"), self.pipeline)
        self.tracer_provider = TracerProvider()

    def start(self) -> PricedCalls:
        self.pipeline.start()
        self.receiver.start()
        exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{self.receiver.port}", insecure=True)
        self.tracer_provider.add_span_processor(TagSpanProcessor(DEFAULT_TAG_KEYS, 256))
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
        return self

    def stop(self) -> None:
        self.tracer_provider.shutdown()
        self.receiver.stop(0.5)
        self.pipeline.shutdown(5.0)
        self.pipeline.output.shutdown(5.0)

    def calls(self) -> list[CountedCall]:
        """Every call the processor counted so far (the pipeline is flushed first)."""
        self.pipeline.flush_all()
        return list(self._recorder.calls)

    def forwarded(self) -> dict[str, dict[str, Any]]:
        """The attributes of every span forwarded so far, by span name (flushed first)."""
        self.pipeline.flush_all()
        return {
            span.name: attributes_to_dict(span.attributes)
            for request in self._recorder.requests
            for resource_spans in request.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        }


def genai_prices_total(
    model: str,
    provider_id: str,
    start_time_unix_nano: int,
    *,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
) -> Decimal:
    """What ``genai_prices.calc_price`` charges for one call, the figure to agree with."""
    from datetime import UTC, datetime

    usage = PricesUsage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cache_read_tokens or None,
        cache_write_tokens=cache_write_tokens or None,
    )
    moment = datetime.fromtimestamp(start_time_unix_nano / 1e9, tz=UTC)
    return calc_price(
        usage, model, provider_id=provider_id, genai_request_timestamp=moment
    ).total_price
