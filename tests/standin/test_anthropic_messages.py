"""Anthropic Messages through the real ``anthropic`` client: JSON, SSE, helpers, beta, counting."""

from __future__ import annotations

import asyncio

import anthropic
import pydantic

from spanledger.standin import DEFAULT_TEXT, Scenario, StandIn, estimate_tokens
from spanledger.standin.anthropic_wire import signature

MODEL = "claude-sonnet-4-6"
SYSTEM = [{"type": "text", "text": "You are terse."}]
MESSAGES = [{"role": "user", "content": "Rerank these results."}]
PROMPT_TOKENS = estimate_tokens("You are terse." + "Rerank these results.")


class Ranking(pydantic.BaseModel):
    order: list[int]
    reason: str


def create(client: anthropic.Anthropic, scenario: Scenario | None = None, **kwargs: object):
    headers = scenario.to_header() if scenario else {}
    return client.messages.create(
        model=MODEL,
        max_tokens=256,
        system=SYSTEM,
        messages=MESSAGES,
        extra_headers=headers,
        **kwargs,
    )


def test_json_reply_with_default_figures(claude: anthropic.Anthropic, llm: StandIn) -> None:
    message = create(claude)

    assert message.model == MODEL
    assert message.stop_reason == "end_turn"
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == DEFAULT_TEXT
    usage = message.usage
    assert (usage.input_tokens, usage.output_tokens) == (PROMPT_TOKENS, 9) == (9, 9)
    assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (0, 0)
    request = llm.requests[0]
    assert (request.path, request.query) == ("/v1/messages", {})
    assert "test" in (request.headers.get("x-api-key") or request.headers["authorization"])


def test_cache_usage_and_thinking_block(claude: anthropic.Anthropic) -> None:
    scenario = Scenario(
        reasoning=30,
        usage={
            "input_tokens": 10,
            "cache_read_input_tokens": 2000,
            "cache_creation_input_tokens": 500,
        },
    )
    message = create(claude, scenario)

    thinking, text = message.content
    assert thinking.type == "thinking"
    assert thinking.thinking == "Hmm." * 30
    assert thinking.signature == signature(thinking.thinking)
    assert text.type == "text"
    usage = message.usage
    assert usage.input_tokens == 10
    assert usage.cache_read_input_tokens == 2000
    assert usage.cache_creation_input_tokens == 500
    assert usage.cache_creation is not None
    assert usage.cache_creation.ephemeral_5m_input_tokens == 500
    assert usage.cache_creation.ephemeral_1h_input_tokens == 0
    assert usage.output_tokens == 30 + 9


def test_one_hour_cache_writes_sum_into_cache_creation_tokens(claude: anthropic.Anthropic) -> None:
    scenario = Scenario(
        usage={
            "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 300}
        }
    )
    usage = create(claude, scenario).usage

    assert usage.cache_creation_input_tokens == 400
    assert usage.cache_creation is not None
    assert usage.cache_creation.ephemeral_1h_input_tokens == 300


def test_raw_event_stream_has_cumulative_usage(claude: anthropic.Anthropic) -> None:
    scenario = Scenario(
        reasoning="Consider the order.", chunks=3, usage={"cache_read_input_tokens": 64}
    )
    events = list(create(claude, scenario, stream=True))

    types = [e.type for e in events]
    assert types[0] == "message_start"
    assert types[-2:] == ["message_delta", "message_stop"]
    start = events[0].message.usage
    assert (start.input_tokens, start.cache_read_input_tokens, start.output_tokens) == (
        PROMPT_TOKENS,
        64,
        1,
    )
    deltas = [e.delta for e in events if e.type == "content_block_delta"]
    assert [d.type for d in deltas] == [
        "thinking_delta",
        "thinking_delta",
        "signature_delta",
        "text_delta",
        "text_delta",
        "text_delta",
    ]
    assert "".join(d.text for d in deltas if d.type == "text_delta") == DEFAULT_TEXT
    final = events[-2].usage
    assert final.output_tokens == estimate_tokens("Consider the order.") + 9 == 14
    assert final.input_tokens == PROMPT_TOKENS
    assert final.cache_read_input_tokens == 64


def test_stream_helper_final_message(claude: anthropic.Anthropic) -> None:
    scenario = Scenario(reasoning=2, text="Ranked.", usage={"output_tokens": 77})
    with claude.messages.stream(
        model=MODEL,
        max_tokens=256,
        messages=MESSAGES,
        extra_headers=scenario.to_header(),
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()

    assert text == "Ranked."
    assert final.content[0].type == "thinking"
    assert final.content[0].thinking == "Hmm.Hmm."
    assert final.content[0].signature == signature("Hmm.Hmm.")
    assert final.content[1].text == "Ranked."
    assert final.usage.output_tokens == 77
    assert final.usage.input_tokens == estimate_tokens("Rerank these results.")


def test_parse_with_output_format(claude: anthropic.Anthropic, llm: StandIn) -> None:
    message = claude.messages.parse(
        model=MODEL, max_tokens=256, messages=MESSAGES, output_format=Ranking
    )

    assert message.parsed_output == Ranking(order=[1], reason="example")
    assert llm.requests[0].json["output_config"]["format"]["type"] == "json_schema"


def test_tool_use_block(claude: anthropic.Anthropic) -> None:
    scenario = Scenario(tool_calls=[{"name": "rerank", "arguments": {"ids": [3, 1]}}])
    message = create(claude, scenario)
    assert message.stop_reason == "tool_use"
    assert message.content[0].type == "tool_use"
    assert (message.content[0].name, message.content[0].input) == ("rerank", {"ids": [3, 1]})

    with claude.messages.stream(
        model=MODEL, max_tokens=256, messages=MESSAGES, extra_headers=scenario.to_header()
    ) as stream:
        final = stream.get_final_message()
    assert final.content[0].input == {"ids": [3, 1]}
    assert final.stop_reason == "tool_use"


def test_beta_messages_json_stream_and_parse(claude: anthropic.Anthropic, llm: StandIn) -> None:
    betas = ["context-management-2025-06-27"]
    message = claude.beta.messages.create(
        model=MODEL, max_tokens=64, messages=MESSAGES, betas=betas
    )
    assert message.content[0].text == DEFAULT_TEXT
    assert message.usage.input_tokens == estimate_tokens("Rerank these results.")

    with claude.beta.messages.stream(
        model=MODEL, max_tokens=64, messages=MESSAGES, betas=betas
    ) as stream:
        final = stream.get_final_message()
    assert final.content[0].text == DEFAULT_TEXT
    assert final.usage.output_tokens == 9

    parsed = claude.beta.messages.parse(
        model=MODEL, max_tokens=64, messages=MESSAGES, output_format=Ranking
    )
    assert parsed.parsed_output == Ranking(order=[1], reason="example")

    first = llm.requests[0]
    assert first.path == "/v1/messages"
    assert first.query in ({}, {"beta": "true"})
    assert first.headers["anthropic-beta"] == "context-management-2025-06-27"


def test_count_tokens(claude: anthropic.Anthropic) -> None:
    counted = claude.messages.count_tokens(model=MODEL, system=SYSTEM, messages=MESSAGES)
    assert counted.input_tokens == PROMPT_TOKENS

    overridden = claude.messages.count_tokens(
        model=MODEL,
        messages=MESSAGES,
        extra_headers=Scenario(usage={"input_tokens": 4321}).to_header(),
    )
    assert overridden.input_tokens == 4321

    beta = claude.beta.messages.count_tokens(model=MODEL, messages=MESSAGES)
    assert beta.input_tokens == estimate_tokens("Rerank these results.")


def test_async_json_and_stream(llm: StandIn) -> None:
    async def run() -> tuple[str, str, int]:
        client = anthropic.AsyncAnthropic(
            base_url=llm.anthropic_base_url, api_key="test", max_retries=0
        )
        async with client:
            message = await client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
            async with client.messages.stream(
                model=MODEL, max_tokens=64, messages=MESSAGES
            ) as stream:
                pieces = [text async for text in stream.text_stream]
                final = await stream.get_final_message()
        return message.content[0].text, "|".join(pieces), final.usage.output_tokens

    text, pieces, output_tokens = asyncio.run(run())
    assert text == DEFAULT_TEXT
    assert pieces.replace("|", "") == DEFAULT_TEXT
    assert pieces.count("|") == 3
    assert output_tokens == 9
