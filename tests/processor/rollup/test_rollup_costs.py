"""What a flushed trace carries: per-call costs, subtree and trace totals, nesting, tags."""

from __future__ import annotations

from decimal import Decimal

from support.otlp import Service, chat, request, span

from spanledger import semconv

SHOP = Service("shop", {"env": "prod"})

# Hand-computed from the list prices (USD per million tokens).
MINI_1000_200 = {  # gpt-4o-mini, 1000 input, 200 output: $0.15 and $0.60 per million
    "input": Decimal("0.00015"),
    "output": Decimal("0.00012"),
    "total": Decimal("0.00027"),
}
SONNET_CACHED = {  # claude-sonnet-4, 2000 input of which 1000 cache read and 500 cache write
    "input": Decimal("0.0015"),  # 500 uncached x $3
    "cache_read": Decimal("0.0003"),  # 1000 x $0.30
    "cache_write": Decimal("0.001875"),  # 500 x $3.75
    "output": Decimal("0.0045"),  # 300 x $15
    "total": Decimal("0.008175"),
}


def agent_trace() -> list:
    return [
        span(1, 1, None, "POST /ask", {"customer": "acme"}, start=0.0),
        span(1, 2, 1, "invoke_agent support", {"feature": "search"}, start=0.1),
        chat(1, 3, 2, "gpt-4o-mini", 1000, 200, customer="acme", feature="search"),
        chat(
            1,
            4,
            2,
            "claude-sonnet-4-20250514",
            2000,
            300,
            provider="anthropic",
            start=2.0,
            gen_ai__usage__cache_read__input_tokens=1000,
            gen_ai__usage__cache_creation__input_tokens=500,
        ),
    ]


def test_each_counted_call_gets_its_cost_breakdown(make_pipeline, clock, exporter):
    pipeline = make_pipeline()
    pipeline.consume(request((SHOP, agent_trace())))
    clock.advance(1.0)
    assert pipeline.flush_due() == 1

    spans = exporter.by_span()
    mini = spans[3].attributes
    assert mini[semconv.GEN_AI_USAGE_COST] == float(MINI_1000_200["total"])
    assert mini[semconv.COST_INPUT] == float(MINI_1000_200["input"])
    assert mini[semconv.COST_OUTPUT] == float(MINI_1000_200["output"])
    assert mini[semconv.COST_CACHE_READ] == 0.0
    assert mini[semconv.COST_CACHE_WRITE] == 0.0
    assert mini[semconv.COST_STATUS] == "priced"
    assert mini[semconv.COST_SOURCE] == "price_table"
    assert mini[semconv.PRICING_MODEL] == "openai/gpt-4o-mini"
    assert mini[semconv.LLM_COST_TOTAL] == float(MINI_1000_200["total"])
    assert mini[semconv.LLM_COST_PROMPT] == float(MINI_1000_200["input"])
    assert mini[semconv.LLM_COST_COMPLETION] == float(MINI_1000_200["output"])
    assert semconv.COST_BILLABLE not in mini

    sonnet = spans[4].attributes
    assert sonnet[semconv.GEN_AI_USAGE_COST] == float(SONNET_CACHED["total"])
    assert sonnet[semconv.COST_INPUT] == float(SONNET_CACHED["input"])
    assert sonnet[semconv.COST_CACHE_READ] == float(SONNET_CACHED["cache_read"])
    assert sonnet[semconv.COST_CACHE_WRITE] == float(SONNET_CACHED["cache_write"])
    assert sonnet[semconv.COST_OUTPUT] == float(SONNET_CACHED["output"])
    prompt = SONNET_CACHED["input"] + SONNET_CACHED["cache_read"] + SONNET_CACHED["cache_write"]
    assert sonnet[semconv.LLM_COST_PROMPT] == float(prompt) == 0.003675
    assert sonnet[semconv.LLM_COST_COMPLETION] == 0.0045
    assert sonnet[semconv.PRICING_MODEL] == "anthropic/claude-sonnet-4-0"


def test_subtree_and_trace_totals_are_exact_sums(make_pipeline, clock, exporter):
    pipeline = make_pipeline()
    pipeline.consume(request((SHOP, agent_trace())))
    clock.advance(1.0)
    pipeline.flush_due()

    spans = exporter.by_span()
    total = MINI_1000_200["total"] + SONNET_CACHED["total"]
    assert total == Decimal("0.008445")
    root = spans[1].attributes
    assert root[semconv.TRACE_COST] == float(total)
    assert root[semconv.TRACE_LLM_CALLS] == 2
    assert root[semconv.TRACE_INPUT_TOKENS] == 3000
    assert root[semconv.TRACE_OUTPUT_TOKENS] == 500
    assert root[semconv.TRACE_UNPRICED_CALLS] == 0
    assert root[semconv.SUBTREE_COST] == float(total)
    assert spans[2].attributes[semconv.SUBTREE_COST] == float(total)
    assert spans[3].attributes[semconv.SUBTREE_COST] == float(MINI_1000_200["total"])
    assert spans[4].attributes[semconv.SUBTREE_COST] == float(SONNET_CACHED["total"])
    for number in (2, 3, 4):
        assert semconv.TRACE_COST not in spans[number].attributes
    assert semconv.TRACE_ROOT_MISSING not in root
    assert semconv.TRACE_PARTIAL not in root


def test_counted_calls_reach_sinks_with_tags_from_span_then_resource(make_pipeline, clock, sink):
    pipeline = make_pipeline()
    pipeline.consume(request((SHOP, agent_trace())))
    clock.advance(1.0)
    pipeline.flush_due()

    assert sink.batches == 1
    calls = {call.span_id: call for call in sink.calls}
    assert set(calls) == {"a000000000000003", "a000000000000004"}
    mini = calls["a000000000000003"]
    assert mini.trace_id == "5eed0000000000000000000000000001"
    assert mini.tags == {"customer": "acme", "feature": "search", "team": "(none)", "env": "prod"}
    assert mini.cost.total == MINI_1000_200["total"]
    assert mini.usage.input_tokens == 1000
    assert mini.start_time_unix_nano == 1_767_225_601_000_000_000
    sonnet = calls["a000000000000004"]
    assert sonnet.tags == {
        "customer": "(none)",
        "feature": "(none)",
        "team": "(none)",
        "env": "prod",
    }
    assert sonnet.cost.total == SONNET_CACHED["total"]


def test_trace_without_inference_is_forwarded_byte_for_byte(make_pipeline, clock, exporter, sink):
    pipeline = make_pipeline()
    plain = [
        span(2, 1, None, "GET /health", {"http.request.method": "GET"}),
        span(2, 2, 1, "SELECT users", {"db.system.name": "postgresql"}, start=0.1),
    ]
    pipeline.consume(request((SHOP, plain)))
    clock.advance(1.0)
    pipeline.flush_due()

    forwarded = exporter.by_span()
    assert forwarded[1].span.SerializeToString() == plain[0].SerializeToString()
    assert forwarded[2].span.SerializeToString() == plain[1].SerializeToString()
    assert sink.calls == []


def test_only_the_innermost_of_nested_inference_spans_is_counted(
    make_pipeline, clock, exporter, sink
):
    """A framework span over our span over the SDK's own span: only the SDK's span counts."""
    pipeline = make_pipeline()
    nested = [
        span(3, 1, None, "workflow"),
        chat(3, 2, 1, "claude-sonnet-4-20250514", 2000, 300, provider="anthropic"),
        chat(3, 3, 2, "claude-sonnet-4-20250514", 2000, 300, provider="anthropic"),
        chat(
            3,
            4,
            3,
            "claude-sonnet-4-20250514",
            2000,
            300,
            provider="anthropic",
            gen_ai__usage__cache_read__input_tokens=1000,
            gen_ai__usage__cache_creation__input_tokens=500,
        ),
    ]
    pipeline.consume(request((SHOP, nested)))
    clock.advance(1.0)
    pipeline.flush_due()

    spans = exporter.by_span()
    for outer in (2, 3):
        attributes = spans[outer].attributes
        assert attributes[semconv.COST_STATUS] == "not_counted"
        assert semconv.GEN_AI_USAGE_COST not in attributes
        assert attributes[semconv.SUBTREE_COST] == float(SONNET_CACHED["total"])
    assert spans[4].attributes[semconv.GEN_AI_USAGE_COST] == float(SONNET_CACHED["total"])
    assert spans[1].attributes[semconv.TRACE_LLM_CALLS] == 1
    assert spans[1].attributes[semconv.TRACE_COST] == float(SONNET_CACHED["total"])
    assert spans[1].attributes[semconv.TRACE_INPUT_TOKENS] == 2000
    assert [call.span_id for call in sink.calls] == ["a000000000000004"]
    assert pipeline.stats["not_counted"] == 2


def test_unpriced_calls_are_visible_not_priced_at_zero(make_pipeline, clock, exporter, sink):
    pipeline = make_pipeline()
    pipeline.consume(
        request(
            (
                SHOP,
                [
                    span(4, 1, None, "job"),
                    chat(4, 2, 1, "mystery-model-9", 500, 50),
                    chat(4, 3, 1, "gpt-4o-mini", 1000, 200),
                ],
            )
        )
    )
    clock.advance(1.0)
    pipeline.flush_due()

    spans = exporter.by_span()
    mystery = spans[2].attributes
    assert mystery[semconv.COST_STATUS] == "unpriced"
    assert "mystery-model-9" in str(mystery[semconv.COST_UNPRICED_REASON])
    assert semconv.GEN_AI_USAGE_COST not in mystery
    assert semconv.LLM_COST_TOTAL not in mystery
    assert semconv.SUBTREE_COST not in mystery
    root = spans[1].attributes
    assert root[semconv.TRACE_LLM_CALLS] == 2
    assert root[semconv.TRACE_UNPRICED_CALLS] == 1
    assert root[semconv.TRACE_COST] == float(MINI_1000_200["total"])
    assert root[semconv.TRACE_INPUT_TOKENS] == 1500
    statuses = sorted(call.cost.status for call in sink.calls)
    assert statuses == ["priced", "unpriced"]
    assert pipeline.stats["unpriced_calls"] == 1
    assert pipeline.stats["llm_calls"] == 2


def test_markup_adds_the_billable_amount(make_pipeline, clock, exporter):
    pipeline = make_pipeline(markup_percent=10)
    pipeline.consume(request((SHOP, [chat(5, 1, None, "gpt-4o-mini", 1000, 200)])))
    clock.advance(1.0)
    pipeline.flush_due()

    attributes = exporter.by_span()[1].attributes
    assert attributes[semconv.COST_BILLABLE] == float(Decimal("0.000297"))
    assert attributes[semconv.GEN_AI_USAGE_COST] == float(MINI_1000_200["total"])


def test_attributes_already_on_the_span_are_replaced_not_repeated(make_pipeline, clock, exporter):
    pipeline = make_pipeline()
    stale = chat(
        6,
        1,
        None,
        "gpt-4o-mini",
        1000,
        200,
        gen_ai__usage__cost=999.0,
        spanledger__cost__status="x",
    )
    pipeline.consume(request((SHOP, [stale])))
    clock.advance(1.0)
    pipeline.flush_due()

    forwarded = exporter.by_span()[1].span
    keys = [kv.key for kv in forwarded.attributes]
    assert keys.count(semconv.GEN_AI_USAGE_COST) == 1
    assert keys.count(semconv.COST_STATUS) == 1
    assert exporter.by_span()[1].attributes[semconv.GEN_AI_USAGE_COST] == 0.00027


def test_missing_root_totals_go_to_the_earliest_topmost_span(make_pipeline, clock, exporter):
    """Span 1 never arrives: its children 2 and 4 are topmost; 4 started first."""
    pipeline = make_pipeline()
    orphans = [
        span(7, 2, 1, "agent step", start=0.5),
        chat(7, 3, 2, "gpt-4o-mini", 1000, 200),
        span(7, 4, 1, "tool call", start=0.2),
        chat(7, 5, 4, "claude-sonnet-4-20250514", 2000, 300, provider="anthropic"),
    ]
    pipeline.consume(request((SHOP, orphans)))
    clock.advance(1.99)
    assert pipeline.flush_due() == 0
    clock.advance(0.01)
    assert pipeline.flush_due() == 1

    spans = exporter.by_span()
    sonnet_plain = Decimal("0.006") + Decimal("0.0045")
    carrier = spans[4].attributes
    assert carrier[semconv.TRACE_ROOT_MISSING] is True
    assert carrier[semconv.TRACE_COST] == float(MINI_1000_200["total"] + sonnet_plain)
    assert carrier[semconv.TRACE_LLM_CALLS] == 2
    assert carrier[semconv.SUBTREE_COST] == float(sonnet_plain)
    assert semconv.TRACE_COST not in spans[2].attributes
    assert spans[2].attributes[semconv.SUBTREE_COST] == float(MINI_1000_200["total"])
    assert pipeline.stats["roots_missing"] == 1


def test_a_parent_id_of_zeros_marks_a_root(make_pipeline, clock, exporter):
    pipeline = make_pipeline()
    root = span(8, 1, None, "root")
    root.parent_span_id = bytes(8)
    pipeline.consume(request((SHOP, [root, chat(8, 2, 1, "gpt-4o-mini", 1000, 200)])))
    clock.advance(1.0)
    assert pipeline.flush_due() == 1, "root_grace applies: the root was recognised"
    attributes = exporter.by_span()[1].attributes
    assert attributes[semconv.TRACE_COST] == 0.00027
    assert semconv.TRACE_ROOT_MISSING not in attributes
