"""Anthropic wire protocol: Messages (JSON and SSE, beta included) and token counting."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from typing import Any, NamedTuple

from spanledger.standin import tokens
from spanledger.standin.replies import Call, JsonReply, StreamReply, sse
from spanledger.standin.scenario import Scenario
from spanledger.standin.structured import example_json

_STREAMED_USAGE_KEYS = (
    "input_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "output_tokens",
    "cost",
)


class Answer(NamedTuple):
    """A Message's parts: what the scenario asks the model to answer."""

    model: str
    blocks: list[dict[str, Any]]
    usage: dict[str, Any]
    stop_reason: str


def answer(call: Call, s: Scenario, model: str | None = None) -> Answer:
    """The Message a Messages request gets (``model`` when the body does not name it)."""
    blocks = _content_blocks(call, s)
    usage = _usage(call, s, blocks)
    stop_reason = "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"
    return Answer(s.model or str(call.body.get("model", model or "")), blocks, usage, stop_reason)


def message_body(call: Call, parts: Answer) -> dict[str, Any]:
    """The JSON of a whole Message."""
    return {
        "id": call.id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": parts.model,
        "content": parts.blocks,
        "stop_reason": parts.stop_reason,
        "stop_sequence": None,
        "usage": parts.usage,
    }


def messages(call: Call, s: Scenario) -> JsonReply | StreamReply:
    """``POST /v1/messages`` (also ``?beta=true``), and Vertex AI's ``:rawPredict`` and
    ``:streamRawPredict`` for Claude models, which name the model in the path."""
    parts = answer(call, s, call.params.get("model"))
    if call.body.get("stream"):
        events = (sse(event, event["type"]) for event in stream_events(call, s, parts))
        return StreamReply(error_event=_stream_error, usage=parts.usage, events=events)
    return JsonReply(message_body(call, parts))


def _stream_error(sent: int, message: str | None) -> bytes:
    """The ``error`` event Anthropic sends when a stream fails after it started."""
    error = {"type": "overloaded_error", "message": message or "Overloaded"}
    return sse({"type": "error", "error": error}, "error")


def count_tokens(call: Call, s: Scenario) -> JsonReply:
    """``POST /v1/messages/count_tokens``: the default input tokens, or ``usage.input_tokens``."""
    override = (s.usage or {}).get("input_tokens")
    counted = tokens.prompt_tokens(call.body) if override is None else override
    return JsonReply({"input_tokens": counted})


def signature(thinking: str) -> str:
    """A stable stand-in for the signature Anthropic attaches to a thinking block."""
    return base64.b64encode(hashlib.sha256(thinking.encode()).digest()).decode()


def _content_blocks(call: Call, s: Scenario) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if s.reasoning is not None:
        thinking = tokens.thinking_text(s.reasoning)
        blocks.append({"type": "thinking", "thinking": thinking, "signature": signature(thinking)})
    if s.text is not None or not s.tool_calls:
        blocks.append({"type": "text", "text": _reply_text(call, s)})
    for index, tool_call in enumerate(s.tool_calls or []):
        blocks.append(
            {
                "type": "tool_use",
                "id": f"toolu_standin{call.number:06d}_{index}",
                "name": tool_call["name"],
                "input": tool_call.get("arguments", {}),
            }
        )
    return blocks


def _reply_text(call: Call, s: Scenario) -> str:
    if s.text is None:
        schema = _output_schema(call.body)
        if schema is not None:
            return example_json(schema)
    return tokens.reply_text(s.text, s.chunks or tokens.DEFAULT_CHUNKS)


def _output_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON schema of ``output_config.format`` (or the beta ``output_format``), if any."""
    config = body.get("output_config")
    candidates = [config.get("format") if isinstance(config, dict) else None]
    candidates.append(body.get("output_format"))
    for fmt in candidates:
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            schema = fmt.get("schema")
            return schema if isinstance(schema, dict) else {}
    return None


def _usage(call: Call, s: Scenario, blocks: list[dict[str, Any]]) -> dict[str, Any]:
    output = tokens.reasoning_tokens(s.reasoning)
    for block in blocks:
        if block["type"] == "text":
            output += tokens.estimate_tokens(block["text"])
        elif block["type"] == "tool_use":
            output += tokens.estimate_tokens(block["name"] + json.dumps(block["input"]))
    defaults: dict[str, Any] = {
        "input_tokens": tokens.prompt_tokens(call.body),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": output,
        "service_tier": "standard",
    }
    override = s.usage or {}
    usage = tokens.merge(defaults, override)
    creation = usage.get("cache_creation")
    if "cache_creation" not in override and isinstance(creation, dict):
        creation["ephemeral_5m_input_tokens"] = usage["cache_creation_input_tokens"]
    elif "cache_creation_input_tokens" not in override and isinstance(creation, dict):
        usage["cache_creation_input_tokens"] = sum(
            v for v in creation.values() if isinstance(v, int)
        )
    if s.cost is not None:
        usage["cost"] = s.cost
    return usage


def stream_events(call: Call, s: Scenario, parts: Answer) -> Iterator[dict[str, Any]]:
    """The events of a streamed Message, decoded (each has its ``type``)."""
    usage = parts.usage
    started_usage = {**usage, "output_tokens": min(1, _int(usage.get("output_tokens")))}
    started_usage.pop("cost", None)
    yield {
        "type": "message_start",
        "message": {
            "id": call.id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": parts.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": started_usage,
        },
    }
    yield {"type": "ping"}
    for index, block in enumerate(parts.blocks):
        yield from _block_events(index, block, s)
    final = {k: usage[k] for k in _STREAMED_USAGE_KEYS if k in usage}
    delta = {"stop_reason": parts.stop_reason, "stop_sequence": None}
    yield {"type": "message_delta", "delta": delta, "usage": final}
    yield {"type": "message_stop"}


def _block_events(index: int, block: dict[str, Any], s: Scenario) -> Iterator[dict[str, Any]]:
    kind = block["type"]

    def event(name: str, **fields: Any) -> dict[str, Any]:
        return {"type": name, "index": index, **fields}

    if kind == "thinking":
        start = {"type": "thinking", "thinking": "", "signature": ""}
        yield event("content_block_start", content_block=start)
        for piece in tokens.split(block["thinking"], 2) if block["thinking"] else []:
            yield event("content_block_delta", delta={"type": "thinking_delta", "thinking": piece})
        signature_delta = {"type": "signature_delta", "signature": block["signature"]}
        yield event("content_block_delta", delta=signature_delta)
    elif kind == "text":
        yield event("content_block_start", content_block={"type": "text", "text": ""})
        for piece in tokens.split(block["text"], s.chunks or tokens.DEFAULT_CHUNKS):
            if piece:
                yield event("content_block_delta", delta={"type": "text_delta", "text": piece})
    else:
        start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
        yield event("content_block_start", content_block=start)
        delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        yield event("content_block_delta", delta=delta)
    yield event("content_block_stop")


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0
