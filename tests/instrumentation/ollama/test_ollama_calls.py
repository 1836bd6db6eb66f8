"""Every ollama call shape, through the real SDK against the stand-in: one CLIENT span per call,
with the request's facts and the counts Ollama reported."""

from __future__ import annotations

import asyncio

import ollama
import pytest
from opentelemetry.trace import SpanKind, StatusCode
from provider_support import assert_content_captured, assert_content_left_out, inference_spans

from spanledger import semconv
from spanledger.errors import BudgetExceededError
from spanledger.instrumentation.ollama import OllamaInstrumentor
from spanledger.standin import DEFAULT_TEXT, Scenario, estimate_tokens, prompt_tokens

MODEL = "llama3.2"
MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]
PROMPT_TOKENS = prompt_tokens({"messages": MESSAGES})
REPLY_TOKENS = estimate_tokens(DEFAULT_TEXT)


def only_span(span_exporter):
    (span,) = inference_spans(span_exporter)
    return span


def test_a_chat_gets_one_client_span_with_ollamas_counts(client, llm, span_exporter):
    client.chat(MODEL, MESSAGES, options={"temperature": 0.2, "num_predict": 128, "seed": 7})

    span = only_span(span_exporter)
    assert span.name == f"chat {MODEL}"
    assert span.kind is SpanKind.CLIENT
    assert dict(span.attributes) == {
        semconv.GEN_AI_OPERATION_NAME: "chat",
        semconv.GEN_AI_PROVIDER_NAME: "ollama",
        semconv.GEN_AI_REQUEST_MODEL: MODEL,
        semconv.GEN_AI_REQUEST_STREAM: False,
        "gen_ai.request.max_tokens": 128,
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.seed": 7,
        "server.address": "127.0.0.1",
        "server.port": llm.port,
        semconv.GEN_AI_USAGE_INPUT_TOKENS: PROMPT_TOKENS,
        semconv.GEN_AI_USAGE_OUTPUT_TOKENS: REPLY_TOKENS,
        semconv.GEN_AI_RESPONSE_MODEL: MODEL,
        semconv.GEN_AI_RESPONSE_FINISH_REASONS: ("stop",),
    }


def test_a_chat_stream_reads_the_counts_of_its_last_line(client, llm, span_exporter):
    llm.push(Scenario(usage={"prompt_eval_count": 1_200, "eval_count": 300}))
    parts = list(client.chat(model=MODEL, messages=MESSAGES, stream=True))

    assert "".join(part.message.content for part in parts) == DEFAULT_TEXT
    span = only_span(span_exporter)
    assert span.attributes[semconv.GEN_AI_REQUEST_STREAM] is True
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 1_200
    assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 300
    assert span.attributes[semconv.STREAM_COMPLETED] is True


def test_generate_is_a_text_completion_streamed_or_not(client, llm, span_exporter):
    client.generate(MODEL, "Why is the sky blue?", system="Be brief.")
    list(client.generate(model=MODEL, prompt="Why is the sky blue?", stream=True))

    whole, streamed = inference_spans(span_exporter)
    assert [whole.name, streamed.name] == [f"text_completion {MODEL}"] * 2
    assert whole.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == estimate_tokens(
        "Be brief.Why is the sky blue?"
    )
    assert streamed.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == estimate_tokens(
        "Why is the sky blue?"
    )
    for span in (whole, streamed):
        assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == REPLY_TOKENS


def test_async_calls_streamed_and_not(async_client, llm, span_exporter):
    async def main() -> str:
        await async_client.chat(model=MODEL, messages=MESSAGES)
        await async_client.generate(model=MODEL, prompt="Hi")
        stream = await async_client.chat(model=MODEL, messages=MESSAGES, stream=True)
        text = "".join([part.message.content async for part in stream])
        await async_client.embed(model="all-minilm", input="hello")
        return text

    assert asyncio.run(main()) == DEFAULT_TEXT
    chat, generate, streamed, embed = inference_spans(span_exporter)
    assert [span.attributes[semconv.GEN_AI_OPERATION_NAME] for span in (chat, generate, embed)] == [
        "chat",
        "text_completion",
        "embeddings",
    ]
    assert streamed.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS
    assert streamed.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == REPLY_TOKENS
    assert streamed.attributes[semconv.STREAM_COMPLETED] is True


def test_embeddings_record_their_input_tokens(client, llm, span_exporter):
    client.embed(model="all-minilm", input=["first text to embed", "second"])
    client.embeddings(model="all-minilm", prompt="older endpoint")

    embed, older = inference_spans(span_exporter)
    assert embed.name == "embeddings all-minilm"
    assert embed.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == estimate_tokens(
        "first text to embed"
    ) + estimate_tokens("second")
    # /api/embeddings reports no counts: the span says so by having none.
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in older.attributes


def test_a_fully_cached_prompt_counts_zero_input_tokens(client, llm, span_exporter):
    llm.push(Scenario(usage={"prompt_eval_count": None}))
    client.chat(model=MODEL, messages=MESSAGES)

    span = only_span(span_exporter)
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 0
    assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == REPLY_TOKENS


@pytest.mark.usefixtures("default_client")
def test_the_module_level_functions_are_traced(llm, span_exporter):
    ollama.chat(model=MODEL, messages=MESSAGES)
    list(ollama.generate(model=MODEL, prompt="Hi", stream=True))
    ollama.embed(model="all-minilm", input="hello")

    assert [span.name for span in inference_spans(span_exporter)] == [
        f"chat {MODEL}",
        f"text_completion {MODEL}",
        "embeddings all-minilm",
    ]
    assert len(llm.requests) == 3


def test_a_stream_left_early_keeps_what_it_saw(client, llm, span_exporter):
    stream = client.chat(model=MODEL, messages=MESSAGES, stream=True)
    next(stream)
    stream.close()

    span = only_span(span_exporter)
    assert span.attributes[semconv.STREAM_COMPLETED] is False
    assert semconv.GEN_AI_USAGE_OUTPUT_TOKENS not in span.attributes


def test_errors_end_the_span_and_reach_the_caller(client, llm, span_exporter):
    llm.push(Scenario(error=404), Scenario(stream_error_after=2))
    with pytest.raises(ollama.ResponseError):
        client.chat(model=MODEL, messages=MESSAGES)
    with pytest.raises(ollama.ResponseError):
        list(client.chat(model=MODEL, messages=MESSAGES, stream=True))

    refused, broken = inference_spans(span_exporter)
    for span in (refused, broken):
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes["error.type"] == "ResponseError"
    assert broken.attributes[semconv.STREAM_COMPLETED] is False


def test_content_is_left_out_unless_asked(client, llm, span_exporter, monkeypatch):
    client.chat(model=MODEL, messages=MESSAGES)
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    client.chat(model=MODEL, messages=MESSAGES)
    list(client.chat(model=MODEL, messages=MESSAGES, stream=True))

    plain, captured, streamed = inference_spans(span_exporter)
    assert_content_left_out(plain)
    for span in (captured, streamed):
        assert_content_captured(span, MESSAGES[0]["content"], DEFAULT_TEXT, "stop")


@pytest.mark.usefixtures("refusing_budget")
def test_the_budget_check_stops_the_call_before_it_is_sent(
    client, async_client, llm, span_exporter
):
    with pytest.raises(BudgetExceededError):
        client.chat(model=MODEL, messages=MESSAGES)
    with pytest.raises(BudgetExceededError):
        client.generate(model=MODEL, prompt="Hi", stream=True)
    with pytest.raises(BudgetExceededError):
        asyncio.run(async_client.chat(model=MODEL, messages=MESSAGES, stream=True))

    assert llm.requests == []
    assert [s.attributes["error.type"] for s in inference_spans(span_exporter)] == [
        "BudgetExceededError"
    ] * 3


def test_uninstrument_leaves_the_sdk_untraced(llm, tracer_provider, span_exporter):
    instrumentor = OllamaInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider)
    instrumentor.uninstrument()

    client = ollama.Client(host=llm.url)
    client.chat(model=MODEL, messages=MESSAGES)
    list(client.generate(model=MODEL, prompt="Hi", stream=True))

    assert len(llm.requests) == 2
    assert span_exporter.get_finished_spans() == ()
    assert not hasattr(ollama.Client.chat, "__wrapped__")
    assert not hasattr(ollama.chat, "__wrapped__")
