"""OpenAI Responses: the response object and its typed SSE event stream."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from spanledger.standin import tokens
from spanledger.standin.openai_shared import (
    dict_or_none,
    finish_usage,
    output_tokens,
    reply_text,
    response_error,
    tool_calls,
)
from spanledger.standin.replies import Call, JsonReply, StreamReply, sse
from spanledger.standin.scenario import Scenario


def response(call: Call, s: Scenario) -> JsonReply | StreamReply:
    """``POST /v1/responses``."""
    body = call.body
    model = s.model or str(body.get("model", ""))
    calls = tool_calls(call, s)
    text_config = body.get("text") if isinstance(body.get("text"), dict) else None
    schema_format = dict_or_none(text_config.get("format")) if text_config else None
    text = "" if calls and s.text is None else reply_text(s, schema_format)
    usage = _responses_usage(call, s, text, calls)
    items = _response_items(call, s, text, calls)
    final = _response_object(call, model, "completed", items, usage)
    if body.get("stream"):
        events = _response_events(call, s, model=model, text=text, items=items, final=final)
        return StreamReply(events, response_error, usage=usage)
    return JsonReply(final)


def _responses_usage(
    call: Call, s: Scenario, text: str, calls: list[tuple[str, str, str]]
) -> dict[str, Any]:
    prompt = tokens.prompt_tokens(call.body)
    output = output_tokens(text, calls, s)
    defaults = {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": tokens.reasoning_tokens(s.reasoning)},
        "total_tokens": prompt + output,
    }
    usage = tokens.merge(defaults, s.usage)
    return finish_usage(usage, s, ("total_tokens", "input_tokens", "output_tokens"))


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
