"""Grouping spans into traces: several services, out-of-order batches, duplicates, timing."""

from __future__ import annotations

import random
from decimal import Decimal

from support.otlp import Service, chat, request, span

from spanledger import semconv

FRONTEND = Service("frontend", scope="spanledger.instrumentation.openai", scope_version="0.1")
TRIAGE = Service(
    "triage",
    {"env": "staging", "team": "support"},
    scope="triage.handlers",
    schema_url="https://opentelemetry.io/schemas/1.30.0",
)


def test_spans_from_several_services_out_of_order_and_twice_make_one_trace(
    make_pipeline, clock, exporter, sink
):
    pipeline = make_pipeline()
    root = span(7, 1, None, "GET /chat", start=0.0, kind=2)
    call_triage = span(7, 2, 1, "POST triage", start=0.1, kind=3)
    triage_server = span(7, 3, 2, "POST /triage", start=0.2, kind=2)
    # OTLP/JSON senders may write numbers as strings.
    triage_chat = chat(
        7, 4, 3, "gpt-4o-mini", "1000", "200", gen_ai__usage__cache_read__input_tokens="400"
    )
    frontend_chat = chat(7, 5, 1, "claude-sonnet-4-20250514", 2000, 300, provider="anthropic")

    pipeline.consume(request((TRIAGE, [triage_server, triage_chat])))
    clock.advance(0.5)
    pipeline.consume(request((FRONTEND, [frontend_chat]), (TRIAGE, [triage_chat])))
    clock.advance(0.5)
    pipeline.consume(request((FRONTEND, [call_triage, root])))
    clock.advance(0.5)
    pipeline.consume(request((FRONTEND, [frontend_chat])))
    clock.advance(0.49)
    assert pipeline.flush_due() == 0, "root_grace runs from the root's arrival"
    assert exporter.requests == []
    clock.advance(0.01)
    assert pipeline.flush_due() == 1

    spans = exporter.by_span()
    assert sorted(spans) == [1, 2, 3, 4, 5]
    for number in (1, 2, 5):
        assert spans[number].service == "frontend"
        assert spans[number].scope == "spanledger.instrumentation.openai"
    for number in (3, 4):
        assert spans[number].service == "triage"
        assert spans[number].resource["team"] == "support"
        assert spans[number].scope == "triage.handlers"
        assert spans[number].scope_schema_url == "https://opentelemetry.io/schemas/1.30.0"
        assert spans[number].resource_schema_url == "https://opentelemetry.io/schemas/1.30.0"

    cached_mini = Decimal("0.00009") + Decimal("0.00003") + Decimal("0.00012")  # 600/400/200
    sonnet = Decimal("0.006") + Decimal("0.0045")
    assert spans[4].attributes[semconv.GEN_AI_USAGE_COST] == float(cached_mini) == 0.00024
    assert spans[4].attributes[semconv.COST_CACHE_READ] == 0.00003
    assert spans[5].attributes[semconv.GEN_AI_USAGE_COST] == float(sonnet)
    for number in (2, 3):
        assert spans[number].attributes[semconv.SUBTREE_COST] == float(cached_mini)
    assert spans[1].attributes[semconv.TRACE_COST] == float(cached_mini + sonnet) == 0.01074
    assert spans[1].attributes[semconv.TRACE_INPUT_TOKENS] == 3000

    tags = {call.span_id[-1]: call.tags for call in sink.calls}
    assert tags["4"] == {
        "customer": "(none)",
        "feature": "(none)",
        "team": "support",
        "env": "staging",
    }
    assert tags["5"]["team"] == "(none)"
    stats = pipeline.stats
    assert stats["duplicates"] == 2
    assert stats["spans_received"] == 7
    assert stats["spans_forwarded"] == 5
    assert stats["traces_flushed"] == 1

    clock.advance(10)
    pipeline.consume(request((TRIAGE, [triage_chat])))
    assert pipeline.flush_all() == 0
    assert pipeline.stats["duplicates"] == 3
    assert pipeline.stats["late_spans"] == 0
    assert len(sink.calls) == 2


def test_idle_wait_runs_from_the_last_span(make_pipeline, clock, exporter):
    pipeline = make_pipeline(trace_idle=2.0)
    pipeline.consume(request((FRONTEND, [span(8, 2, 1, "step one")])))
    clock.advance(1.5)
    pipeline.consume(request((FRONTEND, [span(8, 3, 1, "step two")])))
    clock.advance(1.99)
    assert pipeline.flush_due() == 0
    clock.advance(0.01)
    assert pipeline.flush_due() == 1
    assert sorted(exporter.by_span()) == [2, 3]


def test_traces_are_flushed_independently(make_pipeline, clock, exporter):
    pipeline = make_pipeline(trace_idle=2.0, root_grace=1.0)
    pipeline.consume(request((FRONTEND, [span(9, 1, None, "a"), span(10, 2, 1, "b")])))
    clock.advance(1.0)
    assert pipeline.flush_due() == 1
    assert sorted(exporter.by_span()) == [1]
    clock.advance(1.0)
    assert pipeline.flush_due() == 1
    assert sorted(exporter.by_span()) == [1, 2]


def test_a_trace_that_keeps_growing_is_flushed_as_partial_after_max_wait(
    make_pipeline, clock, exporter
):
    pipeline = make_pipeline(trace_idle=2.0, max_wait=5.0)
    for number in range(1, 8):
        pipeline.consume(request((FRONTEND, [span(11, number + 1, 1, f"step {number}")])))
        flushed = pipeline.flush_due()
        if number < 6:
            assert flushed == 0
        clock.advance(1.0)
    spans = exporter.by_span()
    assert sorted(spans)[:5] == [2, 3, 4, 5, 6]
    carrier = spans[2].attributes
    assert carrier[semconv.TRACE_PARTIAL] is True
    assert pipeline.stats["early_flushes"] == 1


def test_random_delivery_order_and_duplicates_do_not_change_the_result(
    make_pipeline, clock, exporter, sink
):
    """Thirty traces split into random batches, delivered shuffled, a fifth of spans twice.

    Inference spans are leaves here, so every one of them is counted.
    """
    rng = random.Random(20260101)
    pipeline = make_pipeline()
    expected: dict[str, Decimal] = {}
    everything = []
    for trace in range(100, 130):
        spans = [span(trace, trace * 100, None, "request")]
        parents = [spans[0]]
        total = Decimal(0)
        for step in range(1, rng.randint(2, 6)):
            parent = rng.choice(parents).span_id
            parent_number = int.from_bytes(parent, "big") - 0xA0000000_00000000
            number = trace * 100 + step
            if rng.random() < 0.5:
                inputs, outputs = rng.randint(1, 5000), rng.randint(1, 900)
                spans.append(chat(trace, number, parent_number, "gpt-4o-mini", inputs, outputs))
                total += Decimal(inputs) * Decimal("0.15") / 10**6
                total += Decimal(outputs) * Decimal("0.60") / 10**6
            else:
                parents.append(span(trace, number, parent_number, "work"))
                spans.append(parents[-1])
        expected[spans[0].trace_id.hex()] = total
        everything += [(rng.choice((FRONTEND, TRIAGE)), item) for item in spans]
    everything += [rng.choice(everything) for _ in range(len(everything) // 5)]
    rng.shuffle(everything)
    while everything:
        size = rng.randint(1, 7)
        batch, everything = everything[:size], everything[size:]
        pipeline.consume(request(*[(service, [item]) for service, item in batch]))
        clock.advance(0.01)
    clock.advance(5)
    pipeline.flush_due()

    forwarded = exporter.forwarded()
    assert len(forwarded) == len({(f.span.trace_id, f.span.span_id) for f in forwarded})
    roots = {f.span.trace_id.hex(): f.attributes for f in forwarded if not f.span.parent_span_id}
    assert set(roots) == set(expected)
    for trace_hex, total in expected.items():
        if total:
            assert roots[trace_hex][semconv.TRACE_COST] == float(total)
            calls = [c for c in sink.calls if c.trace_id == trace_hex]
            assert sum(c.cost.total for c in calls) == total
        else:
            assert semconv.TRACE_COST not in roots[trace_hex]
    stats = pipeline.stats
    assert stats["spans_received"] == stats["spans_forwarded"] + stats["duplicates"]
    assert stats["spans_held"] == 0
