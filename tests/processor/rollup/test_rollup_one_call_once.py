"""One LLM call, one count: sibling records of one call, calls without usage, foreign costs."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from support.otlp import Service, chat, request, span

from spanledger import semconv

OURS = Service(
    "shop", {"env": "prod"}, scope="spanledger.instrumentation.anthropic", scope_version="0.1"
)
PEER = Service("shop", {"env": "prod"}, scope="opentelemetry.instrumentation.anthropic")
LANGCHAIN = Service("shop", {"env": "prod"}, scope="openinference.instrumentation.langchain")
GATEWAY = Service("gateway", scope="litellm")
APP = Service("shop", {"env": "prod"}, scope="app")

SONNET = "claude-sonnet-4-20250514"
# claude-sonnet-4: 2000 input of which 1000 cache read and 500 cache write, 300 output.
SONNET_CACHED = Decimal("0.008175")
# The same call priced without its cache breakdown: 2000 input x $3 + 300 x $15.
SONNET_UNCACHED = Decimal("0.0105")
MINI_1000_200 = Decimal("0.00027")


def sonnet(trace: int, number: int, parent: int, start: float = 1.0, **extra: object):
    return chat(
        trace, number, parent, SONNET, 2000, 300, provider="anthropic", start=start, **extra
    )


def cached(**extra: object) -> dict[str, object]:
    return {
        "gen_ai__usage__cache_read__input_tokens": 1000,
        "gen_ai__usage__cache_creation__input_tokens": 500,
        **extra,
    }


def flush(pipeline, clock) -> None:
    clock.advance(5.0)
    pipeline.flush_due()


def test_siblings_sharing_a_response_id_count_once_the_richest_winning(
    make_pipeline, clock, exporter, sink
):
    """Traceloop's anthropic span is not current: the SDK's span (ours) is its sibling."""
    pipeline = make_pipeline()
    pipeline.consume(
        request(
            (APP, [span(1, 1, None, "POST /ask", start=0.0)]),
            (PEER, [sonnet(1, 2, 1, gen_ai__response__id="msg_01")]),
            (OURS, [sonnet(1, 3, 1, start=1.01, gen_ai__response__id="msg_01", **cached())]),
        )
    )
    flush(pipeline, clock)

    spans = exporter.by_span()
    ours, peer, root = spans[3].attributes, spans[2].attributes, spans[1].attributes
    assert ours[semconv.COST_STATUS] == "priced"
    assert ours[semconv.GEN_AI_USAGE_COST] == float(SONNET_CACHED)
    assert peer[semconv.COST_STATUS] == "not_counted"
    assert peer[semconv.COST_NOT_COUNTED_REASON] == "same_response_id"
    assert peer[semconv.COST_COUNTED_SPAN_ID] == spans[3].span.span_id.hex()
    assert semconv.GEN_AI_USAGE_COST not in peer
    assert root[semconv.TRACE_LLM_CALLS] == 1
    assert root[semconv.TRACE_COST] == float(SONNET_CACHED)
    assert [call.span_id for call in sink.calls] == [spans[3].span.span_id.hex()]
    assert pipeline.stats["not_counted"] == 1


@pytest.mark.parametrize("seed", range(4))
def test_siblings_arriving_in_any_order_and_request_from_two_services_count_once(
    make_pipeline, clock, exporter, sink, seed
):
    pieces = [
        (APP, [span(2, 1, None, "POST /ask", start=0.0)]),
        (PEER, [sonnet(2, 2, 1, gen_ai__response__id="msg_02")]),
        (OURS, [sonnet(2, 3, 1, gen_ai__response__id="msg_02", **cached())]),
        # A gateway in another service records the call again, beside ours.
        (GATEWAY, [sonnet(2, 4, 1, start=1.1, gen_ai__response__id="msg_02")]),
    ]
    random.Random(seed).shuffle(pieces)
    pipeline = make_pipeline()
    for piece in pieces:
        pipeline.consume(request(piece))
        clock.advance(0.3)
    flush(pipeline, clock)

    spans = exporter.by_span()
    assert spans[3].attributes[semconv.COST_STATUS] == "priced"
    for other in (2, 4):
        assert spans[other].attributes[semconv.COST_STATUS] == "not_counted"
        assert spans[other].attributes[semconv.COST_COUNTED_SPAN_ID] == spans[3].span.span_id.hex()
    assert spans[1].attributes[semconv.TRACE_COST] == float(SONNET_CACHED)
    assert len(sink.calls) == 1


def test_an_sdks_own_span_wins_over_another_instrumentations_record_of_the_same_call(
    make_pipeline, clock, exporter
):
    """Traceloop's anthropic stream span adds message_start's output token to the final count;
    the SDK's own span, its sibling, has the provider's figures."""
    sdk = Service("shop", scope="com.anthropic.sdk.python")
    pipeline = make_pipeline()
    pipeline.consume(
        request(
            (APP, [span(20, 1, None, "POST /ask", start=0.0)]),
            (
                PEER,
                [
                    chat(
                        20,
                        2,
                        1,
                        SONNET,
                        2000,
                        301,
                        provider="anthropic",
                        gen_ai__response__id="msg_20",
                        **cached(),
                    )
                ],
            ),
            (sdk, [sonnet(20, 3, 1, gen_ai__response__id="msg_20", **cached())]),
        )
    )
    flush(pipeline, clock)

    spans = exporter.by_span()
    assert spans[3].attributes[semconv.COST_STATUS] == "priced"
    assert spans[2].attributes[semconv.COST_COUNTED_SPAN_ID] == spans[3].span.span_id.hex()
    assert spans[1].attributes[semconv.TRACE_COST] == float(SONNET_CACHED)


def test_a_framework_sibling_without_response_id_matches_on_parent_model_and_tokens(
    make_pipeline, clock, exporter, sink
):
    """OpenInference LangChain's ChatOpenAI span is not current: ours is its sibling."""
    pipeline = make_pipeline()
    langchain = chat(
        3,
        2,
        1,
        "gpt-4o-mini",
        1000,
        200,
        start=0.9,
        openinference__span__kind="LLM",
    )
    langchain.end_time_unix_nano += 200_000_000  # it encloses our call in time
    pipeline.consume(
        request(
            (APP, [span(3, 1, None, "POST /ask", start=0.0)]),
            (LANGCHAIN, [langchain]),
            (
                OURS,
                [
                    chat(
                        3,
                        3,
                        1,
                        "gpt-4o-mini",
                        1000,
                        200,
                        gen_ai__response__id="chatcmpl-1",
                        gen_ai__response__model="gpt-4o-mini-2024-07-18",
                        gen_ai__usage__cache_read__input_tokens=0,
                    )
                ],
            ),
        )
    )
    flush(pipeline, clock)

    spans = exporter.by_span()
    assert spans[3].attributes[semconv.COST_STATUS] == "priced"
    assert spans[2].attributes[semconv.COST_STATUS] == "not_counted"
    assert spans[2].attributes[semconv.COST_NOT_COUNTED_REASON] == "same_call"
    assert spans[1].attributes[semconv.TRACE_LLM_CALLS] == 1
    assert spans[1].attributes[semconv.TRACE_COST] == float(MINI_1000_200)
    assert len(sink.calls) == 1


def test_two_identical_prompts_answered_twice_are_two_calls(make_pipeline, clock, exporter, sink):
    """Both recorders saw both calls: same parent, model and tokens, different response ids."""
    pipeline = make_pipeline()
    pipeline.consume(
        request(
            (APP, [span(4, 1, None, "POST /ask", start=0.0)]),
            (
                PEER,
                [
                    sonnet(4, 2, 1, start=1.0, gen_ai__response__id="msg_a"),
                    sonnet(4, 3, 1, start=1.0, gen_ai__response__id="msg_b"),
                ],
            ),
            (
                OURS,
                [
                    sonnet(4, 4, 1, start=1.0, gen_ai__response__id="msg_a", **cached()),
                    sonnet(4, 5, 1, start=1.0, gen_ai__response__id="msg_b", **cached()),
                ],
            ),
        )
    )
    flush(pipeline, clock)

    spans = exporter.by_span()
    assert spans[1].attributes[semconv.TRACE_LLM_CALLS] == 2
    assert spans[1].attributes[semconv.TRACE_COST] == float(2 * SONNET_CACHED)
    assert spans[2].attributes[semconv.COST_COUNTED_SPAN_ID] == spans[4].span.span_id.hex()
    assert spans[3].attributes[semconv.COST_COUNTED_SPAN_ID] == spans[5].span.span_id.hex()
    assert len(sink.calls) == 2


def test_identical_calls_without_response_ids_one_after_the_other_are_two_calls(
    make_pipeline, clock, exporter
):
    pipeline = make_pipeline()
    pipeline.consume(
        request(
            (APP, [span(5, 1, None, "POST /ask", start=0.0)]),
            (LANGCHAIN, [sonnet(5, 2, 1, start=1.0), sonnet(5, 3, 1, start=2.0)]),
            (OURS, [sonnet(5, 4, 1, start=1.0), sonnet(5, 5, 1, start=2.0)]),
        )
    )
    flush(pipeline, clock)

    spans = exporter.by_span()
    assert spans[1].attributes[semconv.TRACE_LLM_CALLS] == 2
    # Each framework span is paired with the call it overlaps in time.
    assert spans[2].attributes[semconv.COST_COUNTED_SPAN_ID] == spans[4].span.span_id.hex()
    assert spans[3].attributes[semconv.COST_COUNTED_SPAN_ID] == spans[5].span.span_id.hex()


def test_concurrent_identical_calls_without_response_ids_are_two_calls(
    make_pipeline, clock, exporter
):
    pipeline = make_pipeline()
    pipeline.consume(
        request(
            (APP, [span(6, 1, None, "POST /ask", start=0.0)]),
            (LANGCHAIN, [sonnet(6, 2, 1, start=1.0), sonnet(6, 3, 1, start=1.1)]),
            (OURS, [sonnet(6, 4, 1, start=1.0), sonnet(6, 5, 1, start=1.1)]),
        )
    )
    flush(pipeline, clock)

    root = exporter.by_span()[1].attributes
    assert root[semconv.TRACE_LLM_CALLS] == 2
    assert root[semconv.TRACE_COST] == float(2 * SONNET_UNCACHED)


def test_one_recorder_never_records_one_call_twice(make_pipeline, clock, exporter):
    """A caching gateway answers two calls with one response id: still two calls."""
    pipeline = make_pipeline()
    pipeline.consume(
        request(
            (APP, [span(7, 1, None, "POST /ask", start=0.0)]),
            (OURS, [sonnet(7, 2, 1, gen_ai__response__id="msg_c"), sonnet(7, 3, 1, start=1.2)]),
        )
    )
    pipeline.consume(request((OURS, [sonnet(7, 4, 1, start=3.0, gen_ai__response__id="msg_c")])))
    flush(pipeline, clock)

    root = exporter.by_span()[1].attributes
    assert root[semconv.TRACE_LLM_CALLS] == 3


@pytest.mark.parametrize(
    "differs",
    [
        {"model": "claude-opus-4-20250514"},
        {"output": 301},
        {"input": 2001},
        {"provider": "aws.bedrock"},
        {"parent": 9},
        {"start": 3.0},
    ],
)
def test_records_that_disagree_are_separate_calls(make_pipeline, clock, exporter, differs):
    pipeline = make_pipeline()
    other = chat(
        8,
        3,
        differs.get("parent", 1),
        differs.get("model", SONNET),
        differs.get("input", 2000),
        differs.get("output", 300),
        provider=differs.get("provider", "anthropic"),
        start=differs.get("start", 1.0),
    )
    pipeline.consume(
        request(
            (APP, [span(8, 1, None, "POST /ask", start=0.0), span(8, 9, 1, "step", start=0.5)]),
            (OURS, [sonnet(8, 2, 1)]),
            (LANGCHAIN, [other]),
        )
    )
    flush(pipeline, clock)

    assert exporter.by_span()[1].attributes[semconv.TRACE_LLM_CALLS] == 2


def test_a_dialect_leaving_cached_input_out_still_matches(make_pipeline, clock, exporter):
    """OpenLIT's Anthropic spans report input without the cache; the tokens still agree."""
    pipeline = make_pipeline()
    pipeline.consume(
        request(
            (APP, [span(9, 1, None, "POST /ask", start=0.0)]),
            (OURS, [sonnet(9, 2, 1, **cached())]),
            (LANGCHAIN, [chat(9, 3, 1, SONNET, 500, 300, provider="anthropic")]),
        )
    )
    flush(pipeline, clock)

    spans = exporter.by_span()
    assert spans[1].attributes[semconv.TRACE_LLM_CALLS] == 1
    assert spans[3].attributes[semconv.COST_STATUS] == "not_counted"


# Calls without usage.


def test_a_call_without_usage_is_counted_unpriced_with_the_reason(
    make_pipeline, clock, exporter, sink
):
    pipeline = make_pipeline()
    cut = span(
        10,
        2,
        1,
        "chat gpt-4o-mini",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.request.stream": True,
            "spanledger.stream.completed": False,
        },
        start=1.0,
    )
    pipeline.consume(
        request(
            (APP, [span(10, 1, None, "POST /ask", start=0.0)]),
            (OURS, [cut, chat(10, 3, 1, "gpt-4o-mini", 1000, 200, start=2.0)]),
        )
    )
    flush(pipeline, clock)

    spans = exporter.by_span()
    attributes = spans[2].attributes
    assert attributes[semconv.COST_STATUS] == "unpriced"
    assert attributes[semconv.COST_UNPRICED_REASON] == (
        "usage missing: the stream was closed before its final usage arrived (openai/gpt-4o-mini)"
    )
    assert semconv.GEN_AI_USAGE_COST not in attributes
    root = spans[1].attributes
    assert root[semconv.TRACE_LLM_CALLS] == 2
    assert root[semconv.TRACE_UNPRICED_CALLS] == 1
    assert root[semconv.TRACE_COST] == float(MINI_1000_200)
    statuses = sorted(call.cost.status for call in sink.calls)
    assert statuses == ["priced", "unpriced"]
    assert pipeline.stats["unpriced_calls"] == 1


def test_a_sibling_without_usage_yields_to_the_record_with_usage(make_pipeline, clock, exporter):
    """A peer's stream span saw no usage chunk; ours, beside it, did."""
    pipeline = make_pipeline()
    no_usage = span(
        11,
        2,
        1,
        "ChatCompletion",
        {
            "openinference.span.kind": "LLM",
            "llm.model_name": "gpt-4o-mini",
            "llm.provider": "openai",
        },
        start=1.0,
    )
    pipeline.consume(
        request(
            (APP, [span(11, 1, None, "POST /ask", start=0.0)]),
            (LANGCHAIN, [no_usage]),
            (OURS, [chat(11, 3, 1, "gpt-4o-mini", 1000, 200, start=1.1)]),
        )
    )
    flush(pipeline, clock)

    spans = exporter.by_span()
    assert spans[2].attributes[semconv.COST_STATUS] == "not_counted"
    assert spans[2].attributes[semconv.COST_NOT_COUNTED_REASON] == "same_call"
    assert spans[1].attributes[semconv.TRACE_UNPRICED_CALLS] == 0
    assert spans[1].attributes[semconv.TRACE_COST] == float(MINI_1000_200)


def test_an_inner_record_without_usage_yields_to_the_enclosing_record_with_usage(
    make_pipeline, clock, exporter, sink
):
    """A peer patched under ours made its span current inside ours, and saw no usage."""
    pipeline = make_pipeline()
    inner = span(
        12,
        3,
        2,
        "ChatCompletion",
        {"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-mini"},
        start=1.1,
    )
    pipeline.consume(
        request(
            (APP, [span(12, 1, None, "POST /ask", start=0.0)]),
            (OURS, [chat(12, 2, 1, "gpt-4o-mini", 1000, 200)]),
            (LANGCHAIN, [inner]),
        )
    )
    flush(pipeline, clock)

    spans = exporter.by_span()
    assert spans[2].attributes[semconv.COST_STATUS] == "priced"
    assert spans[3].attributes[semconv.COST_STATUS] == "not_counted"
    assert spans[3].attributes[semconv.COST_NOT_COUNTED_REASON] == (
        "usage_missing_enclosing_span_counted"
    )
    assert spans[1].attributes[semconv.TRACE_COST] == float(MINI_1000_200)
    assert [call.span_id for call in sink.calls] == [spans[2].span.span_id.hex()]


def test_a_framework_span_over_several_calls_without_usage_stays_not_counted(
    make_pipeline, clock, exporter
):
    pipeline = make_pipeline()
    calls = [
        span(
            13,
            number,
            2,
            "chat gpt-4o-mini",
            {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini"},
            start=1.0 + number,
        )
        for number in (3, 4)
    ]
    pipeline.consume(
        request(
            (APP, [span(13, 1, None, "POST /ask", start=0.0)]),
            (LANGCHAIN, [chat(13, 2, 1, "gpt-4o-mini", 2000, 400, start=0.5)]),
            (OURS, calls),
        )
    )
    flush(pipeline, clock)

    spans = exporter.by_span()
    assert spans[2].attributes[semconv.COST_STATUS] == "not_counted"
    assert spans[1].attributes[semconv.TRACE_LLM_CALLS] == 2
    assert spans[1].attributes[semconv.TRACE_UNPRICED_CALLS] == 2


# Foreign costs and peer-estimated costs.


def test_another_tools_cost_moves_aside_on_spans_not_priced_here(make_pipeline, clock, exporter):
    """OpenLIT writes its own gen_ai.usage.cost on every span it makes."""
    openlit = Service("shop", scope="openlit.otel.tracing")
    pipeline = make_pipeline()
    agent = span(
        14,
        2,
        1,
        "invoke_agent helper",
        {"gen_ai.operation.name": "invoke_agent", "gen_ai.usage.cost": 0.5},
        start=0.5,
    )
    pipeline.consume(
        request(
            (APP, [span(14, 1, None, "POST /ask", start=0.0)]),
            (
                openlit,
                [agent, sonnet(14, 3, 2, gen_ai__usage__cost=0.0105, llm__cost__total=0.0105)],
            ),
            (OURS, [sonnet(14, 4, 3, **cached())]),
            (openlit, [chat(14, 5, 2, "mystery-model-9", 10, 10, gen_ai__usage__cost=0.25)]),
        )
    )
    flush(pipeline, clock)

    spans = exporter.by_span()
    outer = spans[3].attributes
    assert outer[semconv.COST_STATUS] == "not_counted"
    assert semconv.GEN_AI_USAGE_COST not in outer
    assert outer["spanledger.foreign.gen_ai.usage.cost"] == 0.0105
    assert outer["spanledger.foreign.llm.cost.total"] == 0.0105
    assert spans[2].attributes["spanledger.foreign.gen_ai.usage.cost"] == 0.5
    assert semconv.GEN_AI_USAGE_COST not in spans[2].attributes
    unpriced = spans[5].attributes
    assert unpriced[semconv.COST_STATUS] == "unpriced"
    assert unpriced["spanledger.foreign.gen_ai.usage.cost"] == 0.25
    assert semconv.GEN_AI_USAGE_COST not in unpriced
    costs = [
        item.attributes[semconv.GEN_AI_USAGE_COST]
        for item in spans.values()
        if semconv.GEN_AI_USAGE_COST in item.attributes
    ]
    assert costs == [float(SONNET_CACHED)]
    assert spans[1].attributes[semconv.TRACE_COST] == float(SONNET_CACHED)


def test_a_trace_of_foreign_costs_only_loses_them_from_its_sum(make_pipeline, clock, exporter):
    pipeline = make_pipeline()
    pipeline.consume(
        request((APP, [span(15, 1, None, "workflow", {"gen_ai.usage.cost": 1.25}, start=0.0)]))
    )
    flush(pipeline, clock)

    attributes = exporter.by_span()[1].attributes
    assert semconv.GEN_AI_USAGE_COST not in attributes
    assert attributes["spanledger.foreign.gen_ai.usage.cost"] == 1.25


def _litellm_span(trace: int, cost: object, model: str, provider: str, **extra: object):
    return span(
        trace,
        2,
        1,
        "litellm_request",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.system": provider,
            "gen_ai.request.model": model,
            "gen_ai.usage.input_tokens": 12000,
            "gen_ai.usage.output_tokens": 800,
            "gen_ai.cost.total_cost": cost,
            **{key.replace("__", "."): value for key, value in extra.items()},
        },
        start=1.0,
    )


@pytest.mark.parametrize(
    "case",
    [
        # No cache breakdown on the span: LiteLLM saw the cached tokens, the table cannot.
        (0.00168, "gpt-4o-mini", "openai", {}, "peer_reported", Decimal("0.00168")),
        # With a cache breakdown the table prices the tokens exactly.
        (
            0.00111,
            "gpt-4o-mini",
            "openai",
            {"gen_ai__usage__cache_read__input_tokens": 8000},
            "price_table",
            Decimal("0.00168"),
        ),
        # $0 for a call that used tokens: LiteLLM had no price; the table has one.
        (0.0, SONNET, "anthropic", {}, "price_table", Decimal("0.048")),
        # A model the table lacks: LiteLLM's figure is the only price.
        (0.042, "mystery-model-9", "openai", {}, "peer_reported", Decimal("0.042")),
    ],
)
def test_litellm_cost_wins_only_where_the_table_cannot_price_the_tokens(
    make_pipeline, clock, exporter, sink, case
):
    cost, model, provider, extra, source, total = case
    pipeline = make_pipeline()
    pipeline.consume(
        request(
            (APP, [span(16, 1, None, "POST /ask", start=0.0)]),
            (GATEWAY, [_litellm_span(16, cost, model, provider, **extra)]),
        )
    )
    flush(pipeline, clock)

    attributes = exporter.by_span()[2].attributes
    assert attributes[semconv.COST_SOURCE] == source
    assert Decimal(repr(attributes[semconv.GEN_AI_USAGE_COST])) == total
    assert sink.calls[0].cost.total == total
