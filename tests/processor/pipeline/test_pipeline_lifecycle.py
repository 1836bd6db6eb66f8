"""The pipeline as a component: bad input, failing neighbours, the flusher thread, shutdown.

The pipeline here hands its traces to a ``FanOut`` over recording exporters and sinks, as the
service wires it."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from support.otlp import Service, chat, request, span
from support.pipelines import TAG_KEYS, FakeClock
from support.sinks import RecordingSink, TraceRecorder

from spanledger import semconv
from spanledger.processor.components import Backpressure
from spanledger.processor.pipeline.core import Pipeline
from spanledger.processor.pipeline.fanout import FanOut
from spanledger.processor.pricing import PriceBook, PricingConfig
from spanledger.processor.rollup import RollupConfig
from spanledger.processor.usage import extract_usage

APP = Service("app")


def build(exporters, sinks, clock=None, extract_usage=extract_usage, **rollup) -> Pipeline:
    return Pipeline(
        RollupConfig(**rollup),
        TAG_KEYS,
        PriceBook(PricingConfig()),
        FanOut(exporters, sinks),
        clock=clock or FakeClock(),
        extract_usage=extract_usage,
    )


def test_spans_with_invalid_ids_are_rejected_and_the_rest_kept(make_pipeline, clock, exporter):
    pipeline = make_pipeline()
    bad_trace = span(1, 2, 1, "short trace id")
    bad_trace.trace_id = b"\x01" * 8
    bad_span = span(1, 3, 1, "zero span id")
    bad_span.span_id = bytes(8)
    result = pipeline.consume(request((APP, [span(1, 1, None, "fine"), bad_trace, bad_span])))
    assert result.rejected_spans == 2
    assert "trace id must be 16 bytes" in result.error_message
    clock.advance(1.0)
    pipeline.flush_due()
    assert sorted(exporter.by_span()) == [1]
    assert pipeline.stats["spans_rejected"] == 2


def test_an_accepted_request_reports_full_success(make_pipeline):
    result = make_pipeline().consume(request((APP, [span(2, 1, None, "fine")])))
    assert (result.rejected_spans, result.error_message) == (0, "")


class FailingExporter(TraceRecorder):
    def export(self, request) -> None:
        raise ConnectionError("downstream refused")


class FailingSink(RecordingSink):
    def record(self, calls) -> None:
        raise OSError("disk full")


def test_a_failing_exporter_or_sink_does_not_stop_the_others(caplog):
    healthy_exporter, healthy_sink = TraceRecorder(), RecordingSink()
    clock = FakeClock()
    pipeline = build([FailingExporter(), healthy_exporter], [FailingSink(), healthy_sink], clock)
    with caplog.at_level(logging.ERROR, logger="spanledger.processor.pipeline.fanout"):
        pipeline.consume(request((APP, [chat(3, 1, None, "gpt-4o-mini", 1000, 200)])))
        clock.advance(1.0)
        pipeline.flush_due()
    assert sorted(healthy_exporter.by_span()) == [1]
    assert len(healthy_sink.calls) == 1
    assert pipeline.stats["export_errors"] == 1
    assert pipeline.stats["sink_errors"] == 1
    assert "FailingExporter failed" in caplog.text
    assert "FailingSink failed" in caplog.text


def test_a_span_whose_usage_cannot_be_read_is_forwarded_uncounted(caplog):
    def fragile(attributes, span_name=""):
        if attributes.get("gen_ai.request.model") == "breaks-the-reader":
            raise ValueError("unexpected attribute shape")
        return extract_usage(attributes, span_name)

    exporter, sink, clock = TraceRecorder(), RecordingSink(), FakeClock()
    pipeline = build([exporter], [sink], clock, extract_usage=fragile)
    spans = [
        span(4, 1, None, "run"),
        chat(4, 2, 1, "breaks-the-reader", 10, 10),
        chat(4, 3, 1, "gpt-4o-mini", 1000, 200),
    ]
    with caplog.at_level(logging.ERROR, logger="spanledger.processor.rollup"):
        pipeline.consume(request((APP, spans)))
        clock.advance(1.0)
        pipeline.flush_due()
    forwarded = exporter.by_span()
    assert sorted(forwarded) == [1, 2, 3]
    assert semconv.COST_STATUS not in forwarded[2].attributes
    assert forwarded[1].attributes[semconv.TRACE_LLM_CALLS] == 1
    assert [call.span_id[-1] for call in sink.calls] == ["3"]
    assert "could not read usage" in caplog.text


def test_a_price_book_that_raises_leaves_the_call_unpriced():
    class BrokenPriceBook:
        def price(self, usage, start_time_unix_nano):
            raise RuntimeError("price table unavailable")

    exporter, sink, clock = TraceRecorder(), RecordingSink(), FakeClock()
    pipeline = Pipeline(
        RollupConfig(),
        TAG_KEYS,
        BrokenPriceBook(),
        FanOut([exporter], [sink]),
        clock=clock,
        extract_usage=extract_usage,
    )
    pipeline.consume(request((APP, [chat(5, 1, None, "gpt-4o-mini", 1000, 200)])))
    clock.advance(1.0)
    pipeline.flush_due()
    attributes = exporter.by_span()[1].attributes
    assert attributes[semconv.COST_STATUS] == "unpriced"
    assert attributes[semconv.COST_UNPRICED_REASON] == "pricing failed: price table unavailable"
    assert attributes[semconv.TRACE_UNPRICED_CALLS] == 1
    assert sink.calls[0].cost.status == "unpriced"


def test_shutdown_flushes_waiting_traces_and_leaves_the_output_to_its_builder():
    exporter, sink = TraceRecorder(), RecordingSink()
    pipeline = build([exporter], [sink])
    pipeline.consume(request((APP, [span(6, 1, None, "run"), chat(6, 2, 1, "gpt-4o-mini", 1, 1)])))
    pipeline.consume(request((APP, [span(7, 3, 9, "no root yet")])))
    pipeline.shutdown(2.0)

    assert sorted(exporter.by_span()) == [1, 2, 3]
    assert len(sink.calls) == 1
    assert exporter.shutdown_timeouts == sink.shutdown_timeouts == []
    with pytest.raises(Backpressure, match="shutting down"):
        pipeline.consume(request((APP, [span(8, 4, None, "too late")])))
    assert pipeline.stats["traces_held"] == 0

    pipeline.output.shutdown(2.0)
    assert len(exporter.shutdown_timeouts) == 1
    assert 0 < exporter.shutdown_timeouts[0] <= 2.0
    assert len(sink.shutdown_timeouts) == 1


def test_the_background_flusher_forwards_due_traces_on_its_own():
    exporter = TraceRecorder()
    pipeline = build([exporter], [], clock=time.monotonic, trace_idle=0.05, root_grace=0.02)
    pipeline.start()
    try:
        pipeline.consume(request((APP, [span(9, 1, None, "run")])))
        deadline = time.monotonic() + 5
        while not exporter.requests and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sorted(exporter.by_span()) == [1]
    finally:
        pipeline.shutdown(1.0)


def test_an_invalid_rollup_configuration_is_refused():
    with pytest.raises(ValueError, match="max_traces must be an integer of at least 1"):
        build([], [], max_traces=0)


def test_stats_account_for_every_span(make_pipeline, clock):
    pipeline = make_pipeline()
    spans = [span(10, 1, None, "a"), span(10, 2, 1, "b")]
    pipeline.consume(request((APP, [*spans, spans[0]])))
    pipeline.consume(request((APP, [span(11, 3, None, "c")])))
    stats = pipeline.stats
    assert stats["spans_received"] == 4
    assert stats["duplicates"] == 1
    assert stats["spans_held"] == 3
    assert stats["traces_held"] == 2
    clock.advance(1.0)
    pipeline.flush_due()
    stats = pipeline.stats
    assert stats["spans_forwarded"] == 3
    assert stats["traces_flushed"] == 2
    assert stats["spans_held"] == 0
    assert stats["remembered_spans"] == 3


class SerializedExporter(TraceRecorder):
    """Takes the serialized request, as the OTLP exporters do."""

    def __init__(self) -> None:
        super().__init__()
        self.payload_spans: list[int] = []

    def export_serialized(self, payload: bytes, spans: int) -> None:
        self.payload_spans.append(spans)
        self.export(ExportTraceServiceRequest.FromString(payload))


def test_exporters_that_take_bytes_get_the_encoded_request(make_pipeline, clock, exporter):
    serialized = SerializedExporter()
    clock = FakeClock()
    pipeline = build([serialized, exporter], [], clock)
    pipeline.consume(request((APP, [span(12, 1, None, "a"), span(12, 2, 1, "b")])))
    clock.advance(1.0)
    pipeline.flush_due()
    assert serialized.payload_spans == [2]
    assert serialized.requests == exporter.requests


class FullExporter(TraceRecorder):
    """Raises ``Backpressure`` for its first ``refusals`` exports, like a full queue."""

    def __init__(self, refusals: int) -> None:
        super().__init__()
        self.refusals = refusals

    def export(self, request) -> None:
        if self.refusals > 0:
            self.refusals -= 1
            raise Backpressure("queue full", retry_after=0.01)
        super().export(request)


def test_an_exporter_pushing_back_is_retried_until_it_accepts():
    full = FullExporter(refusals=2)
    clock = FakeClock()
    pipeline = build([full], [], clock)
    pipeline.consume(request((APP, [span(13, 1, None, "a")])))
    clock.advance(1.0)
    pipeline.flush_due()
    assert sorted(full.by_span()) == [1]
    assert pipeline.stats["export_waits"] == 2
    assert pipeline.stats["export_errors"] == 0


def test_an_exporter_that_stays_full_is_given_up_on_with_an_error(caplog):
    full, healthy = FullExporter(refusals=10**6), TraceRecorder()
    clock = FakeClock()
    pipeline = build([full, healthy], [], clock)
    pipeline.output.export_patience = 0.1
    pipeline.consume(request((APP, [span(14, 1, None, "a")])))
    clock.advance(1.0)
    with caplog.at_level(logging.ERROR, logger="spanledger.processor.pipeline.fanout"):
        pipeline.flush_due()
    assert full.requests == []
    assert sorted(healthy.by_span()) == [1]
    assert pipeline.stats["export_errors"] == 1
    assert "stayed full" in caplog.text


def test_concurrent_senders_and_the_flusher_lose_and_double_nothing():
    """Four sender threads, each delivering its traces twice, while the flusher runs."""
    exporter, sink = TraceRecorder(), RecordingSink()
    pipeline = build([exporter], [sink], clock=time.monotonic, trace_idle=0.2, root_grace=0.05)
    pipeline.start()
    errors: list[BaseException] = []

    def send(first_trace: int) -> None:
        try:
            for trace in range(first_trace, first_trace + 25):
                spans = [span(trace, trace * 10, None, "root", start=0.0)] + [
                    chat(trace, trace * 10 + n, trace * 10, "gpt-4o-mini", 1000, 200)
                    for n in (1, 2)
                ]
                for _ in range(2):
                    pipeline.consume(request((APP, spans[1:])))
                    pipeline.consume(request((APP, spans[:1])))
        except BaseException as exc:  # reported to the test thread below
            errors.append(exc)

    senders = [threading.Thread(target=send, args=(start,)) for start in (100, 200, 300, 400)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join(30)
    pipeline.shutdown(5.0)

    assert errors == []
    forwarded = exporter.forwarded()
    assert len(forwarded) == 300
    assert len({f.span.span_id for f in forwarded}) == 300
    assert len(sink.calls) == 200
    assert len({call.span_id for call in sink.calls}) == 200
    stats = pipeline.stats
    assert stats["duplicates"] == 300
    assert stats["spans_received"] == 600
    assert stats["spans_in_flight"] == stats["spans_held"] == 0
