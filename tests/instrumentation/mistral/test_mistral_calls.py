"""Every mistralai call shape, through the real SDK against the stand-in: one CLIENT span per
call, with the request's facts and the usage Mistral reported."""

from __future__ import annotations

import asyncio
import gc

import pytest
from mistral_support import Mistral, cached
from opentelemetry.trace import SpanKind, StatusCode
from provider_support import assert_content_captured, assert_content_left_out, inference_spans

from spanledger import semconv
from spanledger.errors import BudgetExceededError
from spanledger.instrumentation.mistral import MistralInstrumentor
from spanledger.standin import DEFAULT_TEXT, Scenario, estimate_tokens, prompt_tokens

MODEL = "mistral-small-latest"
MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]
PROMPT_TOKENS = prompt_tokens({"messages": MESSAGES})
REPLY_TOKENS = estimate_tokens(DEFAULT_TEXT)
CACHED = {"prompt_tokens": 1_200, "prompt_tokens_details": {"cached_tokens": 1_000}}


def own_span_hook():
    """The function that starts mistralai's own span (2.x and later), or None."""
    try:
        from mistralai.client._hooks import tracing
    except ImportError:
        return None
    return tracing.get_traced_request_and_span


def only_span(span_exporter):
    (span,) = inference_spans(span_exporter)
    return span


def test_a_chat_completion_gets_one_client_span(client, llm, span_exporter):
    llm.push(Scenario(usage=CACHED))
    reply = client.chat.complete(model=MODEL, messages=MESSAGES, max_tokens=64, temperature=0.2)

    assert reply.usage.prompt_tokens == 1_200
    span = only_span(span_exporter)
    assert span.name == f"chat {MODEL}"
    assert span.kind is SpanKind.CLIENT
    attributes = dict(span.attributes)
    assert attributes.pop(semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, None) == cached(1_000)
    assert attributes == {
        semconv.GEN_AI_OPERATION_NAME: "chat",
        semconv.GEN_AI_PROVIDER_NAME: "mistral_ai",
        semconv.GEN_AI_REQUEST_MODEL: MODEL,
        semconv.GEN_AI_REQUEST_STREAM: False,
        "gen_ai.request.max_tokens": 64,
        "gen_ai.request.temperature": 0.2,
        "server.address": "127.0.0.1",
        "server.port": llm.port,
        semconv.GEN_AI_USAGE_INPUT_TOKENS: 1_200,
        semconv.GEN_AI_USAGE_OUTPUT_TOKENS: REPLY_TOKENS,
        semconv.GEN_AI_RESPONSE_MODEL: MODEL,
        semconv.GEN_AI_RESPONSE_ID: reply.id,
        semconv.GEN_AI_RESPONSE_FINISH_REASONS: ("stop",),
    }


def test_a_chat_stream_reads_usage_from_its_last_chunk(client, llm, span_exporter):
    stream = client.chat.stream(model=MODEL, messages=MESSAGES)
    texts = [event.data.choices[0].delta.content for event in stream]

    assert "".join(texts) == DEFAULT_TEXT
    span = only_span(span_exporter)
    attributes = span.attributes
    assert attributes[semconv.GEN_AI_REQUEST_STREAM] is True
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS
    assert attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == REPLY_TOKENS
    assert attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert attributes[semconv.STREAM_COMPLETED] is True


def test_async_chat_streamed_and_not(client, llm, span_exporter):
    async def main() -> list[str]:
        await client.chat.complete_async(model=MODEL, messages=MESSAGES)
        stream = await client.chat.stream_async(model=MODEL, messages=MESSAGES)
        return [event.data.choices[0].delta.content async for event in stream]

    assert "".join(asyncio.run(main())) == DEFAULT_TEXT
    whole, streamed = inference_spans(span_exporter)
    for span in (whole, streamed):
        assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS
        assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == REPLY_TOKENS
    assert whole.attributes[semconv.GEN_AI_REQUEST_STREAM] is False
    assert streamed.attributes[semconv.STREAM_COMPLETED] is True


def test_fill_in_the_middle_is_a_text_completion(client, llm, span_exporter):
    code = {"prompt": "def add(a, b):\n    ", "suffix": "\n\nprint(add(1, 2))"}
    client.fim.complete(model="codestral-latest", **code)
    list(client.fim.stream(model="codestral-latest", **code))
    asyncio.run(client.fim.complete_async(model="codestral-latest", **code))

    spans = inference_spans(span_exporter)
    assert [span.name for span in spans] == ["text_completion codestral-latest"] * 3
    expected = estimate_tokens(code["prompt"] + code["suffix"])
    for span in spans:
        assert span.attributes[semconv.GEN_AI_OPERATION_NAME] == "text_completion"
        assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == expected
        assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == REPLY_TOKENS
    assert [span.attributes[semconv.GEN_AI_REQUEST_STREAM] for span in spans] == [
        False,
        True,
        False,
    ]


def test_embeddings_sync_and_async(client, llm, span_exporter):
    inputs = ["first text to embed", "second"]
    client.embeddings.create(model="mistral-embed", inputs=inputs)
    asyncio.run(client.embeddings.create_async(model="mistral-embed", inputs=inputs))

    spans = inference_spans(span_exporter)
    assert [span.name for span in spans] == ["embeddings mistral-embed"] * 2
    for span in spans:
        assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == sum(
            map(estimate_tokens, inputs)
        )
        assert semconv.GEN_AI_USAGE_OUTPUT_TOKENS not in span.attributes


def test_a_stream_left_early_keeps_what_it_saw(client, llm, span_exporter):
    stream = client.chat.stream(model=MODEL, messages=MESSAGES)
    next(stream)
    stream.close()
    abandoned = client.chat.stream(model=MODEL, messages=MESSAGES)
    next(abandoned)
    del abandoned
    gc.collect()

    closed, collected = inference_spans(span_exporter)
    for span in (closed, collected):
        assert span.attributes[semconv.STREAM_COMPLETED] is False
        assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in span.attributes


def test_an_error_ends_the_span_and_reaches_the_caller(client, llm, span_exporter):
    llm.push(Scenario(error=429))
    with pytest.raises(Exception) as raised:
        client.chat.complete(model=MODEL, messages=MESSAGES)

    assert "429" in str(raised.value)
    span = only_span(span_exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == type(raised.value).__qualname__


def test_an_error_inside_a_stream_ends_the_span_as_failed(client, llm, span_exporter):
    llm.push(Scenario(stream_error_after=2))
    with pytest.raises(Exception):  # noqa: B017  the SDK's own parse error
        list(client.chat.stream(model=MODEL, messages=MESSAGES))

    span = only_span(span_exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.STREAM_COMPLETED] is False


def test_content_is_left_out_unless_asked(client, llm, span_exporter, monkeypatch):
    client.chat.complete(model=MODEL, messages=MESSAGES)
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    client.chat.complete(model=MODEL, messages=MESSAGES)
    list(client.chat.stream(model=MODEL, messages=MESSAGES))

    plain, captured, streamed = inference_spans(span_exporter)
    assert_content_left_out(plain)
    for span in (captured, streamed):
        assert_content_captured(span, MESSAGES[0]["content"], DEFAULT_TEXT, "stop")


def test_the_budget_check_stops_the_call_before_it_is_sent(
    client, llm, span_exporter, refusing_budget
):
    with pytest.raises(BudgetExceededError):
        client.chat.complete(model=MODEL, messages=MESSAGES)
    with pytest.raises(BudgetExceededError):
        asyncio.run(client.chat.stream_async(model=MODEL, messages=MESSAGES))

    assert llm.requests == []
    assert [s.attributes["error.type"] for s in inference_spans(span_exporter)] == [
        "BudgetExceededError"
    ] * 2


def test_uninstrument_leaves_the_sdk_untraced(llm, tracer_provider, span_exporter):
    instrumentor = MistralInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider)
    instrumentor.uninstrument()

    client = Mistral(api_key="test-key", server_url=llm.mistral_base_url)
    client.chat.complete(model=MODEL, messages=MESSAGES)
    list(client.chat.stream(model=MODEL, messages=MESSAGES))
    client.embeddings.create(model="mistral-embed", inputs=["x"])

    assert len(llm.requests) == 3
    assert span_exporter.get_finished_spans() == ()
    assert not hasattr(type(client.chat).complete, "__wrapped__")
    hook = own_span_hook()
    assert hook is None or not hasattr(hook, "__wrapped__")
