"""OpenAI chat completions through the real ``openai`` client: JSON, SSE, helpers, tools."""

from __future__ import annotations

import asyncio
import json

import openai
import pydantic

from spanledger.standin import DEFAULT_TEXT, Scenario, StandIn, estimate_tokens

MODEL = "gpt-4o-mini"
MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": [{"type": "text", "text": "Summarise the report."}]},
]
PROMPT_TOKENS = estimate_tokens("Be brief." + "Summarise the report.")


class Verdict(pydantic.BaseModel):
    label: str
    score: float
    tags: list[str]
    approved: bool


def test_json_reply_echoes_model_and_counts_tokens(oai: openai.OpenAI, llm: StandIn) -> None:
    reply = oai.chat.completions.create(model=MODEL, messages=MESSAGES)

    assert reply.model == MODEL
    assert reply.object == "chat.completion"
    assert reply.choices[0].message.content == DEFAULT_TEXT
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == PROMPT_TOKENS == 8
    assert reply.usage.completion_tokens == estimate_tokens(DEFAULT_TEXT) == 9
    assert reply.usage.total_tokens == 17
    assert [r.path for r in llm.requests] == ["/v1/chat/completions"]
    assert llm.requests[0].json["messages"] == MESSAGES
    assert llm.requests[0].headers["authorization"] == "Bearer test"


def test_usage_override_model_text_and_reasoning(oai: openai.OpenAI) -> None:
    scenario = Scenario(
        model="gpt-4o-mini-2024-07-18",
        text="Short.",
        reasoning=40,
        usage={"prompt_tokens": 1200, "prompt_tokens_details": {"cached_tokens": 1000}},
    )
    reply = oai.chat.completions.create(
        model=MODEL, messages=MESSAGES, extra_headers=scenario.to_header()
    )

    assert reply.model == "gpt-4o-mini-2024-07-18"
    assert reply.choices[0].message.content == "Short."
    usage = reply.usage
    assert usage is not None
    assert usage.prompt_tokens == 1200
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 1000
    assert usage.completion_tokens == estimate_tokens("Short.") + 40 == 42
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 40
    assert usage.total_tokens == 1242


def test_reported_cost_and_extra_response_headers(oai: openai.OpenAI) -> None:
    scenario = Scenario(cost=0.0123, response_headers={"x-litellm-response-cost": "0.0456"})
    raw = oai.chat.completions.with_raw_response.create(
        model=MODEL, messages=MESSAGES, extra_headers=scenario.to_header()
    )
    reply = raw.parse()

    assert raw.headers["x-litellm-response-cost"] == "0.0456"
    assert raw.headers["x-request-id"].startswith("req_standin")
    assert reply.usage is not None
    assert reply.usage.model_extra == {"cost": 0.0123}


def test_stream_without_usage_ends_with_finish_chunk(oai: openai.OpenAI) -> None:
    stream = oai.chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True, extra_headers=Scenario(chunks=5).to_header()
    )
    chunks = list(stream)

    deltas = [c.choices[0].delta.content for c in chunks if c.choices]
    assert deltas[0] == ""
    assert len([d for d in deltas if d]) == 5
    assert "".join(d or "" for d in deltas) == DEFAULT_TEXT
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)
    assert {c.id for c in chunks} == {chunks[0].id}


def test_stream_with_include_usage_adds_usage_only_chunk(oai: openai.OpenAI) -> None:
    scenario = Scenario(usage={"prompt_tokens": 50, "completion_tokens": 7})
    stream = oai.chat.completions.create(
        model=MODEL,
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers=scenario.to_header(),
    )
    chunks = list(stream)

    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (50, 7)
    assert last.usage.total_tokens == 57
    assert all(c.usage is None for c in chunks[:-1])


def test_long_chunk_count_extends_default_text(oai: openai.OpenAI) -> None:
    stream = oai.chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True, extra_headers=Scenario(chunks=50).to_header()
    )
    pieces = [
        c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content
    ]

    assert len(pieces) == 50
    assert "".join(pieces) == f"{DEFAULT_TEXT} {DEFAULT_TEXT}"


def test_stream_helper_accumulates_text_and_usage(oai: openai.OpenAI) -> None:
    with oai.chat.completions.stream(
        model=MODEL, messages=MESSAGES, stream_options={"include_usage": True}
    ) as stream:
        texts = [e.delta for e in stream if e.type == "content.delta"]
        final = stream.get_final_completion()

    assert "".join(texts) == DEFAULT_TEXT
    assert final.choices[0].message.content == DEFAULT_TEXT
    assert final.usage is not None
    assert final.usage.prompt_tokens == PROMPT_TOKENS
    assert final.usage.completion_tokens == 9


def test_parse_returns_object_matching_schema(oai: openai.OpenAI, llm: StandIn) -> None:
    reply = oai.chat.completions.parse(model=MODEL, messages=MESSAGES, response_format=Verdict)

    parsed = reply.choices[0].message.parsed
    assert parsed == Verdict(label="example", score=1.0, tags=["example"], approved=True)
    assert llm.requests[0].json["response_format"]["type"] == "json_schema"
    assert reply.usage is not None
    assert reply.usage.completion_tokens == estimate_tokens(
        json.dumps(parsed.model_dump(), separators=(",", ":"))
    )


def test_stream_helper_parses_structured_output(oai: openai.OpenAI) -> None:
    with oai.chat.completions.stream(
        model=MODEL, messages=MESSAGES, response_format=Verdict
    ) as stream:
        final = stream.get_final_completion()

    assert final.choices[0].message.parsed == Verdict(
        label="example", score=1.0, tags=["example"], approved=True
    )


def test_tool_calls_json_and_streamed(oai: openai.OpenAI) -> None:
    class Lookup(pydantic.BaseModel):
        city: str

    tools = [openai.pydantic_function_tool(Lookup)]
    scenario = Scenario(tool_calls=[{"name": "Lookup", "arguments": {"city": "Oslo"}}])
    reply = oai.chat.completions.parse(
        model=MODEL, messages=MESSAGES, tools=tools, extra_headers=scenario.to_header()
    )
    call = reply.choices[0].message.tool_calls[0]
    assert reply.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "Lookup"
    assert call.function.parsed_arguments == Lookup(city="Oslo")
    assert reply.usage is not None
    assert reply.usage.completion_tokens == estimate_tokens('Lookup{"city": "Oslo"}')

    with oai.chat.completions.stream(
        model=MODEL, messages=MESSAGES, tools=tools, extra_headers=scenario.to_header()
    ) as stream:
        final = stream.get_final_completion()
    streamed = final.choices[0].message.tool_calls[0]
    assert streamed.function.parsed_arguments == Lookup(city="Oslo")
    assert streamed.id.startswith("call_standin")
    assert streamed.id != call.id


def test_async_json_and_stream(llm: StandIn) -> None:
    async def run() -> tuple[str | None, list[str], int]:
        client = openai.AsyncOpenAI(base_url=llm.openai_base_url, api_key="test", max_retries=0)
        async with client:
            reply = await client.chat.completions.create(model=MODEL, messages=MESSAGES)
            stream = await client.chat.completions.create(
                model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
            )
            pieces, total = [], 0
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    pieces.append(chunk.choices[0].delta.content)
                if chunk.usage:
                    total = chunk.usage.total_tokens
            return reply.choices[0].message.content, pieces, total

    content, pieces, total = asyncio.run(run())
    assert content == DEFAULT_TEXT
    assert len(pieces) == 4
    assert "".join(pieces) == DEFAULT_TEXT
    assert total == PROMPT_TOKENS + 9


def test_async_stream_helper(llm: StandIn) -> None:
    async def run() -> str | None:
        client = openai.AsyncOpenAI(base_url=llm.openai_base_url, api_key="test", max_retries=0)
        async with (
            client,
            client.chat.completions.stream(model=MODEL, messages=MESSAGES) as stream,
        ):
            final = await stream.get_final_completion()
        return final.choices[0].message.content

    assert asyncio.run(run()) == DEFAULT_TEXT


def test_legacy_completions_json_and_stream(oai: openai.OpenAI, llm: StandIn) -> None:
    reply = oai.completions.create(model="gpt-3.5-turbo-instruct", prompt="Complete this")
    assert reply.choices[0].text == DEFAULT_TEXT
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (4, 9)

    stream = oai.completions.create(
        model="gpt-3.5-turbo-instruct",
        prompt="Complete this",
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == DEFAULT_TEXT
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 13
    assert [r.path for r in llm.requests] == ["/v1/completions"] * 2
