"""Errors, retries and dropped streams, as the real SDKs experience them."""

from __future__ import annotations

import asyncio

import anthropic
import httpx2
import openai
import pytest

from spanledger.standin import Scenario, StandIn

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
MESSAGE = {
    "model": "claude-haiku-4-5",
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "hi"}],
}


def test_openai_error_bodies_and_classes(oai: openai.OpenAI) -> None:
    cases = [
        (400, openai.BadRequestError, "invalid_request_error", None),
        (429, openai.RateLimitError, "requests", "rate_limit_exceeded"),
        (500, openai.InternalServerError, "server_error", None),
    ]
    for status, error_class, kind, code in cases:
        with pytest.raises(error_class) as caught:
            oai.chat.completions.create(**CHAT, extra_headers=Scenario(error=status).to_header())
        assert caught.value.status_code == status
        assert caught.value.type == kind
        assert caught.value.code == code
        assert isinstance(caught.value.body, dict)
        assert set(caught.value.body) == {"message", "type", "param", "code"}


def test_openai_rate_limit_carries_retry_after_and_message(oai: openai.OpenAI) -> None:
    scenario = Scenario(error=429, retry_after=7, error_message="slow down")
    with pytest.raises(openai.RateLimitError) as caught:
        oai.responses.create(model="o3", input="x", stream=True, extra_headers=scenario.to_header())
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.message == "Error code: 429 - slow down"
    assert caught.value.body == {
        "message": "slow down",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }


def test_anthropic_error_bodies_and_classes(claude: anthropic.Anthropic) -> None:
    cases = [
        (400, anthropic.BadRequestError, "invalid_request_error"),
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (529, anthropic.OverloadedError, "overloaded_error"),
    ]
    for status, error_class, kind in cases:
        scenario = Scenario(error=status, retry_after=3)
        with pytest.raises(error_class) as caught:
            claude.messages.create(**MESSAGE, extra_headers=scenario.to_header())
        assert caught.value.status_code == status
        body = caught.value.body
        assert isinstance(body, dict)
        assert body["type"] == "error"
        assert body["error"]["type"] == kind
        assert caught.value.response.headers["retry-after"] == "3"
        assert caught.value.request_id == caught.value.response.headers["request-id"]
        assert body["request_id"] == caught.value.request_id


def test_queued_error_fails_the_first_attempt_only(llm: StandIn) -> None:
    llm.push(Scenario(error=429, retry_after=0.01))
    client = openai.OpenAI(base_url=llm.openai_base_url, api_key="test", max_retries=2)
    with client:
        reply = client.chat.completions.create(**CHAT)

    assert reply.choices[0].message.content
    assert [r.scenario.error if r.scenario else None for r in llm.requests] == [429, None]
    assert [r.headers["x-stainless-retry-count"] for r in llm.requests] == ["0", "1"]


def test_queued_error_with_repeat_exhausts_retries(llm: StandIn) -> None:
    llm.push(Scenario(error=500, retry_after=0.01, repeat=2), Scenario(text="third"))
    client = anthropic.Anthropic(base_url=llm.anthropic_base_url, api_key="test", max_retries=1)
    with client:
        with pytest.raises(anthropic.InternalServerError):
            client.messages.create(**MESSAGE)
        assert len(llm.requests) == 2
        assert llm.queued == 1
        message = client.messages.create(**MESSAGE)
    assert message.content[0].text == "third"
    assert llm.queued == 0


def test_header_error_applies_to_every_retry(llm: StandIn) -> None:
    scenario = Scenario(error=500, retry_after=0.01)
    client = openai.OpenAI(base_url=llm.openai_base_url, api_key="test", max_retries=2)
    with client, pytest.raises(openai.InternalServerError):
        client.chat.completions.create(**CHAT, extra_headers=scenario.to_header())
    assert len(llm.requests) == 3


def test_dropped_openai_stream_raises_connection_error(oai: openai.OpenAI) -> None:
    stream = oai.chat.completions.create(
        **CHAT, stream=True, extra_headers=Scenario(drop_after=3, chunks=6).to_header()
    )
    received = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in stream:
            received.append(chunk)
    assert len(received) == 3

    with (
        pytest.raises(openai.APIConnectionError),
        oai.responses.stream(
            model="o3", input="x", extra_headers=Scenario(drop_after=5).to_header()
        ) as events,
    ):
        events.get_final_response()


def test_dropped_anthropic_stream_raises_transport_error(claude: anthropic.Anthropic) -> None:
    # Depending on the anthropic 2.x release, a transport failure in the middle of a stream
    # comes through unwrapped or as an APIConnectionError carrying the same message.
    scenario = Scenario(drop_after=4)
    with (
        pytest.raises(
            (httpx2.RemoteProtocolError, anthropic.APIConnectionError),
            match="incomplete chunked read",
        ),
        claude.messages.stream(**MESSAGE, extra_headers=scenario.to_header()) as stream,
    ):
        stream.get_final_message()

    # The connection pool recovers: the next call on the same client succeeds.
    assert claude.messages.create(**MESSAGE).content[0].text


def test_dropped_stream_async(llm: StandIn) -> None:
    async def run() -> int:
        client = openai.AsyncOpenAI(base_url=llm.openai_base_url, api_key="test", max_retries=0)
        received = 0
        async with client:
            stream = await client.chat.completions.create(
                **CHAT, stream=True, extra_headers=Scenario(drop_after=2).to_header()
            )
            with pytest.raises(openai.APIConnectionError):
                async for _ in stream:
                    received += 1
        return received

    assert asyncio.run(run()) == 2


def test_drop_before_first_event(oai: openai.OpenAI) -> None:
    stream = oai.chat.completions.create(
        **CHAT, stream=True, extra_headers=Scenario(drop_after=0).to_header()
    )
    with pytest.raises(openai.APIConnectionError):
        list(stream)


def test_in_stream_errors_as_each_sdk_reports_them(
    oai: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    chat = oai.chat.completions.create(
        **CHAT, stream=True, extra_headers=Scenario(stream_error_after=2).to_header()
    )
    received = []
    with pytest.raises(openai.APIError, match="Sorry about that"):
        for chunk in chat:
            received.append(chunk)
    assert len(received) == 2

    scenario = Scenario(stream_error_after=3, error_message="capacity")
    with oai.responses.stream(model="o3", input="x", extra_headers=scenario.to_header()) as events:
        kinds = [(e.type, getattr(e, "message", None)) for e in events]
    assert kinds[-1] == ("error", "capacity")
    assert len(kinds) == 4

    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        claude.messages.stream(
            **MESSAGE, extra_headers=Scenario(stream_error_after=3).to_header()
        ) as stream,
    ):
        stream.get_final_message()
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    # The stream ended cleanly, so the connection is reused for the next call.
    assert claude.messages.create(**MESSAGE).stop_reason == "end_turn"
