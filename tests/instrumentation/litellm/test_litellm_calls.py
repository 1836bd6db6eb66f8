"""LiteLLM as a library, through the real ``litellm`` against the stand-in: one CLIENT span per
call naming the provider LiteLLM sent it to, with LiteLLM's usage and its own cost; the
``openai`` SDK's span, when LiteLLM goes through it, inside ours."""

from __future__ import annotations

import asyncio

import litellm
import pytest
import wrapt
from litellm_support import MESSAGES, anthropic_route, ollama_route, openai_route
from opentelemetry.trace import SpanKind, StatusCode
from provider_support import assert_content_captured, assert_content_left_out, inference_spans

from spanledger import semconv
from spanledger.errors import BudgetExceededError
from spanledger.instrumentation.litellm import LiteLLMInstrumentor
from spanledger.standin import DEFAULT_TEXT, Scenario, estimate_tokens, prompt_tokens

PROMPT_TOKENS = prompt_tokens({"messages": MESSAGES})
REPLY_TOKENS = estimate_tokens(DEFAULT_TEXT)
SCOPE = "spanledger.instrumentation.litellm"


def ours(span_exporter):
    return [
        span for span in inference_spans(span_exporter) if span.instrumentation_scope.name == SCOPE
    ]


def sdk_spans(span_exporter):
    return [
        span for span in inference_spans(span_exporter) if span.instrumentation_scope.name != SCOPE
    ]


@pytest.mark.usefixtures("instrumentor")
def test_an_openai_call_goes_through_the_openai_sdk_whose_span_is_inside_ours(llm, span_exporter):
    reply = litellm.completion(messages=MESSAGES, temperature=0.1, **openai_route(llm))

    (span,) = ours(span_exporter)
    (inner,) = sdk_spans(span_exporter)
    assert inner.parent.span_id == span.context.span_id
    assert span.name == "chat gpt-4o-mini"
    assert span.kind is SpanKind.CLIENT
    attributes = dict(span.attributes)
    assert attributes.pop(semconv.COST_REPORTED) == reply._hidden_params["response_cost"] > 0
    assert attributes == {
        semconv.GEN_AI_OPERATION_NAME: "chat",
        semconv.GEN_AI_PROVIDER_NAME: "openai",
        semconv.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
        semconv.GEN_AI_REQUEST_STREAM: False,
        "gen_ai.request.temperature": 0.1,
        "server.address": "127.0.0.1",
        "server.port": llm.port,
        semconv.GEN_AI_USAGE_INPUT_TOKENS: PROMPT_TOKENS,
        semconv.GEN_AI_USAGE_OUTPUT_TOKENS: REPLY_TOKENS,
        semconv.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini",
        semconv.GEN_AI_RESPONSE_ID: reply.id,
        semconv.GEN_AI_RESPONSE_FINISH_REASONS: ("stop",),
    }
    assert inner.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS


@pytest.mark.usefixtures("instrumentor")
def test_anthropic_and_ollama_are_named_and_their_cache_counts_read(llm, span_exporter):
    cache = {
        "input_tokens": 10,
        "cache_read_input_tokens": 2_000,
        "cache_creation_input_tokens": 500,
    }
    llm.push(Scenario(usage=cache))
    litellm.completion(messages=MESSAGES, **anthropic_route(llm, "claude-sonnet-4-5"))
    litellm.completion(messages=MESSAGES, **ollama_route(llm))

    anthropic, ollama = ours(span_exporter)
    assert sdk_spans(span_exporter) == []
    assert anthropic.attributes[semconv.GEN_AI_PROVIDER_NAME] == "anthropic"
    assert anthropic.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 2_510
    assert anthropic.attributes[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 2_000
    assert anthropic.attributes[semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] == 500
    assert anthropic.attributes[semconv.COST_REPORTED] > 0
    assert ollama.name == "chat llama3.2"
    assert ollama.attributes[semconv.GEN_AI_PROVIDER_NAME] == "ollama"
    assert ollama.attributes[semconv.GEN_AI_RESPONSE_MODEL] == "llama3.2"
    # LiteLLM prices a self-hosted model at $0, which is no price: it is left out.
    assert semconv.COST_REPORTED not in ollama.attributes


@pytest.mark.usefixtures("instrumentor")
def test_a_stream_is_asked_for_its_usage_which_the_caller_does_not_see(llm, span_exporter):
    chunks = list(litellm.completion(messages=MESSAGES, stream=True, **anthropic_route(llm)))
    asked = list(
        litellm.completion(
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
            **anthropic_route(llm),
        )
    )

    assert all(getattr(chunk, "usage", None) is None for chunk in chunks)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks) == DEFAULT_TEXT
    assert len(asked) == len(chunks) + 1
    assert asked[-1].usage.prompt_tokens == PROMPT_TOKENS
    cost = asked[-1]._hidden_params.get("response_cost")
    assert [request.json.get("stream") for request in llm.requests] == [True, True]
    for span in ours(span_exporter):
        assert span.attributes[semconv.GEN_AI_REQUEST_STREAM] is True
        assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS
        assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == REPLY_TOKENS
        # LiteLLM 1.110 puts its cost on the usage chunk; 1.108 does not.
        assert span.attributes.get(semconv.COST_REPORTED) == cost
        assert span.attributes[semconv.STREAM_COMPLETED] is True


@pytest.mark.usefixtures("instrumentor")
def test_async_calls_streamed_and_not(llm, span_exporter):
    async def main() -> list:
        await litellm.acompletion(messages=MESSAGES, **openai_route(llm))
        stream = await litellm.acompletion(messages=MESSAGES, stream=True, **openai_route(llm))
        chunks = [chunk async for chunk in stream]
        await litellm.aembedding(
            input=["first", "second"], **openai_route(llm, "text-embedding-3-small")
        )
        return chunks

    chunks = asyncio.run(main())

    assert all(getattr(chunk, "usage", None) is None for chunk in chunks)
    whole, streamed, embedded = ours(span_exporter)
    assert len(sdk_spans(span_exporter)) == 3
    for span in (whole, streamed):
        assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS
        assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == REPLY_TOKENS
    assert streamed.attributes[semconv.STREAM_COMPLETED] is True
    assert embedded.name == "embeddings text-embedding-3-small"
    assert embedded.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == sum(
        map(estimate_tokens, ["first", "second"])
    )


@pytest.mark.usefixtures("instrumentor")
def test_a_stream_closed_early_ends_its_span(llm, span_exporter):
    stream = litellm.completion(messages=MESSAGES, stream=True, **openai_route(llm))
    next(stream)
    stream.close()

    async def main() -> None:
        stream = await litellm.acompletion(messages=MESSAGES, stream=True, **anthropic_route(llm))
        await anext(aiter(stream))
        await stream.aclose()

    asyncio.run(main())

    for span in ours(span_exporter):
        assert span.attributes[semconv.STREAM_COMPLETED] is False
    assert len(ours(span_exporter)) == 2
    (inner,) = sdk_spans(span_exporter)
    assert inner.attributes[semconv.STREAM_COMPLETED] is False


@pytest.mark.usefixtures("instrumentor")
def test_a_router_call_is_one_span_per_deployment_call(llm, span_exporter):
    router = litellm.Router(
        model_list=[{"model_name": "fast", "litellm_params": anthropic_route(llm)}],
    )
    router.completion(model="fast", messages=MESSAGES)
    asyncio.run(router.acompletion(model="fast", messages=MESSAGES))

    spans = ours(span_exporter)
    assert [span.name for span in spans] == ["chat claude-haiku-4-5"] * 2
    assert {span.attributes[semconv.GEN_AI_PROVIDER_NAME] for span in spans} == {"anthropic"}


@pytest.mark.usefixtures("instrumentor")
def test_an_error_ends_the_span_and_reaches_the_caller(llm, span_exporter):
    llm.push(Scenario(error=429))
    with pytest.raises(litellm.RateLimitError):
        litellm.completion(messages=MESSAGES, num_retries=0, **anthropic_route(llm))

    (span,) = ours(span_exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "RateLimitError"


@pytest.mark.usefixtures("instrumentor")
def test_content_is_left_out_unless_asked(llm, span_exporter, monkeypatch):
    litellm.completion(messages=MESSAGES, **ollama_route(llm))
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    litellm.completion(messages=MESSAGES, **ollama_route(llm))
    list(litellm.completion(messages=MESSAGES, stream=True, **ollama_route(llm)))

    plain, captured, streamed = ours(span_exporter)
    assert_content_left_out(plain)
    for span in (captured, streamed):
        assert_content_captured(span, MESSAGES[0]["content"], DEFAULT_TEXT, "stop")


@pytest.mark.usefixtures("instrumentor", "refusing_budget")
def test_the_budget_check_stops_the_call_before_it_is_sent(llm, span_exporter):
    with pytest.raises(BudgetExceededError):
        litellm.completion(messages=MESSAGES, **anthropic_route(llm))
    with pytest.raises(BudgetExceededError):
        asyncio.run(litellm.acompletion(messages=MESSAGES, stream=True, **ollama_route(llm)))

    assert llm.requests == []
    assert [s.attributes["error.type"] for s in ours(span_exporter)] == ["BudgetExceededError"] * 2


def test_uninstrument_leaves_litellm_untraced(llm, tracer_provider, span_exporter):
    instrumentor = LiteLLMInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider)
    instrumentor.uninstrument()

    litellm.completion(messages=MESSAGES, **anthropic_route(llm))
    list(litellm.completion(messages=MESSAGES, stream=True, **ollama_route(llm)))

    assert len(llm.requests) == 2
    assert span_exporter.get_finished_spans() == ()
    assert not isinstance(litellm.completion, wrapt.ObjectProxy)
