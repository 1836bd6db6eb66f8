"""OpenAI wire protocol: chat completions, responses and embeddings, as JSON and as SSE."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from collections.abc import Iterator
from typing import Any

from spanledger.standin import tokens
from spanledger.standin.replies import Call, JsonReply, StreamReply, sse
from spanledger.standin.scenario import Scenario
from spanledger.standin.structured import example_json

DEFAULT_EMBEDDING_DIMENSIONS = 8
"""Vector length when the request does not ask for ``dimensions``."""

_FINGERPRINT = "fp_standin"
_STREAM_ERROR = "The server had an error while processing your request. Sorry about that!"


# -- shared -------------------------------------------------------------------------------


def _reply_text(call: Call, s: Scenario, schema_format: dict[str, Any] | None) -> str:
    if s.text is None and schema_format is not None:
        if schema_format.get("type") == "json_schema":
            schema = schema_format.get("schema")
            if schema is None and isinstance(schema_format.get("json_schema"), dict):
                schema = schema_format["json_schema"].get("schema")
            return example_json(schema or {})
        if schema_format.get("type") == "json_object":
            return json.dumps({"reply": tokens.DEFAULT_TEXT})
    return tokens.reply_text(s.text, s.chunks or tokens.DEFAULT_CHUNKS)


def _tool_calls(call: Call, s: Scenario) -> list[tuple[str, str, str]]:
    """``(call_id, name, arguments JSON)`` for each tool call the scenario asks for."""
    return [
        (f"call_standin{call.number:06d}_{i}", c["name"], json.dumps(c.get("arguments", {})))
        for i, c in enumerate(s.tool_calls or [])
    ]


def _output_tokens(text: str, calls: list[tuple[str, str, str]], s: Scenario) -> int:
    visible = tokens.estimate_tokens(text) if text or not calls else 0
    visible += sum(tokens.estimate_tokens(name + args) for _, name, args in calls)
    return visible + tokens.reasoning_tokens(s.reasoning)


def _finish_usage(
    usage: dict[str, Any], s: Scenario, total: tuple[str, str, str]
) -> dict[str, Any]:
    """Recompute the total unless the scenario set it, and add the reported cost."""
    total_key, input_key, output_key = total
    if total_key not in (s.usage or {}):
        usage[total_key] = _int(usage.get(input_key)) + _int(usage.get(output_key))
    if s.cost is not None:
        usage["cost"] = s.cost
    return usage


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def _data_error(sent: int, message: str | None) -> bytes:
    """A chat or completions stream's error: a ``data:`` line holding an ``error`` object."""
    error = {"message": message or _STREAM_ERROR, "type": "server_error", "param": None}
    return sse({"error": {**error, "code": None}})


def _response_error(sent: int, message: str | None) -> bytes:
    """A Responses stream's ``error`` event."""
    fields = {"code": "server_error", "message": message or _STREAM_ERROR, "param": None}
    return sse({"type": "error", **fields, "sequence_number": sent}, "error")


# -- chat completions ---------------------------------------------------------------------


def chat_completion(call: Call, s: Scenario) -> JsonReply | StreamReply:
    """``POST /v1/chat/completions``."""
    body = call.body
    model = s.model or str(body.get("model", ""))
    calls = _tool_calls(call, s)
    response_format = body.get("response_format")
    text = "" if calls and s.text is None else _reply_text(call, s, _dict_or_none(response_format))
    usage = _chat_usage(call, s, text, calls)
    finish = "tool_calls" if calls else "stop"
    if body.get("stream"):
        options = body.get("stream_options") or {}
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        return StreamReply(
            error_event=_data_error,
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
            "system_fingerprint": _FINGERPRINT,
        }
    )


def _chat_usage(
    call: Call, s: Scenario, text: str, calls: list[tuple[str, str, str]]
) -> dict[str, Any]:
    prompt = tokens.prompt_tokens(call.body)
    completion = _output_tokens(text, calls, s)
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
    return _finish_usage(usage, s, ("total_tokens", "prompt_tokens", "completion_tokens"))


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
        "system_fingerprint": _FINGERPRINT,
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


# -- responses ----------------------------------------------------------------------------


def response(call: Call, s: Scenario) -> JsonReply | StreamReply:
    """``POST /v1/responses``."""
    body = call.body
    model = s.model or str(body.get("model", ""))
    calls = _tool_calls(call, s)
    text_config = body.get("text") if isinstance(body.get("text"), dict) else None
    schema_format = _dict_or_none(text_config.get("format")) if text_config else None
    text = "" if calls and s.text is None else _reply_text(call, s, schema_format)
    usage = _responses_usage(call, s, text, calls)
    items = _response_items(call, s, text, calls)
    final = _response_object(call, model, "completed", items, usage)
    if body.get("stream"):
        events = _response_events(call, s, model=model, text=text, items=items, final=final)
        return StreamReply(events, _response_error)
    return JsonReply(final)


def _responses_usage(
    call: Call, s: Scenario, text: str, calls: list[tuple[str, str, str]]
) -> dict[str, Any]:
    prompt = tokens.prompt_tokens(call.body)
    output = _output_tokens(text, calls, s)
    defaults = {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": tokens.reasoning_tokens(s.reasoning)},
        "total_tokens": prompt + output,
    }
    usage = tokens.merge(defaults, s.usage)
    return _finish_usage(usage, s, ("total_tokens", "input_tokens", "output_tokens"))


def _response_items(
    call: Call, s: Scenario, text: str, calls: list[tuple[str, str, str]]
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    if s.reasoning is not None:
        items.append({"id": call.id("rs_"), "type": "reasoning", "summary": []})
    if text or not calls:
        items.append(
            {
                "id": call.id("msg_"),
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [_output_text(text)],
            }
        )
    for index, (cid, name, args) in enumerate(calls):
        items.append(
            {
                "id": f"fc_standin{call.number:06d}_{index}",
                "type": "function_call",
                "status": "completed",
                "call_id": cid,
                "name": name,
                "arguments": args,
            }
        )
    return items


def _output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _response_object(
    call: Call,
    model: str,
    status: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None,
) -> dict[str, Any]:
    body = call.body
    text = body.get("text") if isinstance(body.get("text"), dict) else {}
    return {
        "id": call.id("resp_"),
        "object": "response",
        "created_at": call.created,
        "status": status,
        "background": False,
        "completed_at": call.created if status == "completed" else None,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "metadata": body.get("metadata") or {},
        "model": model,
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
        "service_tier": "default",
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": {"format": {"type": "text"}, **text},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "usage": usage,
        "user": None,
    }


def _response_events(
    call: Call,
    s: Scenario,
    *,
    model: str,
    text: str,
    items: list[dict[str, Any]],
    final: dict[str, Any],
) -> Iterator[bytes]:
    sequence = 0

    def event(kind: str, **fields: Any) -> bytes:
        nonlocal sequence
        data = {"type": kind, "sequence_number": sequence, **fields}
        sequence += 1
        return sse(data, kind)

    started = _response_object(call, model, "in_progress", [], None)
    yield event("response.created", response=started)
    yield event("response.in_progress", response=started)
    for index, item in enumerate(items):
        if item["type"] == "message":
            yield event(
                "response.output_item.added",
                output_index=index,
                item={**item, "status": "in_progress", "content": []},
            )
            part = {"item_id": item["id"], "output_index": index, "content_index": 0}
            yield event("response.content_part.added", **part, part=_output_text(""))
            for piece in tokens.split(text, s.chunks or tokens.DEFAULT_CHUNKS) if text else []:
                yield event("response.output_text.delta", **part, delta=piece, logprobs=[])
            yield event("response.output_text.done", **part, text=text, logprobs=[])
            yield event("response.content_part.done", **part, part=_output_text(text))
        elif item["type"] == "function_call":
            yield event(
                "response.output_item.added",
                output_index=index,
                item={**item, "status": "in_progress", "arguments": ""},
            )
            ref = {"item_id": item["id"], "output_index": index}
            yield event("response.function_call_arguments.delta", **ref, delta=item["arguments"])
            yield event(
                "response.function_call_arguments.done",
                **ref,
                name=item["name"],
                arguments=item["arguments"],
            )
        else:
            yield event("response.output_item.added", output_index=index, item=item)
        yield event("response.output_item.done", output_index=index, item=item)
    yield event("response.completed", response=final)


# -- legacy completions -------------------------------------------------------------------


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
        "system_fingerprint": _FINGERPRINT,
    }
    if not body.get("stream"):
        choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": "stop"}
        return JsonReply({**head, "choices": [choice], "usage": usage})
    options = body.get("stream_options") or {}
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    events = _completion_events(head, text, s, usage, include_usage=include_usage)
    return StreamReply(events, _data_error)


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


# -- embeddings ---------------------------------------------------------------------------


def embeddings(call: Call, s: Scenario) -> JsonReply:
    """``POST /v1/embeddings``: one deterministic vector per input, float or base64."""
    body = call.body
    inputs = tokens.embedding_inputs(body)
    dimensions = body.get("dimensions")
    if not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1:
        dimensions = DEFAULT_EMBEDDING_DIMENSIONS
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for index, item in enumerate(inputs):
        vector = embedding_vector(item, dimensions)
        encoded: Any = vector
        if as_base64:
            encoded = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    prompt = tokens.embedding_tokens(inputs)
    usage = tokens.merge({"prompt_tokens": prompt, "total_tokens": prompt}, s.usage)
    if "total_tokens" not in (s.usage or {}):
        usage["total_tokens"] = _int(usage.get("prompt_tokens"))
    if s.cost is not None:
        usage["cost"] = s.cost
    return JsonReply(
        {
            "object": "list",
            "data": data,
            "model": s.model or str(body.get("model", "")),
            "usage": usage,
        }
    )


def embedding_vector(item: Any, dimensions: int) -> list[float]:
    """The stand-in's vector for one input: multiples of 1/256 in [-1, 1), exact in float32."""
    seed = zlib.crc32(json.dumps(item).encode())
    return [(((seed >> (j % 24)) + 37 * j) % 512 - 256) / 256 for j in range(dimensions)]


def _dict_or_none(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None
