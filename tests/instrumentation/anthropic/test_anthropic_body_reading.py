"""The pure parts: SSE decoding, usage arithmetic and following a body chunk by chunk."""

from __future__ import annotations

import gzip
import json
import random
import re
import zlib

import pytest

from spanledger.instrumentation.anthropic.patch import (
    message_body_reader,
    read_message_body,
    to_inference_usage,
)
from spanledger.instrumentation.anthropic.usage import (
    MessageOutcome,
    StreamAccumulator,
    facts_from_message,
)
from spanledger.instrumentation.genai.sse import ServerSentEvent, SSEDecoder, marker_strings

READ_EVENTS = StreamAccumulator().wanted_events
READ_EVENTS_WITH_TEXT = StreamAccumulator(keep_text=True).wanted_events

USAGE = {
    "input_tokens": 12,
    "output_tokens": 1,
    "cache_read_input_tokens": 100,
    "cache_creation_input_tokens": 40,
    "cache_creation": {"ephemeral_5m_input_tokens": 30, "ephemeral_1h_input_tokens": 10},
}


def stream_events(final_output: int = 57) -> list[tuple[str, dict]]:
    start = {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [],
        "stop_reason": None,
        "usage": USAGE,
    }
    return [
        ("message_start", {"type": "message_start", "message": start}),
        ("ping", {"type": "ping"}),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking"}},
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "thinking_delta", "thinking": "Let me think."},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "text_delta", "text": "Hi"},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "text_delta", "text": " there"},
            },
        ),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {
                    "output_tokens": final_output,
                    "output_tokens_details": {"thinking_tokens": 20},
                },
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]


def sse_bytes(events: list[tuple[str, dict]], newline: str = "\n") -> bytes:
    text = "".join(
        f"event: {name}{newline}data: {json.dumps(data)}{newline}{newline}" for name, data in events
    )
    return text.encode()


def decode_all(body: bytes, sizes: int) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for start in range(0, len(body), sizes):
        events.extend(decoder.feed(body[start : start + sizes]))
    events.extend(decoder.close())
    return events


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_sse_decoder_gives_the_same_events_for_every_chunking(newline: str) -> None:
    body = sse_bytes(stream_events(), newline)
    whole = decode_all(body, len(body))
    assert [event.event for event in whole] == [name for name, _ in stream_events()]
    assert json.loads(whole[-2].data)["usage"]["output_tokens"] == 57
    for size in (1, 2, 3, 7, 64):
        assert decode_all(body, size) == whole


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_sse_decoder_told_what_it_wants_gives_exactly_those_events(newline: str) -> None:
    events = [
        ("ping", {"type": "ping", "note": "event: message_start is only text here"}),
        *stream_events(),
        ("content_block_delta", {"type": "content_block_delta", "delta": {"text": "event:"}}),
    ]
    body = sse_bytes(events, newline) + b"data: no type\n\n\n\nevent:message_delta\ndata: {}\n\n"
    wanted = {"message_start", "message_delta", "message_stop"}
    everything = decode_all(body, len(body))
    expected = [event for event in everything if event.event in wanted]
    assert [event.event for event in expected] == [
        "message_start",
        "message_delta",
        "message_stop",
        "message_delta",
    ]
    for size in (1, 2, 3, 7, 20, 64, len(body)):
        decoder = SSEDecoder(wanted=wanted)
        found: list[ServerSentEvent] = []
        for start in range(0, len(body), size):
            found.extend(decoder.feed(body[start : start + size]))
        found.extend(decoder.close())
        assert found == expected, size


def reference_events(body: bytes) -> list[ServerSentEvent]:
    """The events of a whole body by the format's rules, read line by line in one go.

    Like the decoder, it also gives an event that the end of the body leaves unterminated.
    """
    lines = re.split(r"\r\n|\r|\n", body.decode("utf-8", errors="replace"))
    unterminated = lines.pop()
    if unterminated:
        lines.append(unterminated)
    events: list[ServerSentEvent] = []
    kind: str | None = None
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                events.append(ServerSentEvent(kind, "\n".join(data)))
            kind, data = None, []
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                kind = value
            elif name == "data":
                data.append(value)
    if data:
        events.append(ServerSentEvent(kind, "\n".join(data)))
    return events


NAMES = [
    "message_start",
    "message_delta",
    "message_stop",
    "error",
    "content_block_delta",
    "content_block_start",
    "ping",
    "message_startle",
    "errors",
    "",
]
DATA = [
    '{"type": "content_block_delta", "delta": {"text": "Pa"}}',
    '{"text": "event: message_start\\nevent:error"}',
    '{"note": "message_delta error message_stop"}',
    "caf\u00e9 \u2014 event: message_stop",
    "",
]


def random_event(rng: random.Random) -> str:
    """One event, mostly as the Messages API writes it, sometimes in a rarer valid form."""
    name, data = rng.choice(NAMES), rng.choice(DATA)
    form = rng.randrange(12)
    if form == 0:
        return f"event:{name}\ndata: {data}\n\n"
    if form == 1:
        return f"event:  {name}\ndata: {data}\n\n"
    if form == 2:
        return f"event: {rng.choice(NAMES)}\nevent: {name}\ndata: {data}\n\n"
    if form == 3:
        return f": event: {name}\nid: 7\nretry: 10\nevent: {name}\ndata: {data}\ndata: 2\n\n"
    if form == 4:
        return f"data: {data}\n\n\n"
    if form == 5:
        return f"event: {name}\n\n"
    if form == 6:
        return f"event\ndata: {data}\n\n"
    return f"event: {name}\ndata: {data}\n\n"


def random_body(rng: random.Random) -> bytes:
    text = "".join(random_event(rng) for _ in range(rng.randrange(1, 40)))
    if rng.random() < 0.2:
        text += f"event: {rng.choice(NAMES)}\ndata: unterminated"
    return text.encode()


def random_cuts(rng: random.Random, body: bytes) -> list[bytes]:
    """``body`` in pieces of random sizes, from one byte to a few events."""
    chunks: list[bytes] = []
    start = 0
    while start < len(body):
        size = rng.choice((1, 2, 3, rng.randrange(1, 40), rng.randrange(40, 400)))
        chunks.append(body[start : start + size])
        start += size
    return chunks


@pytest.mark.parametrize(
    "wanted",
    [
        READ_EVENTS,
        READ_EVENTS_WITH_TEXT,
        frozenset({"ping", "message_stop"}),
        frozenset({""}),
        None,
    ],
)
def test_sse_decoder_agrees_with_the_format_for_random_streams_and_chunkings(wanted) -> None:
    rng = random.Random(20261124)
    for _ in range(150):
        body = random_body(rng)
        expected = [
            event for event in reference_events(body) if wanted is None or event.event in wanted
        ]
        for chunks in ([body], random_cuts(rng, body), random_cuts(rng, body)):
            decoder = SSEDecoder(wanted=wanted)
            found: list[ServerSentEvent] = []
            for chunk in chunks:
                found.extend(decoder.feed(chunk))
            found.extend(decoder.close())
            assert found == expected, (body, chunks)


def test_marker_strings_share_a_start_and_find_every_name() -> None:
    markers = marker_strings(READ_EVENTS)
    assert markers == (b"error", b"message_")
    for name in READ_EVENTS_WITH_TEXT:
        assert any(marker in name.encode() for marker in marker_strings(READ_EVENTS_WITH_TEXT))


def test_sse_decoder_joins_data_lines_skips_comments_and_flushes_an_unterminated_event() -> None:
    decoder = SSEDecoder()
    body = b": keep-alive\nevent: a\ndata: one\ndata: two\n\nevent: orphan\n\ndata: tail"
    events = list(decoder.feed(body)) + list(decoder.close())
    assert events == [ServerSentEvent("a", "one\ntwo"), ServerSentEvent(None, "tail")]


def test_usage_of_a_message_counts_cache_reads_and_writes_as_input() -> None:
    facts = facts_from_message(
        {
            "id": "msg_9",
            "model": "claude-haiku-4-5",
            "stop_reason": "max_tokens",
            "usage": {**USAGE, "output_tokens": 33},
        }
    )
    usage = to_inference_usage(facts)
    assert usage.input_tokens == 12 + 100 + 40
    assert usage.output_tokens == 33
    assert usage.cache_read_input_tokens == 100
    assert usage.cache_creation_input_tokens == 40
    assert facts.usage.cache_creation_1h_input_tokens == 10
    assert facts.usage.cache_creation_5m_input_tokens == 30
    assert usage.finish_reasons == ["max_tokens"]
    assert (usage.response_id, usage.response_model) == ("msg_9", "claude-haiku-4-5")


def test_usage_without_cache_fields_leaves_them_unknown() -> None:
    usage = to_inference_usage(
        facts_from_message({"usage": {"input_tokens": 5, "output_tokens": True}})
    )
    assert usage.input_tokens == 5
    assert usage.output_tokens is None
    assert usage.cache_read_input_tokens is None
    assert usage.cache_creation_input_tokens is None


def test_stream_usage_takes_the_cumulative_message_delta_values() -> None:
    accumulator = StreamAccumulator(keep_text=True)
    for name, data in stream_events():
        accumulator.add(name, data)
    accumulator.add(
        "message_delta",
        {"type": "message_delta", "delta": {}, "usage": {"output_tokens": 60, "input_tokens": 13}},
    )
    usage = to_inference_usage(accumulator.facts)
    assert accumulator.completed
    assert usage.output_tokens == 60
    assert usage.input_tokens == 13 + 100 + 40
    assert usage.reasoning_output_tokens == 20
    assert usage.finish_reasons == ["end_turn"]
    assert accumulator.facts.output_text == ["Hi there"]


def follow(
    body: bytes,
    *,
    encoding: str = "",
    sizes: int = 5,
    exhausted: bool = True,
    chunks_per_read: int | None = None,
) -> MessageOutcome:
    outcomes: list[MessageOutcome] = []
    watcher = message_body_reader(
        content_type="text/event-stream; charset=utf-8",
        content_encoding=encoding,
        on_end=outcomes.append,
    )
    if chunks_per_read is not None:
        watcher.chunks_per_read = chunks_per_read
    for start in range(0, len(body), sizes):
        watcher.feed(body[start : start + sizes])
    watcher.finish(exhausted=exhausted)
    watcher.finish(exhausted=True)
    assert len(outcomes) == 1
    return outcomes[0]


@pytest.mark.parametrize(
    "encoding, encode",
    [
        ("", lambda data: data),
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
    ],
)
def test_watcher_follows_a_stream_through_its_content_encoding(encoding, encode) -> None:
    outcome = follow(encode(sse_bytes(stream_events())), encoding=encoding)
    assert outcome.streamed and outcome.completed and outcome.error_type is None
    assert outcome.facts is not None
    assert to_inference_usage(outcome.facts).output_tokens == 57
    assert to_inference_usage(outcome.facts).input_tokens == 152


def long_stream(deltas: int = 150) -> list[tuple[str, dict]]:
    """A stream whose text comes in many deltas, between its start and its end."""
    events = stream_events()
    delta = events[5]
    return [*events[:5], *([delta] * deltas), *events[5:]]


@pytest.mark.parametrize("encoding", ["", "gzip"])
def test_watcher_reads_kept_chunks_alike_however_many_at_a_time(encoding: str) -> None:
    body = sse_bytes(long_stream())
    encoded = gzip.compress(body) if encoding else body
    whole = follow(encoded, encoding=encoding, sizes=len(encoded))
    assert whole.completed and whole.facts is not None
    assert to_inference_usage(whole.facts).output_tokens == 57
    for chunks_per_read in (1, 2, 7, 32, 1000):
        for sizes in (1, 13, 200):
            outcome = follow(
                encoded, encoding=encoding, sizes=sizes, chunks_per_read=chunks_per_read
            )
            assert outcome == whole, (chunks_per_read, sizes)


def test_watcher_keeps_partial_usage_of_a_cut_stream() -> None:
    events = stream_events()[:4]
    outcome = follow(sse_bytes(events), exhausted=False)
    assert not outcome.completed
    assert outcome.facts is not None
    usage = to_inference_usage(outcome.facts)
    # message_start's output count is a count so far: never given as the call's output.
    assert (usage.input_tokens, usage.output_tokens) == (152, None)
    assert outcome.facts.usage.output_tokens == 1
    assert not outcome.facts.output_final


def test_watcher_reports_an_error_event() -> None:
    events = [
        *stream_events()[:2],
        ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}),
    ]
    outcome = follow(sse_bytes(events))
    assert outcome.error_type == "overloaded_error"
    assert not outcome.completed


def test_watcher_gives_up_quietly_on_an_encoding_it_cannot_undo() -> None:
    outcome = follow(b"\x8b\x00\x01garbage", encoding="br")
    assert outcome.facts is None and not outcome.completed


def test_a_json_body_read_whole() -> None:
    message = {"id": "m", "model": "claude-x", "content": [{"type": "text", "text": "ok"}]}
    message["usage"] = {"input_tokens": 3, "output_tokens": 4}
    outcome = read_message_body("application/json", json.dumps(message).encode(), keep_text=True)
    assert outcome.completed and not outcome.streamed
    assert outcome.facts is not None
    assert (to_inference_usage(outcome.facts).input_tokens, outcome.facts.output_text) == (
        3,
        ["ok"],
    )
