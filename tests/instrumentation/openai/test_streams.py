"""Streamed calls: usage on the span, an unchanged stream for the caller, and exactly one end
whichever way the stream stops."""

from __future__ import annotations

import asyncio
import gc
import logging

import openai
import pytest
from dropped_connection import raises_dropped_connection
from openai import AsyncStream, Stream
from openai.lib.streaming.chat import ChatCompletionStream
from openai_support import MESSAGES, async_client, only_span, scenario
from opentelemetry.trace import StatusCode

from spanledger import semconv
from spanledger.standin import DEFAULT_TEXT, StandIn, estimate_tokens

PROMPT_TOKENS = 8
REPLY_TOKENS = estimate_tokens(DEFAULT_TEXT)
USAGE = {
    "prompt_tokens": 900,
    "completion_tokens": 150,
    "prompt_tokens_details": {"cached_tokens": 800},
}


@pytest.fixture(autouse=True)
def no_double_end(caplog):
    """A second ``end()`` on an SDK span logs a warning: there must be none."""
    with caplog.at_level(logging.WARNING, logger="opentelemetry.sdk.trace"):
        yield
    assert not [r for r in caplog.records if "already ended" in r.getMessage().lower()]


def comparable(chunks) -> list[dict]:
    """Chunks as the caller sees them, minus what differs between any two calls."""
    return [
        {k: v for k, v in chunk.to_dict().items() if k not in {"id", "created"}} for chunk in chunks
    ]


def test_stream_reports_usage_and_is_identical_to_uninstrumented(
    client, llm, instrumentor, tracer_provider, span_exporter
):
    instrumentor.uninstrument()
    plain = comparable(
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    )
    instrumentor.instrument(tracer_provider=tracer_provider)

    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers=scenario(usage=USAGE)
    )
    assert type(stream) is Stream
    seen = comparable(stream)

    assert seen == plain
    assert all(chunk["choices"] for chunk in seen)
    assert llm.requests[-1].json["stream_options"] == {"include_usage": True}
    assert "stream_options" not in llm.requests[0].json
    span = only_span(span_exporter)
    assert span.attributes[semconv.GEN_AI_REQUEST_STREAM] is True
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 900
    assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 150
    assert span.attributes[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 800
    assert span.attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert span.attributes[semconv.STREAM_COMPLETED] is True


def test_caller_who_asked_for_usage_sees_it(client, llm, span_exporter):
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    assert chunks[-1].choices == []
    assert chunks[-1].usage.prompt_tokens == PROMPT_TOKENS
    assert llm.requests[-1].json["stream_options"] == {"include_usage": True}
    attributes = only_span(span_exporter).attributes
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS
    assert attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == REPLY_TOKENS


def test_break_then_close_ends_once_with_partial_usage(client, span_exporter):
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers=scenario(chunks=6)
    )
    for chunk in stream:
        first_id = chunk.id
        break
    assert span_exporter.get_finished_spans() == ()

    stream.close()
    stream.close()

    span = only_span(span_exporter)
    assert span.attributes[semconv.STREAM_COMPLETED] is False
    assert span.attributes[semconv.GEN_AI_RESPONSE_ID] == first_id
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in span.attributes
    assert semconv.GEN_AI_USAGE_OUTPUT_TOKENS not in span.attributes
    # What arrived: one chunk with output, kept apart from any count as an estimate.
    assert span.attributes[semconv.STREAM_CHUNKS] == 1
    assert span.attributes[semconv.USAGE_ESTIMATE_OUTPUT_TOKENS] == 1
    assert span.status.status_code is StatusCode.UNSET


def test_a_stream_read_to_its_end_has_no_estimate(client, span_exporter):
    for _ in client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers=scenario(chunks=6)
    ):
        pass
    attributes = only_span(span_exporter).attributes
    assert attributes[semconv.STREAM_COMPLETED] is True
    assert semconv.USAGE_ESTIMATE_OUTPUT_TOKENS not in attributes
    assert semconv.STREAM_CHUNKS not in attributes


def test_responses_stream_left_early_records_what_arrived(client, span_exporter):
    stream = client.responses.create(
        model="gpt-4o-mini", input="Hello", stream=True, extra_headers=scenario(chunks=8)
    )
    deltas = 0
    for event in stream:
        if event.type == "response.output_text.delta":
            deltas += 1
            if deltas == 3:
                break
    stream.close()

    attributes = only_span(span_exporter).attributes
    assert attributes[semconv.STREAM_COMPLETED] is False
    assert semconv.GEN_AI_USAGE_OUTPUT_TOKENS not in attributes
    assert attributes[semconv.STREAM_CHUNKS] == 3
    assert attributes[semconv.USAGE_ESTIMATE_OUTPUT_TOKENS] == 3
    assert attributes[semconv.GEN_AI_RESPONSE_ID].startswith("resp_")


def test_leaving_with_ends_the_span(client, span_exporter):
    with client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True
    ) as stream:
        next(stream)
        assert span_exporter.get_finished_spans() == ()

    assert only_span(span_exporter).attributes[semconv.STREAM_COMPLETED] is False


def test_abandoned_stream_ends_on_garbage_collection(client, span_exporter):
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    next(stream)
    del stream
    gc.collect()

    assert only_span(span_exporter).attributes[semconv.STREAM_COMPLETED] is False


def test_unread_stream_ends_on_garbage_collection(client, span_exporter):
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    gc.collect()

    span = only_span(span_exporter)
    assert span.attributes[semconv.STREAM_COMPLETED] is False


def test_dropped_connection_keeps_partial_usage_and_fails(client, span_exporter):
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers=scenario(drop_after=2)
    )
    received = []
    with raises_dropped_connection() as dropped:
        for chunk in stream:
            received.append(chunk)

    assert len(received) == 2
    span = only_span(span_exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == type(dropped.value).__name__
    assert span.attributes[semconv.STREAM_COMPLETED] is False
    assert span.attributes[semconv.GEN_AI_RESPONSE_ID] == received[0].id


def test_error_status_on_a_stream_request(client, span_exporter):
    with pytest.raises(openai.RateLimitError) as raised:
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            stream=True,
            extra_headers=scenario(error=429, retry_after=0),
        )

    assert raised.value.status_code == 429
    span = only_span(span_exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "RateLimitError"


def test_chat_stream_helper(client, span_exporter):
    with client.chat.completions.stream(
        model="gpt-4o-mini", messages=MESSAGES, extra_headers=scenario(usage=USAGE)
    ) as stream:
        assert isinstance(stream, ChatCompletionStream)
        text = "".join(event.delta for event in stream if event.type == "content.delta")
        final = stream.get_final_completion()

    assert text == DEFAULT_TEXT
    assert final.usage is None  # the caller did not ask for usage
    attributes = only_span(span_exporter).attributes
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 900
    assert attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 150
    assert attributes[semconv.STREAM_COMPLETED] is True


def test_chat_stream_helper_left_early(client, span_exporter):
    with client.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES) as stream:
        for _event in stream:
            break
        assert span_exporter.get_finished_spans() == ()

    assert only_span(span_exporter).attributes[semconv.STREAM_COMPLETED] is False


def test_responses_stream(client, span_exporter):
    stream = client.responses.create(
        model="gpt-4.1",
        input="Say hi",
        stream=True,
        extra_headers=scenario(
            usage={
                "input_tokens": 321,
                "output_tokens": 45,
                "input_tokens_details": {"cached_tokens": 300},
            }
        ),
    )
    events = [event.type for event in stream]

    assert events[-1] == "response.completed"
    attributes = only_span(span_exporter).attributes
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 321
    assert attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 45
    assert attributes[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 300
    assert attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("completed",)
    assert attributes[semconv.STREAM_COMPLETED] is True


def test_responses_stream_helper(client, llm, span_exporter):
    with client.responses.stream(model="gpt-4.1", input="Say hi") as stream:
        final = stream.get_final_response()

    assert "stream_options" not in llm.requests[-1].json
    attributes = only_span(span_exporter).attributes
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == final.usage.input_tokens
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == estimate_tokens("Say hi")
    assert attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == REPLY_TOKENS


def test_with_raw_response_stream(client, span_exporter):
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True
    )
    assert span_exporter.get_finished_spans() == ()
    stream = raw.parse()
    assert isinstance(stream, Stream)
    assert all(chunk.choices for chunk in stream)

    attributes = only_span(span_exporter).attributes
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS
    assert attributes[semconv.STREAM_COMPLETED] is True


def test_with_streaming_response_stream(client, span_exporter):
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True
    ) as response:
        chunks = list(response.parse())

    assert all(chunk.choices for chunk in chunks)
    attributes = only_span(span_exporter).attributes
    assert attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == REPLY_TOKENS
    assert attributes[semconv.STREAM_COMPLETED] is True


def test_async_stream(llm: StandIn, instrumentor, span_exporter):
    async def run() -> list:
        async with async_client(llm) as sdk:
            stream = await sdk.chat.completions.create(
                model="gpt-4o-mini",
                messages=MESSAGES,
                stream=True,
                extra_headers=scenario(usage=USAGE),
            )
            assert type(stream) is AsyncStream
            return [chunk async for chunk in stream]

    chunks = asyncio.run(run())

    assert all(chunk.choices for chunk in chunks)
    attributes = only_span(span_exporter).attributes
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 900
    assert attributes[semconv.STREAM_COMPLETED] is True


def test_async_stream_left_early(llm: StandIn, instrumentor, span_exporter):
    async def run() -> None:
        async with async_client(llm) as sdk:
            stream = await sdk.chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, stream=True
            )
            async with stream:
                async for _chunk in stream:
                    break
                assert span_exporter.get_finished_spans() == ()
            # Ended by leaving ``async with``, not by the event loop shutting down later.
            assert only_span(span_exporter).attributes[semconv.STREAM_COMPLETED] is False
            assert stream.response.is_closed

    asyncio.run(run())

    assert len(span_exporter.get_finished_spans()) == 1


def test_async_stream_helper(llm: StandIn, instrumentor, span_exporter):
    async def run() -> str:
        async with (
            async_client(llm) as sdk,
            sdk.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES) as stream,
        ):
            final = await stream.get_final_completion()
            return final.choices[0].message.content

    assert asyncio.run(run()) == DEFAULT_TEXT
    attributes = only_span(span_exporter).attributes
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS
    assert attributes[semconv.STREAM_COMPLETED] is True


def test_async_dropped_connection(llm: StandIn, instrumentor, span_exporter):
    async def run() -> None:
        async with async_client(llm) as sdk:
            stream = await sdk.responses.create(
                model="gpt-4.1", input="Say hi", stream=True, extra_headers=scenario(drop_after=3)
            )
            async for _event in stream:
                pass

    with raises_dropped_connection():
        asyncio.run(run())

    span = only_span(span_exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.STREAM_COMPLETED] is False
    assert span.attributes[semconv.GEN_AI_RESPONSE_ID].startswith("resp")
