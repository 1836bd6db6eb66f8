"""A span ends exactly once however a call ends: read, cut short, dropped, failed or faulty."""

from __future__ import annotations

import asyncio
import gc
import logging

import anthropic
import pytest
from dropped_connection import raises_dropped_connection
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from spanledger import semconv
from spanledger.instrumentation.anthropic import patch
from spanledger.instrumentation.anthropic.usage import StreamAccumulator
from spanledger.instrumentation.genai import CAPTURE_CONTENT_ENV
from spanledger.instrumentation.genai import call as kit_call
from spanledger.standin import Scenario, StandIn

MODEL = "claude-haiku-4-5"
USAGE = {"input_tokens": 40, "cache_read_input_tokens": 60}
# Events reach the client 0.2 s apart, so one read right after message_start sees only that
# event: the usage of a stream cut there is message_start's (100 input, 1 output so far).
SLOW = Scenario(text="abcdefgh", usage=USAGE, chunk_delay=0.2)


def kwargs(scenario: Scenario) -> dict:
    return {
        "model": MODEL,
        "max_tokens": 32,
        "messages": [{"role": "user", "content": "Hello"}],
        "extra_headers": scenario.to_header(),
    }


def usage_of(span: ReadableSpan) -> tuple[object, object]:
    attributes = span.attributes or {}
    return (
        attributes.get(semconv.GEN_AI_USAGE_INPUT_TOKENS),
        attributes.get(semconv.GEN_AI_USAGE_OUTPUT_TOKENS),
    )


def assert_partial_usage(span: ReadableSpan) -> None:
    """A stream cut before message_delta: exact input, no output count, an estimate apart."""
    assert usage_of(span) == (100, None)
    chunks = span.attributes[semconv.STREAM_CHUNKS]
    assert span.attributes[semconv.USAGE_ESTIMATE_OUTPUT_TOKENS] == max(chunks, 1)


def assert_cut_short(span: ReadableSpan) -> None:
    assert span.attributes[semconv.STREAM_COMPLETED] is False
    assert_partial_usage(span)
    assert span.status.status_code is StatusCode.UNSET


DROPPED_TYPES = {"RemoteProtocolError", "APIConnectionError"}


def test_break_then_close(client: anthropic.Anthropic, only_span, span_exporter) -> None:
    stream = client.messages.create(stream=True, **kwargs(SLOW))
    for event in stream:
        assert event.type == "message_start"
        break
    assert span_exporter.get_finished_spans() == ()
    stream.close()
    stream.close()
    assert_cut_short(only_span())


def test_with_block_exit(client: anthropic.Anthropic, only_span) -> None:
    with client.messages.create(stream=True, **kwargs(SLOW)) as stream:
        assert next(iter(stream)).type == "message_start"
    assert_cut_short(only_span())


def test_stream_helper_left_early(client: anthropic.Anthropic, only_span) -> None:
    with client.messages.stream(**kwargs(SLOW)) as stream:
        for event in stream:
            assert event.type == "message_start"
            break
    assert_cut_short(only_span())


def test_garbage_collected_stream(client: anthropic.Anthropic, only_span, span_exporter) -> None:
    stream = client.messages.create(stream=True, **kwargs(SLOW))
    events = iter(stream)
    assert next(events).type == "message_start"
    assert span_exporter.get_finished_spans() == ()
    del stream, events
    gc.collect()
    assert_cut_short(only_span())


def test_stream_dropped_unread(client: anthropic.Anthropic, only_span) -> None:
    client.messages.create(stream=True, **kwargs(SLOW))
    gc.collect()
    span = only_span()
    assert span.attributes[semconv.STREAM_COMPLETED] is False
    assert usage_of(span) == (None, None)


def test_dropped_connection_keeps_partial_usage(client: anthropic.Anthropic, only_span) -> None:
    stream = client.messages.create(stream=True, **kwargs(Scenario(usage=USAGE, drop_after=3)))
    seen = []
    with raises_dropped_connection():
        for event in stream:
            seen.append(event.type)
    assert seen[0] == "message_start"
    span = only_span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] in DROPPED_TYPES
    assert span.attributes[semconv.STREAM_COMPLETED] is False
    assert_partial_usage(span)


def test_async_endings(async_client_for, only_span) -> None:
    async def main() -> None:
        async with async_client_for() as client:
            stream = await client.messages.create(stream=True, **kwargs(SLOW))
            async for event in stream:
                assert event.type == "message_start"
                break
            await stream.close()
            assert_cut_short(only_span())

            dropping = Scenario(usage=USAGE, drop_after=3)
            stream = await client.messages.create(stream=True, **kwargs(dropping))
            with raises_dropped_connection():
                async for _ in stream:
                    pass
            span = only_span()
            assert span.attributes["error.type"] in DROPPED_TYPES
            assert_partial_usage(span)

            with pytest.raises(anthropic.RateLimitError):
                await client.messages.create(**kwargs(Scenario(error=429)))
            assert only_span().attributes["error.type"] == "RateLimitError"

    asyncio.run(main())


@pytest.mark.parametrize("stream", [False, True])
def test_api_error_passes_through(client: anthropic.Anthropic, only_span, stream: bool) -> None:
    with pytest.raises(anthropic.OverloadedError) as caught:
        client.messages.create(stream=stream, **kwargs(Scenario(error=529, retry_after=0)))
    assert caught.value.status_code == 529
    assert caught.value.type == "overloaded_error"
    span = only_span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "OverloadedError"
    assert span.attributes[semconv.GEN_AI_REQUEST_STREAM] is stream


def test_retries_make_one_span(client: anthropic.Anthropic, llm: StandIn, only_span) -> None:
    llm.push(Scenario(error=529, retry_after=0), Scenario(usage=USAGE, text="abcd"))
    retrying = client.with_options(max_retries=2)
    message = retrying.messages.create(
        model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "Hi"}]
    )
    assert message.usage.input_tokens == 40
    assert len(llm.requests) == 2
    span = only_span()
    assert usage_of(span) == (100, 1)
    assert span.status.status_code is StatusCode.UNSET


def test_fault_reading_usage_is_logged_and_harmless(
    client: anthropic.Anthropic, only_span, monkeypatch, caplog
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("forced fault")

    monkeypatch.setattr(patch, "facts_from_message", broken)
    with caplog.at_level(logging.ERROR, logger="spanledger.instrumentation"):
        message = client.messages.create(**kwargs(Scenario(usage=USAGE)))
    assert message.usage.cache_read_input_tokens == 60
    assert usage_of(only_span()) == (None, None)
    assert any(
        "forced fault" in str(record.exc_info and record.exc_info[1]) for record in caplog.records
    )


def test_fault_following_a_stream_is_logged_and_harmless(
    client: anthropic.Anthropic, only_span, monkeypatch, caplog
) -> None:
    def broken(self: object, event_type: object, data: object) -> None:
        raise RuntimeError("forced stream fault")

    monkeypatch.setattr(StreamAccumulator, "add_sse", broken)
    with (
        caplog.at_level(logging.ERROR, logger="spanledger.instrumentation"),
        client.messages.stream(**kwargs(Scenario(text="abcdefgh"))) as stream,
    ):
        assert stream.get_final_text() == "abcdefgh"
    span = only_span()
    assert span.attributes[semconv.STREAM_COMPLETED] is False
    assert any(
        "forced stream fault" in str(record.exc_info and record.exc_info[1])
        for record in caplog.records
    )


def test_fault_starting_the_span_leaves_the_call_alone(
    client: anthropic.Anthropic, span_exporter, monkeypatch, caplog
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("forced start fault")

    monkeypatch.setattr(kit_call, "start_inference_span", broken)
    with caplog.at_level(logging.ERROR, logger="spanledger.instrumentation"):
        message = client.messages.create(**kwargs(Scenario(usage=USAGE)))
    assert message.usage.input_tokens == 40
    assert any(
        "forced start fault" in str(record.exc_info and record.exc_info[1])
        for record in caplog.records
    )
    # Without our span the call is untraced by us; the SDK's own span is not suppressed then.
    scopes = [span.instrumentation_scope.name for span in span_exporter.get_finished_spans()]
    assert scopes == ["com.anthropic.sdk.python"]


def test_uninstrument_restores_the_sdk(
    client: anthropic.Anthropic, instrumentor, span_exporter, only_span
) -> None:
    from anthropic._base_client import BaseClient, SyncAPIClient

    client.messages.create(**kwargs(Scenario()))
    only_span()
    instrumentor.uninstrument()
    assert not hasattr(SyncAPIClient.request, "__wrapped__")
    assert BaseClient._tracer.fget.__module__ == "anthropic._base_client"
    client.messages.create(**kwargs(Scenario()))
    spans = span_exporter.get_finished_spans()
    assert [(span.name, span.instrumentation_scope.name) for span in spans] == [
        ("anthropic.messages.create", "com.anthropic.sdk.python")
    ]


def test_only_messages_calls_are_traced(client: anthropic.Anthropic, span_exporter) -> None:
    counted = client.messages.count_tokens(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}]
    )
    assert counted.input_tokens == 1
    scopes = [span.instrumentation_scope.name for span in span_exporter.get_finished_spans()]
    assert scopes == ["com.anthropic.sdk.python"]


def test_content_only_on_request(client: anthropic.Anthropic, only_span, monkeypatch) -> None:
    client.messages.create(**kwargs(Scenario(text="secret answer")))
    attributes = only_span().attributes
    assert "gen_ai.input.messages" not in attributes
    assert "gen_ai.output.messages" not in attributes

    monkeypatch.setenv(CAPTURE_CONTENT_ENV, "true")
    with client.messages.stream(**kwargs(Scenario(text="secret answer", chunks=3))) as stream:
        stream.until_done()
    attributes = only_span().attributes
    assert '"Hello"' in attributes["gen_ai.input.messages"]
    assert '"secret answer"' in attributes["gen_ai.output.messages"]
