"""Streams longer than one read of kept chunks: the body is read in pieces while it streams.

The stand-in sends each event on its own, a millisecond apart, so the client gets far more raw
chunks than the watcher keeps before reading them; a spy on the reading counts how often that
happened before the end.
"""

from __future__ import annotations

import asyncio

import anthropic
import pytest
from dropped_connection import raises_dropped_connection
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from spanledger import semconv
from spanledger.instrumentation.genai.body_reader import CHUNKS_PER_READ, BodyReader
from spanledger.standin import Scenario

MODEL = "claude-haiku-4-5"
USAGE = {"input_tokens": 40, "cache_read_input_tokens": 60, "output_tokens": 150}
EVENTS = 150
LONG = Scenario(text="a" * EVENTS, chunks=EVENTS, usage=USAGE, chunk_delay=0.001)


def kwargs(scenario: Scenario) -> dict:
    return {
        "model": MODEL,
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "Hello"}],
        "extra_headers": scenario.to_header(),
    }


@pytest.fixture
def reads_before_the_end(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the readings of kept chunks made while a body streams (one entry per reading)."""
    readings: list[int] = []
    read_unread = BodyReader.read_unread

    def counted(watcher: BodyReader) -> None:
        readings.append(len(watcher.unread))
        read_unread(watcher)

    monkeypatch.setattr(BodyReader, "read_unread", counted)
    return readings


def usage_of(span: ReadableSpan) -> tuple[object, object]:
    attributes = span.attributes or {}
    return (
        attributes.get(semconv.GEN_AI_USAGE_INPUT_TOKENS),
        attributes.get(semconv.GEN_AI_USAGE_OUTPUT_TOKENS),
    )


def test_long_stream_read_to_its_end(
    client: anthropic.Anthropic, only_span, reads_before_the_end: list[int]
) -> None:
    stream = client.messages.create(stream=True, **kwargs(LONG))
    text = "".join(
        event.delta.text
        for event in stream
        if event.type == "content_block_delta" and event.delta.type == "text_delta"
    )
    assert text == "a" * EVENTS
    assert len(reads_before_the_end) >= 2
    assert set(reads_before_the_end) == {CHUNKS_PER_READ}
    span = only_span()
    assert span.attributes[semconv.STREAM_COMPLETED] is True
    assert usage_of(span) == (100, 150)
    assert span.attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("end_turn",)


def assert_estimated(span: ReadableSpan, at_least: int) -> None:
    """Cut before message_delta: exact input, no output count, the deltas seen as estimate."""
    assert usage_of(span) == (100, None)
    chunks = span.attributes[semconv.STREAM_CHUNKS]
    assert at_least <= chunks <= EVENTS
    assert span.attributes[semconv.USAGE_ESTIMATE_OUTPUT_TOKENS] == chunks


def test_long_stream_left_after_several_readings(
    client: anthropic.Anthropic, only_span, reads_before_the_end: list[int]
) -> None:
    with client.messages.create(stream=True, **kwargs(LONG)) as stream:
        for seen, _event in enumerate(stream, start=1):
            if seen == 3 * CHUNKS_PER_READ:
                break
    assert len(reads_before_the_end) >= 2
    span = only_span()
    assert span.attributes[semconv.STREAM_COMPLETED] is False
    assert_estimated(span, at_least=3 * CHUNKS_PER_READ - 3)
    assert span.status.status_code is StatusCode.UNSET


def test_long_stream_dropped_after_several_readings(
    client: anthropic.Anthropic, only_span, reads_before_the_end: list[int]
) -> None:
    dropping = Scenario(
        text="a" * EVENTS, chunks=EVENTS, usage=USAGE, chunk_delay=0.001, drop_after=EVENTS - 20
    )
    stream = client.messages.create(stream=True, **kwargs(dropping))
    with raises_dropped_connection():
        for _ in stream:
            pass
    assert len(reads_before_the_end) >= 2
    span = only_span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] in {"RemoteProtocolError", "APIConnectionError"}
    assert span.attributes[semconv.STREAM_COMPLETED] is False
    assert_estimated(span, at_least=EVENTS - 30)


def test_long_async_streams(async_client_for, only_span, reads_before_the_end: list[int]) -> None:
    async def main() -> None:
        async with async_client_for() as client:
            stream = await client.messages.create(stream=True, **kwargs(LONG))
            kinds = [event.type async for event in stream]
            assert kinds.count("content_block_delta") == EVENTS
            assert len(reads_before_the_end) >= 2
            span = only_span()
            assert span.attributes[semconv.STREAM_COMPLETED] is True
            assert usage_of(span) == (100, 150)

            reads_before_the_end.clear()
            stream = await client.messages.create(stream=True, **kwargs(LONG))
            seen = 0
            async for _ in stream:
                seen += 1
                if seen == 3 * CHUNKS_PER_READ:
                    break
            await stream.close()
            assert len(reads_before_the_end) >= 2
            span = only_span()
            assert span.attributes[semconv.STREAM_COMPLETED] is False
            assert_estimated(span, at_least=3 * CHUNKS_PER_READ - 3)

    asyncio.run(main())
