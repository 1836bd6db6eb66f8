"""The bytes on the wire: SSE framing, event names, headers and connection reuse."""

from __future__ import annotations

import asyncio
import json

import anthropic
import httpx2
import openai
import pytest

from spanledger.standin import Scenario, StandIn


def sse_events(body: str) -> list[tuple[str | None, str]]:
    """``(event name, data)`` per SSE event of a complete stream body."""
    events = []
    for block in body.strip().split("\n\n"):
        name, data = None, ""
        for line in block.split("\n"):
            field, _, value = line.partition(": ")
            if field == "event":
                name = value
            elif field == "data":
                data = value
        events.append((name, data))
    return events


def test_anthropic_stream_framing(llm: StandIn) -> None:
    body = {"model": "claude-haiku-4-5", "max_tokens": 8, "stream": True, "messages": []}
    with httpx2.Client(base_url=llm.url) as http:
        reply = http.post("/v1/messages", json=body)

    assert reply.headers["content-type"].startswith("text/event-stream")
    assert reply.headers["transfer-encoding"] == "chunked"
    assert reply.headers["request-id"].startswith("req_standin")
    events = sse_events(reply.text)
    names = [name for name, _ in events]
    assert names[:2] == ["message_start", "ping"]
    assert names[-1] == "message_stop"
    assert all(json.loads(data)["type"] == name for name, data in events)
    start = json.loads(events[0][1])["message"]["usage"]
    assert start["cache_creation"] == {
        "ephemeral_5m_input_tokens": 0,
        "ephemeral_1h_input_tokens": 0,
    }
    assert start["output_tokens"] == 1


def test_openai_streams_framing(llm: StandIn) -> None:
    chat = {"model": "gpt-4o-mini", "messages": [], "stream": True}
    responses = {"model": "o3", "input": "x", "stream": True}
    with httpx2.Client(base_url=llm.url) as http:
        chat_events = sse_events(http.post("/v1/chat/completions", json=chat).text)
        response_events = sse_events(http.post("/v1/responses", json=responses).text)

    assert chat_events[-1] == (None, "[DONE]")
    assert all(name is None for name, _ in chat_events)
    assert "usage" not in json.loads(chat_events[0][1])
    assert all(json.loads(data)["type"] == name for name, data in response_events)
    assert [name for name, _ in response_events][-3:] == [
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]


def test_keep_alive_serves_many_requests_on_one_connection(llm: StandIn) -> None:
    chat = {"model": "gpt-4o-mini", "messages": [], "stream": True}
    with httpx2.Client(base_url=llm.url, limits=httpx2.Limits(max_connections=1)) as http:
        for _ in range(5):
            assert http.post("/v1/chat/completions", json=chat).text.endswith("data: [DONE]\n\n")
            assert http.post("/v1/embeddings", json={"input": "x"}).status_code == 200
    ports = {r.headers["host"] for r in llm.requests}
    assert len(llm.requests) == 10
    assert ports == {llm.url.removeprefix("http://")}


def test_async_embeddings_count_tokens_and_dropped_anthropic_stream(llm: StandIn) -> None:
    async def run() -> tuple[int, int]:
        oai = openai.AsyncOpenAI(base_url=llm.openai_base_url, api_key="t", max_retries=0)
        claude = anthropic.AsyncAnthropic(
            base_url=llm.anthropic_base_url, api_key="t", max_retries=0
        )
        async with oai, claude:
            vectors = await oai.embeddings.create(model="e", input=["abcd", "efgh"], dimensions=4)
            counted = await claude.messages.count_tokens(
                model="m", messages=[{"role": "user", "content": "abcdefgh"}]
            )
            with pytest.raises((httpx2.RemoteProtocolError, anthropic.APIConnectionError)):
                async with claude.messages.stream(
                    model="m",
                    max_tokens=8,
                    messages=[],
                    extra_headers=Scenario(drop_after=3).to_header(),
                ) as stream:
                    await stream.get_final_message()
        return len(vectors.data[1].embedding), counted.input_tokens

    assert asyncio.run(run()) == (4, 2)
