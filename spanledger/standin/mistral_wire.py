"""Mistral's La Plateforme API: chat and fill-in-the-middle completions (JSON and SSE) and
embeddings, served under ``/mistral`` (``Mistral(server_url=llm.mistral_base_url)``).

The wire is close to OpenAI's, with Mistral's differences: a stream needs no ``stream_options``,
its last chunk carries both the finish reason and ``usage``; cached prompt tokens, when the
scenario sets them, are ``usage.prompt_tokens_details.cached_tokens`` (part of
``prompt_tokens``); a fill-in-the-middle request counts its ``prompt`` and ``suffix``; an error is
``{"object": "error", "message", "type", "param", "code"}``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from spanledger.standin import tokens
from spanledger.standin.openai_embeddings import embedding_vector
from spanledger.standin.openai_shared import (
    as_int,
    dict_or_none,
    finish_usage,
    output_tokens,
    reply_text,
    tool_calls,
)
from spanledger.standin.replies import Call, JsonReply, StreamReply, sse
from spanledger.standin.scenario import Scenario

PREFIX = "/mistral"
"""Where the stand-in serves Mistral's paths, apart from OpenAI's identical ones."""

STREAM_ERROR = "Service unavailable."

_ERRORS = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("invalid_request_error", "Unauthorized"),
    404: ("invalid_request_error", "Invalid model."),
    422: ("invalid_request_error", "Unprocessable entity."),
    429: ("rate_limited", "Requests rate limit exceeded"),
    500: ("internal_server_error", "Internal server error."),
    503: ("internal_server_error", "Service unavailable."),
}


def chat(call: Call, s: Scenario) -> JsonReply | StreamReply:
    """``POST /v1/chat/completions``."""
    calls = tool_calls(call, s)
    response_format = dict_or_none(call.body.get("response_format"))
    text = "" if calls and s.text is None else reply_text(s, response_format)
    prompt = tokens.prompt_tokens(call.body)
    return _completion(call, s, text, calls, prompt)


def fim(call: Call, s: Scenario) -> JsonReply | StreamReply:
    """``POST /v1/fim/completions``: the code between ``prompt`` and ``suffix``."""
    body = call.body
    prompt = tokens.estimate_tokens(str(body.get("prompt") or "") + str(body.get("suffix") or ""))
    return _completion(call, s, tokens.reply_text(s.text, _chunks(s)), [], prompt)


def embeddings(call: Call, s: Scenario) -> JsonReply:
    """``POST /v1/embeddings``: one deterministic vector per input."""
    body = call.body
    inputs = tokens.embedding_inputs(body)
    dimensions = body.get("output_dimension")
    if not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1:
        dimensions = 8
    prompt = tokens.embedding_tokens(inputs)
    defaults = {"prompt_tokens": prompt, "completion_tokens": 0, "total_tokens": prompt}
    usage = tokens.merge(defaults, s.usage)
    if "total_tokens" not in (s.usage or {}):
        usage["total_tokens"] = as_int(usage.get("prompt_tokens"))
    data = [
        {"object": "embedding", "embedding": embedding_vector(item, dimensions), "index": index}
        for index, item in enumerate(inputs)
    ]
    return JsonReply(
        {
            "id": call.id("embd-"),
            "object": "list",
            "data": data,
            "model": s.model or str(body.get("model", "")),
            "usage": usage,
        }
    )


ROUTES = {
    f"{PREFIX}/v1/chat/completions": chat,
    f"{PREFIX}/v1/fim/completions": fim,
    f"{PREFIX}/v1/embeddings": embeddings,
}
"""Path → route, for the stand-in's router."""


def mistral_error(
    status: int, message: str | None = None, retry_after: float | None = None
) -> JsonReply:
    """Mistral's error body with ``status``."""
    kind, default = _ERRORS.get(
        status, ("internal_server_error" if status >= 500 else "invalid_request_error", "Error.")
    )
    body = {"object": "error", "message": message or default, "type": kind, "param": None}
    headers = {} if retry_after is None else {"retry-after": f"{retry_after:g}"}
    return JsonReply({**body, "code": str(status)}, status, headers)


def stream_error(sent: int, message: str | None) -> bytes:
    """An error in place of the rest of a stream: one ``data:`` line holding the error body."""
    return sse(mistral_error(503, message or STREAM_ERROR).body)


def _chunks(s: Scenario) -> int:
    return s.chunks or tokens.DEFAULT_CHUNKS


def _completion(
    call: Call, s: Scenario, text: str, calls: list[tuple[str, str, str]], prompt: int
) -> JsonReply | StreamReply:
    model = s.model or str(call.body.get("model", ""))
    completion = output_tokens(text, calls, s)
    defaults = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    usage = finish_usage(
        tokens.merge(defaults, s.usage), s, ("total_tokens", "prompt_tokens", "completion_tokens")
    )
    finish = "tool_calls" if calls else "stop"
    head = {"id": call.id("cmpl-"), "created": call.created, "model": model}
    if call.body.get("stream"):
        events = _events(head, s, text=text, calls=calls, finish=finish, usage=usage)
        return StreamReply(events, stream_error)
    message: dict[str, Any] = {"role": "assistant", "content": text, "tool_calls": None}
    if calls:
        message["tool_calls"] = [_tool_call(cid, name, args) for cid, name, args in calls]
    choice = {"index": 0, "message": message, "finish_reason": finish}
    return JsonReply({**head, "object": "chat.completion", "usage": usage, "choices": [choice]})


def _tool_call(cid: str, name: str, args: str) -> dict[str, Any]:
    return {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}


def _events(
    head: dict[str, Any],
    s: Scenario,
    *,
    text: str,
    calls: list[tuple[str, str, str]],
    finish: str,
    usage: dict[str, Any],
) -> Iterator[bytes]:
    head = {**head, "object": "chat.completion.chunk"}

    def chunk(delta: dict[str, Any], finish_reason: str | None = None, **more: Any) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        return sse({**head, "choices": [choice], **more})

    yield chunk({"role": "assistant", "content": ""})
    pieces = tokens.split(text, _chunks(s)) if text else []
    for piece in pieces[:-1]:
        yield chunk({"content": piece})
    last: dict[str, Any] = {"content": pieces[-1] if pieces else ""}
    if calls:
        last["tool_calls"] = [_tool_call(cid, name, args) for cid, name, args in calls]
    yield chunk(last, finish, usage=usage)
    yield sse("[DONE]")
