"""Every cohere v2 call shape, through the real SDK against the stand-in: one CLIENT span per
call, with the request's facts and the units Cohere billed."""

from __future__ import annotations

import asyncio
import json

import cohere
import pytest
from opentelemetry.trace import SpanKind, StatusCode
from provider_support import assert_content_captured, assert_content_left_out, inference_spans

from spanledger import semconv
from spanledger.errors import BudgetExceededError
from spanledger.instrumentation.cohere import CohereInstrumentor
from spanledger.standin import DEFAULT_TEXT, Scenario, estimate_tokens, prompt_tokens
from spanledger.standin.cohere_wire import PROMPT_TEMPLATE_TOKENS

MODEL = "command-a-03-2025"
MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]
PROMPT_TOKENS = prompt_tokens({"messages": MESSAGES})
REPLY_TOKENS = estimate_tokens(DEFAULT_TEXT)
NO_RETRIES = {"max_retries": 0}


def only_span(span_exporter):
    (span,) = inference_spans(span_exporter)
    return span


def test_a_chat_gets_one_client_span_with_the_billed_units(client, llm, span_exporter):
    reply = client.chat(model=MODEL, messages=MESSAGES, max_tokens=64, temperature=0.3, p=0.9)

    span = only_span(span_exporter)
    assert span.name == f"chat {MODEL}"
    assert span.kind is SpanKind.CLIENT
    assert dict(span.attributes) == {
        semconv.GEN_AI_OPERATION_NAME: "chat",
        semconv.GEN_AI_PROVIDER_NAME: "cohere",
        semconv.GEN_AI_REQUEST_MODEL: MODEL,
        semconv.GEN_AI_REQUEST_STREAM: False,
        "gen_ai.request.max_tokens": 64,
        "gen_ai.request.temperature": 0.3,
        "gen_ai.request.top_p": 0.9,
        "server.address": "127.0.0.1",
        "server.port": llm.port,
        semconv.GEN_AI_USAGE_INPUT_TOKENS: PROMPT_TOKENS,
        semconv.GEN_AI_USAGE_OUTPUT_TOKENS: REPLY_TOKENS,
        "cohere.usage.tokens.input_tokens": PROMPT_TOKENS + PROMPT_TEMPLATE_TOKENS,
        "cohere.usage.tokens.output_tokens": REPLY_TOKENS,
        semconv.GEN_AI_RESPONSE_ID: reply.id,
        semconv.GEN_AI_RESPONSE_FINISH_REASONS: ("complete",),
    }


def test_a_chat_stream_reads_usage_from_message_end(client, llm, span_exporter):
    llm.push(Scenario(usage={"billed_units": {"input_tokens": 1_200}, "cached_tokens": 1_000}))
    events = list(client.chat_stream(model=MODEL, messages=MESSAGES))

    assert events[-1].type == "message-end"
    span = only_span(span_exporter)
    attributes = span.attributes
    assert attributes[semconv.GEN_AI_REQUEST_STREAM] is True
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 1_200
    assert attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == REPLY_TOKENS
    assert attributes["cohere.usage.cached_tokens"] == 1_000
    assert semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS not in attributes
    assert attributes[semconv.GEN_AI_RESPONSE_ID] == events[0].id
    assert attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("complete",)
    assert attributes[semconv.STREAM_COMPLETED] is True


def test_async_chat_streamed_and_not(async_client, llm, span_exporter):
    async def main() -> int:
        await async_client.chat(model=MODEL, messages=MESSAGES)
        events = [event async for event in async_client.chat_stream(model=MODEL, messages=MESSAGES)]
        return len(events)

    assert asyncio.run(main()) > 3
    whole, streamed = inference_spans(span_exporter)
    for span in (whole, streamed):
        assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS
        assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == REPLY_TOKENS
    assert streamed.attributes[semconv.STREAM_COMPLETED] is True


def test_a_tool_call_finishes_with_tool_call(client, llm, span_exporter):
    llm.push(Scenario(tool_calls=[{"name": "lookup", "arguments": {"city": "Paris"}}]))
    events = list(client.chat_stream(model=MODEL, messages=MESSAGES))

    assert "tool-call-start" in [event.type for event in events]
    span = only_span(span_exporter)
    assert span.attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_call",)
    assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == estimate_tokens(
        "lookup" + json.dumps({"city": "Paris"})
    )


def test_embed_and_rerank_record_their_billed_units(client, async_client, llm, span_exporter):
    texts = ["first text to embed", "second"]
    client.embed(
        model="embed-v4.0", input_type="search_document", texts=texts, embedding_types=["float"]
    )

    async def main() -> None:
        await async_client.embed(
            model="embed-v4.0",
            input_type="search_query",
            texts=texts,
            embedding_types=["float", "int8"],
        )
        await async_client.rerank(model="rerank-v3.5", query="capital", documents=["x"] * 150)

    asyncio.run(main())
    client.rerank(model="rerank-v3.5", query="capital", documents=["Paris", "Rome", "Lima"])

    embed, async_embed, async_rerank, rerank = inference_spans(span_exporter)
    for span in (embed, async_embed):
        assert span.name == "embeddings embed-v4.0"
        assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == sum(
            map(estimate_tokens, texts)
        )
    assert async_embed.attributes["gen_ai.request.encoding_formats"] == ("float", "int8")
    for span, units in ((rerank, 1), (async_rerank, 2)):
        assert span.name == "rerank rerank-v3.5"
        assert span.attributes[semconv.GEN_AI_OPERATION_NAME] == "rerank"
        assert span.attributes[semconv.USAGE_SEARCH_UNITS] == units
        assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in span.attributes


def test_a_stream_left_early_keeps_what_it_saw(client, llm, span_exporter):
    stream = client.chat_stream(model=MODEL, messages=MESSAGES)
    next(stream)
    stream.close()

    span = only_span(span_exporter)
    assert span.attributes[semconv.STREAM_COMPLETED] is False
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in span.attributes
    assert span.attributes[semconv.GEN_AI_RESPONSE_ID]


def test_an_error_ends_the_span_and_reaches_the_caller(client, llm, span_exporter):
    llm.push(Scenario(error=429))
    with pytest.raises(cohere.TooManyRequestsError):
        client.chat(model=MODEL, messages=MESSAGES, request_options=NO_RETRIES)

    span = only_span(span_exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "TooManyRequestsError"


def test_a_stream_that_fails_on_its_first_read_fails_its_span(async_client, llm, span_exporter):
    llm.push(Scenario(error=500))

    async def main() -> None:
        async for _ in async_client.chat_stream(
            model=MODEL, messages=MESSAGES, request_options=NO_RETRIES
        ):
            pass

    with pytest.raises(cohere.InternalServerError):
        asyncio.run(main())

    span = only_span(span_exporter)
    assert span.attributes["error.type"] == "InternalServerError"
    assert span.attributes[semconv.STREAM_COMPLETED] is False


def test_content_is_left_out_unless_asked(client, llm, span_exporter, monkeypatch):
    client.chat(model=MODEL, messages=MESSAGES)
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    client.chat(model=MODEL, messages=MESSAGES)
    list(client.chat_stream(model=MODEL, messages=MESSAGES))

    plain, captured, streamed = inference_spans(span_exporter)
    assert_content_left_out(plain)
    for span in (captured, streamed):
        assert_content_captured(span, MESSAGES[0]["content"], DEFAULT_TEXT, "complete")


@pytest.mark.usefixtures("refusing_budget")
def test_the_budget_check_stops_the_call_before_it_is_sent(
    client, async_client, llm, span_exporter
):
    with pytest.raises(BudgetExceededError):
        client.chat(model=MODEL, messages=MESSAGES)
    with pytest.raises(BudgetExceededError):
        list(client.chat_stream(model=MODEL, messages=MESSAGES))

    async def stream() -> None:
        async for _ in async_client.chat_stream(model=MODEL, messages=MESSAGES):
            pass

    with pytest.raises(BudgetExceededError):
        asyncio.run(stream())

    assert llm.requests == []
    assert [s.attributes["error.type"] for s in inference_spans(span_exporter)] == [
        "BudgetExceededError"
    ] * 3


def test_uninstrument_leaves_the_sdk_untraced(llm, tracer_provider, span_exporter):
    instrumentor = CohereInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider)
    instrumentor.uninstrument()

    client = cohere.ClientV2(api_key="test-key", base_url=llm.url)
    client.chat(model=MODEL, messages=MESSAGES)
    list(client.chat_stream(model=MODEL, messages=MESSAGES))
    client.rerank(model="rerank-v3.5", query="q", documents=["d"])

    assert len(llm.requests) == 3
    assert span_exporter.get_finished_spans() == ()
    assert not hasattr(cohere.v2.client.V2Client.chat, "__wrapped__")
