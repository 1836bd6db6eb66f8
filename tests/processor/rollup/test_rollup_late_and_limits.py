"""Late spans, early flushes at the limits, backpressure: counted and marked, never silent."""

from __future__ import annotations

import threading

import pytest
from support.otlp import Service, chat, request, span
from support.pipelines import TAG_KEYS, FakeClock
from support.sinks import RecordingSink, TraceRecorder

from spanledger import semconv
from spanledger.processor.components import Backpressure, PermanentError
from spanledger.processor.pipeline.core import Pipeline
from spanledger.processor.pipeline.fanout import FanOut
from spanledger.processor.pricing import PriceBook, PricingConfig
from spanledger.processor.rollup import RollupConfig
from spanledger.processor.usage import extract_usage

APP = Service("app", {"customer": "initech"})


def test_a_late_span_is_priced_marked_and_counted_once(make_pipeline, clock, exporter, sink):
    pipeline = make_pipeline()
    pipeline.consume(
        request((APP, [span(1, 1, None, "run"), chat(1, 2, 1, "gpt-4o-mini", 1000, 200)]))
    )
    clock.advance(1.0)
    assert pipeline.flush_due() == 1
    root = exporter.by_span()[1].attributes
    assert root[semconv.TRACE_COST] == 0.00027

    clock.advance(3.0)
    late = chat(1, 3, 1, "claude-sonnet-4-20250514", 2000, 300, provider="anthropic")
    pipeline.consume(request((APP, [late])))
    clock.advance(1.99)
    assert pipeline.flush_due() == 0
    clock.advance(0.01)
    assert pipeline.flush_due() == 1

    spans = exporter.by_span()
    assert sorted(spans) == [1, 2, 3]
    forwarded = spans[3].attributes
    assert forwarded[semconv.ROLLUP_LATE] is True
    assert forwarded[semconv.GEN_AI_USAGE_COST] == 0.0105
    assert semconv.TRACE_COST not in forwarded
    assert semconv.SUBTREE_COST not in forwarded
    assert semconv.ROLLUP_LATE not in spans[2].attributes
    assert [call.span_id[-1] for call in sink.calls] == ["2", "3"]
    assert sink.calls[1].tags["customer"] == "initech"
    stats = pipeline.stats
    assert stats["late_spans"] == 1
    assert stats["llm_calls"] == 2

    pipeline.consume(request((APP, [late, chat(1, 2, 1, "gpt-4o-mini", 1000, 200)])))
    assert pipeline.flush_all() == 0
    assert pipeline.stats["duplicates"] == 2
    assert len(sink.calls) == 2


def test_a_late_inner_span_under_a_counted_span_is_not_counted_again(
    make_pipeline, clock, exporter, sink
):
    """The framework span was counted while the SDK's span under it had not arrived."""
    pipeline = make_pipeline()
    pipeline.consume(
        request((APP, [span(2, 1, None, "run"), chat(2, 2, 1, "gpt-4o-mini", 1000, 200)]))
    )
    clock.advance(1.0)
    pipeline.flush_due()
    clock.advance(1.0)
    pipeline.consume(request((APP, [chat(2, 3, 2, "gpt-4o-mini", 1000, 200)])))
    clock.advance(2.0)
    assert pipeline.flush_due() == 1

    inner = exporter.by_span()[3].attributes
    assert inner[semconv.COST_STATUS] == "not_counted"
    assert inner[semconv.ROLLUP_LATE] is True
    assert semconv.GEN_AI_USAGE_COST not in inner
    assert len(sink.calls) == 1
    assert pipeline.stats["not_counted"] == 1


def test_a_late_outer_span_over_a_counted_span_is_not_counted(make_pipeline, clock, exporter, sink):
    """The SDK's span was counted; the framework span around it arrives later."""
    pipeline = make_pipeline()
    pipeline.consume(
        request((APP, [span(3, 1, None, "run"), chat(3, 3, 2, "gpt-4o-mini", 1000, 200)]))
    )
    clock.advance(1.0)
    pipeline.flush_due()
    pipeline.consume(request((APP, [chat(3, 2, 1, "gpt-4o-mini", 1000, 200)])))
    clock.advance(2.0)
    assert pipeline.flush_due() == 1

    assert exporter.by_span()[2].attributes[semconv.COST_STATUS] == "not_counted"
    assert [call.span_id[-1] for call in sink.calls] == ["3"]


def test_max_traces_flushes_the_least_recently_active_trace_early(
    make_pipeline, clock, exporter, sink
):
    pipeline = make_pipeline(max_traces=2)
    pipeline.consume(
        request((APP, [span(21, 1, None, "a"), chat(21, 2, 1, "gpt-4o-mini", 1000, 200)]))
    )
    clock.advance(0.1)
    pipeline.consume(request((APP, [span(22, 3, None, "b")])))
    clock.advance(0.1)
    pipeline.consume(request((APP, [span(23, 4, None, "c")])))

    spans = exporter.by_span()
    assert sorted(spans) == [1, 2], "trace 21 left to make room, before any flush_due"
    assert spans[1].attributes[semconv.TRACE_PARTIAL] is True
    assert spans[1].attributes[semconv.TRACE_COST] == 0.00027
    assert len(sink.calls) == 1
    stats = pipeline.stats
    assert stats["early_flushes"] == 1
    assert stats["traces_held"] == 2

    pipeline.consume(request((APP, [span(21, 5, 1, "straggler")])))
    assert pipeline.stats["late_spans"] == 1
    clock.advance(5)
    pipeline.flush_due()
    assert exporter.by_span()[5].attributes[semconv.ROLLUP_LATE] is True


def test_max_spans_flushes_early_to_make_room(make_pipeline, clock, exporter):
    pipeline = make_pipeline(max_spans=3)
    pipeline.consume(request((APP, [span(31, 1, None, "a"), span(31, 2, 1, "b")])))
    pipeline.consume(request((APP, [span(32, 3, None, "c"), span(32, 4, 3, "d")])))
    spans = exporter.by_span()
    assert sorted(spans) == [1, 2]
    assert spans[1].attributes[semconv.TRACE_PARTIAL] is True
    assert pipeline.stats["spans_held"] == 2


def test_a_request_larger_than_the_limits_is_refused_permanently(make_pipeline, exporter):
    pipeline = make_pipeline(max_spans=3)
    pipeline.consume(request((APP, [span(33, 1, None, "kept")])))
    with pytest.raises(PermanentError, match="max_spans=3"):
        pipeline.consume(request((APP, [span(34, n, None, "x") for n in range(2, 6)])))
    stats = pipeline.stats
    assert stats["spans_held"] == 1
    assert stats["spans_rejected"] == 4
    assert exporter.requests == []


class BlockingExporter(TraceRecorder):
    """Holds the first export until released, as a slow downstream would."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def export(self, request) -> None:
        self.entered.set()
        assert self.release.wait(10), "the test never released the exporter"
        super().export(request)


def test_backpressure_while_spans_being_exported_leave_no_room():
    clock = FakeClock()
    exporter = BlockingExporter()
    pipeline = Pipeline(
        RollupConfig(max_spans=4),
        TAG_KEYS,
        PriceBook(PricingConfig()),
        FanOut([exporter], [RecordingSink()]),
        clock=clock,
        extract_usage=extract_usage,
    )
    pipeline.consume(request((APP, [span(41, n, None if n == 1 else 1, "a") for n in (1, 2, 3)])))
    second = threading.Thread(
        target=pipeline.consume,
        args=(request((APP, [span(42, n, None if n == 4 else 4, "b") for n in (4, 5, 6)])),),
    )
    second.start()
    try:
        assert exporter.entered.wait(10)
        assert pipeline.stats["spans_in_flight"] == 3
        with pytest.raises(Backpressure) as raised:
            pipeline.consume(request((APP, [span(43, 7, None, "c"), span(43, 8, 7, "d")])))
        assert raised.value.retry_after > 0
        assert pipeline.stats["backpressure"] == 1
    finally:
        exporter.release.set()
        second.join(10)
    assert not second.is_alive()
    pipeline.consume(request((APP, [span(43, 7, None, "c")])))
    pipeline.shutdown(1.0)
    assert sorted(exporter.by_span()) == [1, 2, 3, 4, 5, 6, 7]


def test_an_early_flushed_trace_without_calls_is_only_marked_partial(
    make_pipeline, clock, exporter
):
    pipeline = make_pipeline(max_traces=1)
    pipeline.consume(request((APP, [span(35, 2, 1, "child of a root not yet seen")])))
    pipeline.consume(request((APP, [span(36, 3, None, "another trace")])))
    attributes = exporter.by_span()[2].attributes
    assert attributes == {semconv.TRACE_PARTIAL: True}
    assert pipeline.stats["roots_missing"] == 0
