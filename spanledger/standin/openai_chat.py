"""OpenAI chat completions and legacy text completions, as JSON and as SSE chunks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from spanledger.standin import tokens
from spanledger.standin.openai_shared import (
    FINGERPRINT,
    data_error,
    dict_or_none,
    finish_usage,
    output_tokens,
    reply_text,
    tool_calls,
)
from spanledger.standin.replies import Call, JsonReply, StreamReply, sse
from spanledger.standin.scenario import Scenario


def chat_completion(call: Call, s: Scenario) -> JsonReply | StreamReply:
    """``POST /v1/chat/completions``."""
    body = call.body
    model = s.model or str(body.get("model", ""))
    calls = tool_calls(call, s)
    response_format = body.get("response_format")
    text = "" if calls and s.text is None else reply_text(s, dict_or_none(response_format))
    usage = _chat_usage(call, s, text, calls)
    finish = "tool_calls" if calls else "stop"
    if body.get("stream"):
        options = body.get("stream_options") or {}
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        return StreamReply(
            error_event=data_error,
            usage=usage,
            events=_chat_events(
                call,
                s,
                model=model,
                text=text,
                calls=calls,
                finish=finish,
                usage=usage,
                include_usage=include_usage,
            ),
        )
    message: dict[str, Any] = {
        "role": "assistant",
        "content": text if text or not calls else None,
        "refusal": None,
        "annotations": [],
    }
    if calls:
        message["tool_calls"] = [
            {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}
            for cid, name, args in calls
        ]
    return JsonReply(
        {
            "id": call.id("chatcmpl-"),
            "object": "chat.completion",
            "created": call.created,
            "model": model,
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            ],
            "usage": usage,
            "service_tier": "default",
            "system_fingerprint": FINGERPRINT,
        }
    )


def _chat_usage(
    call: Call, s: Scenario, text: str, calls: list[tuple[str, str, str]]
) -> dict[str, Any]:
    prompt = tokens.prompt_tokens(call.body)
    completion = output_tokens(text, calls, s)
    defaults = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": tokens.reasoning_tokens(s.reasoning),
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }
    usage = tokens.merge(defaults, s.usage)
    return finish_usage(usage, s, ("total_tokens", "prompt_tokens", "completion_tokens"))


def _chat_events(
    call: Call,
    s: Scenario,
    *,
    model: str,
    text: str,
    calls: list[tuple[str, str, str]],
    finish: str,
    usage: dict[str, Any],
    include_usage: bool,
) -> Iterator[bytes]:
    head = {
        "id": call.id("chatcmpl-"),
        "object": "chat.completion.chunk",
        "created": call.created,
        "model": model,
        "service_tier": "default",
        "system_fingerprint": FINGERPRINT,
    }

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        data: dict[str, Any] = {
            **head,
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
        if include_usage:
            data["usage"] = None
        return sse(data)

    yield chunk({"role": "assistant", "content": "" if not calls else None, "refusal": None})
    if text:
        for piece in tokens.split(text, s.chunks or tokens.DEFAULT_CHUNKS):
            yield chunk({"content": piece})
    for index, (cid, name, args) in enumerate(calls):
        start = {"index": index, "id": cid, "type": "function"}
        yield chunk({"tool_calls": [{**start, "function": {"name": name, "arguments": ""}}]})
        yield chunk({"tool_calls": [{"index": index, "function": {"arguments": args}}]})
    yield chunk({}, finish)
    if include_usage:
        yield sse({**head, "choices": [], "usage": usage})
    yield sse("[DONE]")


def completion(call: Call, s: Scenario) -> JsonReply | StreamReply:
    """``POST /v1/completions`` (legacy text completions)."""
    body = call.body
    model = s.model or str(body.get("model", ""))
    text = tokens.reply_text(s.text, s.chunks or tokens.DEFAULT_CHUNKS)
    usage = _chat_usage(call, s, text, [])
    head = {
        "id": call.id("cmpl-"),
        "object": "text_completion",
        "created": call.created,
        "model": model,
        "system_fingerprint": FINGERPRINT,
    }
    if not body.get("stream"):
        choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": "stop"}
        return JsonReply({**head, "choices": [choice], "usage": usage})
    options = body.get("stream_options") or {}
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    events = _completion_events(head, text, s, usage, include_usage=include_usage)
    return StreamReply(events, data_error, usage=usage)


def _completion_events(
    head: dict[str, Any],
    text: str,
    s: Scenario,
    usage: dict[str, Any],
    *,
    include_usage: bool,
) -> Iterator[bytes]:
    pieces = tokens.split(text, s.chunks or tokens.DEFAULT_CHUNKS)
    for number, piece in enumerate(pieces):
        finish = "stop" if number == len(pieces) - 1 else None
        choice = {"text": piece, "index": 0, "logprobs": None, "finish_reason": finish}
        yield sse({**head, "choices": [choice], **({"usage": None} if include_usage else {})})
    if include_usage:
        yield sse({**head, "choices": [], "usage": usage})
    yield sse("[DONE]")
