"""Odd but possible input: parent cycles, several roots, and the bounded memory of flushed spans."""

from __future__ import annotations

from support.otlp import Service, chat, request, span

from spanledger import semconv
from spanledger.processor.rollup.buffer import FlushedTrace

APP = Service("app")


def test_a_parent_cycle_does_not_hang_and_loses_nothing(make_pipeline, clock, exporter):
    pipeline = make_pipeline()
    looping = [
        span(1, 1, 2, "a"),
        span(1, 2, 1, "b"),
        chat(1, 3, 3, "gpt-4o-mini", 1000, 200),  # its own parent
    ]
    pipeline.consume(request((APP, looping)))
    clock.advance(2.0)
    assert pipeline.flush_due() == 1
    spans = exporter.by_span()
    assert sorted(spans) == [1, 2, 3]
    assert spans[3].attributes[semconv.GEN_AI_USAGE_COST] == 0.00027
    carriers = [n for n, f in spans.items() if semconv.TRACE_COST in f.attributes]
    assert len(carriers) == 1


def test_with_several_parentless_spans_the_earliest_carries_the_totals(
    make_pipeline, clock, exporter
):
    pipeline = make_pipeline()
    pipeline.consume(
        request(
            (
                APP,
                [
                    span(2, 1, None, "late root", start=3.0),
                    span(2, 2, None, "early root", start=1.0),
                    chat(2, 3, 1, "gpt-4o-mini", 1000, 200),
                ],
            )
        )
    )
    clock.advance(1.0)
    pipeline.flush_due()
    spans = exporter.by_span()
    assert spans[2].attributes[semconv.TRACE_COST] == 0.00027
    assert semconv.TRACE_ROOT_MISSING not in spans[2].attributes
    assert semconv.TRACE_COST not in spans[1].attributes
    assert spans[1].attributes[semconv.SUBTREE_COST] == 0.00027


def test_memory_of_flushed_spans_is_bounded(make_pipeline, clock):
    pipeline = make_pipeline(remember_spans=3)
    for trace in range(10, 20):
        pipeline.consume(request((APP, [span(trace, trace, None, "a")])))
        clock.advance(1.0)
        pipeline.flush_due()
        assert pipeline.stats["remembered_spans"] <= 3
    pipeline.consume(request((APP, [span(19, 19, None, "a")])))
    assert pipeline.stats["duplicates"] == 1, "recent span ids are still remembered"
    pipeline.consume(request((APP, [span(10, 10, None, "a")])))
    assert pipeline.stats["duplicates"] == 1, "the oldest were forgotten"


def test_remembered_span_ids_only_match_whole_ids():
    memory = FlushedTrace()
    memory.add([bytes.fromhex("0011223344556677"), bytes.fromhex("8899aabbccddeeff")])
    assert len(memory) == 2
    assert bytes.fromhex("8899aabbccddeeff") in memory
    assert bytes.fromhex("44556677" + "8899aabb") not in memory, "straddles two ids"
    assert b"\x00\x11" not in memory
