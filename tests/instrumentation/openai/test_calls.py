"""Non-streamed calls: exact usage figures and the GenAI attributes, for every API shape."""

from __future__ import annotations

import asyncio

import openai
import pydantic
import pytest
from openai.types.chat import ChatCompletion
from openai_support import MESSAGES, async_client, only_span, scenario
from opentelemetry.trace import SpanKind, StatusCode

from spanledger import semconv
from spanledger.instrumentation.openai.usage import usage_from_result
from spanledger.standin import DEFAULT_TEXT, StandIn, estimate_tokens

PROMPT_TOKENS = 8
REPLY_TOKENS = estimate_tokens(DEFAULT_TEXT)


def test_chat_completion_span_carries_request_and_usage(client, llm, span_exporter):
    reply = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        extra_headers=scenario(
            model="gpt-4o-mini-2024-07-18",
            usage={
                "prompt_tokens": 1200,
                "completion_tokens": 300,
                "prompt_tokens_details": {"cached_tokens": 1000},
                "completion_tokens_details": {"reasoning_tokens": 120},
            },
        ),
    )

    span = only_span(span_exporter)
    assert span.name == "chat gpt-4o-mini"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert dict(span.attributes) == {
        semconv.GEN_AI_OPERATION_NAME: "chat",
        semconv.GEN_AI_PROVIDER_NAME: "openai",
        semconv.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
        semconv.GEN_AI_REQUEST_STREAM: False,
        "server.address": "127.0.0.1",
        "server.port": llm.port,
        semconv.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini-2024-07-18",
        semconv.GEN_AI_RESPONSE_ID: reply.id,
        semconv.GEN_AI_RESPONSE_FINISH_REASONS: ("stop",),
        semconv.GEN_AI_USAGE_INPUT_TOKENS: 1200,
        semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 300,
        semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 1000,
        semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: 120,
    }
    assert isinstance(reply, ChatCompletion)
    assert reply.usage.prompt_tokens == 1200


def test_default_figures_count_reasoning_in_output(client, span_exporter):
    client.chat.completions.create(
        model="o4-mini", messages=MESSAGES, extra_headers=scenario(reasoning=7)
    )

    attributes = only_span(span_exporter).attributes
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS
    assert attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == REPLY_TOKENS + 7
    assert attributes[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 7
    assert attributes[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 0


def test_openrouter_usage_cost_is_reported_cost(client, span_exporter):
    client.chat.completions.create(
        model="openai/gpt-4o", messages=MESSAGES, extra_headers=scenario(cost=0.00123)
    )

    assert only_span(span_exporter).attributes[semconv.COST_REPORTED] == 0.00123


def test_litellm_cost_header_is_reported_cost(client, span_exporter):
    client.chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        extra_headers=scenario(response_headers={"x-litellm-response-cost": "0.0042"}),
    )

    assert only_span(span_exporter).attributes[semconv.COST_REPORTED] == 0.0042


class Capital(pydantic.BaseModel):
    city: str


def test_parse_with_structured_output(client, span_exporter):
    parsed = client.chat.completions.parse(
        model="gpt-4o-mini", messages=MESSAGES, response_format=Capital
    )

    assert isinstance(parsed.choices[0].message.parsed, Capital)
    attributes = only_span(span_exporter).attributes
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == parsed.usage.prompt_tokens
    assert attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == parsed.usage.completion_tokens
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS


def test_responses_api(client, span_exporter):
    response = client.responses.create(
        model="gpt-4.1",
        input="Say hi",
        instructions="Be brief.",
        extra_headers=scenario(
            usage={
                "input_tokens": 2048,
                "output_tokens": 512,
                "input_tokens_details": {"cached_tokens": 1024},
                "output_tokens_details": {"reasoning_tokens": 256},
            }
        ),
    )

    span = only_span(span_exporter)
    assert span.name == "chat gpt-4.1"
    attributes = span.attributes
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 2048
    assert attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 512
    assert attributes[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 1024
    assert attributes[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 256
    assert attributes[semconv.GEN_AI_RESPONSE_ID] == response.id
    assert attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("completed",)


def test_responses_default_figures(client, span_exporter):
    client.responses.create(model="gpt-4.1", input="Say hi", instructions="Be brief.")

    attributes = only_span(span_exporter).attributes
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == estimate_tokens("Be brief.Say hi")
    assert attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == REPLY_TOKENS


def test_embeddings(client, span_exporter):
    client.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta gamma"])

    span = only_span(span_exporter)
    assert span.name == "embeddings text-embedding-3-small"
    attributes = span.attributes
    assert attributes[semconv.GEN_AI_OPERATION_NAME] == "embeddings"
    expected = estimate_tokens("alpha") + estimate_tokens("beta gamma")
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == expected
    assert semconv.GEN_AI_USAGE_OUTPUT_TOKENS not in attributes


def test_with_raw_response_records_before_parse(client, span_exporter):
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        extra_headers=scenario(usage={"prompt_tokens": 40, "completion_tokens": 2}),
    )

    attributes = only_span(span_exporter).attributes
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 40
    assert attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 2
    assert raw.parse().usage.prompt_tokens == 40
    assert len(span_exporter.get_finished_spans()) == 1


def test_with_streaming_response_records_on_parse(client, span_exporter):
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        extra_headers=scenario(usage={"prompt_tokens": 41, "completion_tokens": 3}),
    ) as response:
        assert span_exporter.get_finished_spans() == ()
        completion = response.parse()

    assert completion.usage.completion_tokens == 3
    attributes = only_span(span_exporter).attributes
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 41
    assert attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 3


def test_async_create(llm: StandIn, instrumentor, span_exporter):
    async def call() -> ChatCompletion:
        async with async_client(llm) as sdk:
            return await sdk.chat.completions.create(
                model="gpt-4o-mini",
                messages=MESSAGES,
                extra_headers=scenario(usage={"prompt_tokens": 77, "completion_tokens": 11}),
            )

    reply = asyncio.run(call())

    assert isinstance(reply, ChatCompletion)
    attributes = only_span(span_exporter).attributes
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 77
    assert attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 11


def test_async_with_raw_response(llm: StandIn, instrumentor, span_exporter):
    async def call() -> int:
        async with async_client(llm) as sdk:
            raw = await sdk.embeddings.with_raw_response.create(
                model="text-embedding-3-small", input="one two three four"
            )
            return raw.parse().usage.prompt_tokens

    prompt = asyncio.run(call())

    assert prompt == estimate_tokens("one two three four")
    attributes = only_span(span_exporter).attributes
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == prompt


def test_other_endpoints_get_no_span(client, span_exporter):
    with pytest.raises(openai.NotFoundError):
        client.moderations.create(input="anything")

    assert span_exporter.get_finished_spans() == ()


def test_usage_from_decoded_json_of_compatible_providers():
    deepseek = usage_from_result(
        {
            "id": "ds-1",
            "model": "deepseek-chat",
            "choices": [{"finish_reason": "length"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 7, "prompt_cache_hit_tokens": 64},
        }
    )
    openrouter = usage_from_result(
        {"model": "x", "choices": [], "usage": {"prompt_tokens": 5, "cost": "0.25"}}
    )

    assert deepseek.attributes() == {
        semconv.GEN_AI_USAGE_INPUT_TOKENS: 100,
        semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 7,
        semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 64,
        semconv.GEN_AI_RESPONSE_MODEL: "deepseek-chat",
        semconv.GEN_AI_RESPONSE_ID: "ds-1",
        semconv.GEN_AI_RESPONSE_FINISH_REASONS: ["length"],
    }
    assert openrouter.reported_cost == 0.25
    assert openrouter.input_tokens == 5
