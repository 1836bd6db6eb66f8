"""The Bedrock wire protocol of the stand-in: Converse JSON, the AWS event-stream framing with
its checksums, each model family's InvokeModel body and stream, and errors."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from urllib.parse import quote

import httpx2
import pytest
from botocore.eventstream import EventStreamBuffer

from spanledger.standin import DEFAULT_TEXT, Scenario, StandIn, estimate_tokens
from spanledger.standin.aws_eventstream import message

MESSAGES = [{"role": "user", "content": [{"text": "What is the capital of France?"}]}]
NOVA = "/model/us.amazon.nova-lite-v1%3A0"


def frames(data: bytes) -> list[tuple[dict[str, str], bytes]]:
    """Split an event stream into ``(headers, payload)``, checking both checksums."""
    found = []
    while data:
        total, headers_length = struct.unpack(">II", data[:8])
        assert struct.unpack(">I", data[8:12])[0] == zlib.crc32(data[:8])
        assert struct.unpack(">I", data[total - 4 : total])[0] == zlib.crc32(data[: total - 4])
        headers, at = {}, 12
        while at < 12 + headers_length:
            name_length = data[at]
            name = data[at + 1 : at + 1 + name_length].decode()
            at += 1 + name_length
            assert data[at] == 7  # a string value
            (value_length,) = struct.unpack(">H", data[at + 1 : at + 3])
            headers[name] = data[at + 3 : at + 3 + value_length].decode()
            at += 3 + value_length
        found.append((headers, data[12 + headers_length : total - 4]))
        data = data[total:]
    return found


def test_a_message_is_framed_as_botocore_reads_it() -> None:
    framed = message({":event-type": "chunk", ":message-type": "event"}, b'{"a":1}')

    buffer = EventStreamBuffer()
    buffer.add_data(framed)
    (parsed,) = list(buffer)

    assert parsed.headers == {":event-type": "chunk", ":message-type": "event"}
    assert parsed.payload == b'{"a":1}'
    assert frames(framed) == [(parsed.headers, b'{"a":1}')]


def test_converse_answers_with_usage(llm: StandIn) -> None:
    usage = {"cacheReadInputTokens": 2000, "cacheWriteInputTokens": 500}
    with httpx2.Client(base_url=llm.url) as http:
        reply = http.post(
            f"{NOVA}/converse",
            json={"messages": MESSAGES},
            headers=Scenario(usage=usage).to_header(),
        )

    assert reply.headers["x-amzn-requestid"].startswith("req_standin")
    body = reply.json()
    assert body["output"]["message"] == {"role": "assistant", "content": [{"text": DEFAULT_TEXT}]}
    assert body["stopReason"] == "end_turn"
    output = estimate_tokens(DEFAULT_TEXT)
    assert body["usage"] == {
        "inputTokens": 8,
        "outputTokens": output,
        "cacheReadInputTokens": 2000,
        "cacheWriteInputTokens": 500,
        "totalTokens": 8 + output + 2500,
    }


def test_converse_stream_sends_framed_events_ending_with_the_usage(llm: StandIn) -> None:
    with httpx2.Client(base_url=llm.url) as http:
        reply = http.post(f"{NOVA}/converse-stream", json={"messages": MESSAGES})

    assert reply.headers["content-type"] == "application/vnd.amazon.eventstream"
    events = frames(reply.content)
    assert {h[":message-type"] for h, _ in events} == {"event"}
    assert {h[":content-type"] for h, _ in events} == {"application/json"}
    kinds = [h[":event-type"] for h, _ in events]
    assert kinds[0] == "messageStart"
    assert kinds[-3:] == ["contentBlockStop", "messageStop", "metadata"]
    texts = [
        json.loads(p)["delta"]["text"] for h, p in events if h[":event-type"] == "contentBlockDelta"
    ]
    assert "".join(texts) == DEFAULT_TEXT
    assert json.loads(events[-1][1])["usage"]["inputTokens"] == 8


def test_a_failed_stream_ends_with_an_exception_message(llm: StandIn) -> None:
    with httpx2.Client(base_url=llm.url) as http:
        reply = http.post(
            f"{NOVA}/converse-stream",
            json={"messages": MESSAGES},
            headers=Scenario(stream_error_after=1).to_header(),
        )

    (_, _), (headers, payload) = frames(reply.content)
    assert headers[":message-type"] == "exception"
    assert headers[":exception-type"] == "modelStreamErrorException"
    assert json.loads(payload) == {"message": "The model failed to stream its answer."}


@pytest.mark.parametrize(
    ("model", "body", "usage_of"),
    [
        (
            "anthropic.claude-3-haiku-20240307-v1:0",
            {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 9, "messages": MESSAGES},
            lambda b: (b["usage"]["input_tokens"], b["usage"]["output_tokens"]),
        ),
        (
            "amazon.nova-pro-v1:0",
            {"schemaVersion": "messages-v1", "messages": MESSAGES},
            lambda b: (b["usage"]["inputTokens"], b["usage"]["outputTokens"]),
        ),
        (
            "meta.llama3-8b-instruct-v1:0",
            {"prompt": "What is the capital of France?"},
            lambda b: (b["prompt_token_count"], b["generation_token_count"]),
        ),
        ("mistral.mistral-7b-instruct-v0:2", {"prompt": "What is the capital of France?"}, None),
    ],
    ids=["anthropic", "nova", "llama", "mistral"],
)
def test_invoke_model_answers_in_the_family_s_body(llm: StandIn, model, body, usage_of) -> None:
    with httpx2.Client(base_url=llm.url) as http:
        reply = http.post(f"/model/{quote(model, safe='')}/invoke", json=body)
        streamed = http.post(
            f"/model/{quote(model, safe='')}/invoke-with-response-stream", json=body
        )

    output = estimate_tokens(DEFAULT_TEXT)
    assert reply.headers["x-amzn-bedrock-input-token-count"] == "8"
    assert reply.headers["x-amzn-bedrock-output-token-count"] == str(output)
    if usage_of is not None:
        assert usage_of(reply.json()) == (8, output)
    chunks = [
        json.loads(base64.b64decode(json.loads(p)["bytes"])) for _, p in frames(streamed.content)
    ]
    assert {h[":event-type"] for h, _ in frames(streamed.content)} == {"chunk"}
    metrics = chunks[-1]["amazon-bedrock-invocationMetrics"]
    assert (metrics["inputTokenCount"], metrics["outputTokenCount"]) == (8, output)


def test_an_arn_model_id_is_decoded_from_the_path(llm: StandIn) -> None:
    arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-pro-v1:0"
    with httpx2.Client(base_url=llm.url) as http:
        reply = http.post(f"/model/{quote(arn, safe='')}/invoke", json={"messages": MESSAGES})

    assert reply.status_code == 200
    assert "output" in reply.json()


def test_errors_name_their_code_in_the_error_type_header(llm: StandIn) -> None:
    with httpx2.Client(base_url=llm.url) as http:
        reply = http.post(
            f"{NOVA}/converse",
            json={"messages": MESSAGES},
            headers=Scenario(error=429, error_message="Too many requests").to_header(),
        )
        unknown = http.post("/model/acme.unknown-v1/invoke", json={"prompt": "x"})

    assert reply.status_code == 429
    assert reply.headers["x-amzn-errortype"].startswith("ThrottlingException:")
    assert reply.json() == {"message": "Too many requests"}
    assert unknown.status_code == 400
    assert "acme.unknown-v1" in unknown.json()["message"]
