"""Wire variants the stand-in does not produce: an ``error`` event inside a stream, gzip bodies.

A minimal Messages endpoint on 127.0.0.1 answers with a body fixed per test.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anthropic
import pytest
from opentelemetry.trace import StatusCode

from spanledger import semconv

MODEL = "claude-haiku-4-5"
START = {
    "type": "message_start",
    "message": {
        "id": "msg_wire",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 11, "cache_read_input_tokens": 5, "output_tokens": 1},
    },
}
OVERLOADED = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


def sse(*events: dict) -> bytes:
    return b"".join(
        f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode() for event in events
    )


def full_stream() -> bytes:
    return sse(
        START,
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn"},
            "usage": {"output_tokens": 9},
        },
        {"type": "message_stop"},
    )


class Reply:
    """What the endpoint sends next: a body, its content type and its content encoding."""

    body = b""
    content_type = "text/event-stream"
    encoding = ""


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        body = gzip.compress(Reply.body) if Reply.encoding == "gzip" else Reply.body
        self.send_response(200)
        self.send_header("content-type", Reply.content_type)
        if Reply.encoding:
            self.send_header("content-encoding", Reply.encoding)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def wire_client(tracer_provider, instrumentor) -> Iterator[anthropic.Anthropic]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        with anthropic.Anthropic(
            base_url=f"http://127.0.0.1:{server.server_address[1]}",
            api_key="test-key",
            max_retries=0,
            open_telemetry={"tracer_provider": tracer_provider},
        ) as client:
            yield client
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        Reply.body, Reply.content_type, Reply.encoding = b"", "text/event-stream", ""


def create(client: anthropic.Anthropic, *, stream: bool):
    return client.messages.create(
        model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "Hi"}], stream=stream
    )


def test_error_event_inside_a_stream(wire_client: anthropic.Anthropic, only_span) -> None:
    Reply.body = sse(START, {"type": "ping"}, OVERLOADED)
    stream = create(wire_client, stream=True)
    with pytest.raises(anthropic.APIStatusError) as caught:
        for _ in stream:
            pass
    assert caught.value.type == "overloaded_error"
    span = only_span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "overloaded_error"
    assert span.attributes[semconv.STREAM_COMPLETED] is False
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 16


def test_gzip_stream(wire_client: anthropic.Anthropic, only_span) -> None:
    Reply.body, Reply.encoding = full_stream(), "gzip"
    with wire_client.messages.stream(
        model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "Hi"}]
    ) as stream:
        assert stream.get_final_text() == "Hi"
    span = only_span()
    assert span.attributes[semconv.STREAM_COMPLETED] is True
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 16
    assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 9
    assert span.attributes[semconv.GEN_AI_RESPONSE_ID] == "msg_wire"


def test_gzip_json_read_through_a_streaming_response(
    wire_client: anthropic.Anthropic, only_span
) -> None:
    message = {**START["message"], "content": [{"type": "text", "text": "Hi"}]}
    message["usage"] = {"input_tokens": 11, "cache_creation_input_tokens": 4, "output_tokens": 3}
    Reply.body, Reply.content_type, Reply.encoding = (
        json.dumps(message).encode(),
        "application/json",
        "gzip",
    )
    with wire_client.messages.with_streaming_response.create(
        model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "Hi"}]
    ) as response:
        assert response.parse().usage.output_tokens == 3
    span = only_span()
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 15
    assert span.attributes[semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] == 4
    assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 3
