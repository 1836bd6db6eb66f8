"""Cohere's v2 API: chat (JSON, and SSE with Cohere's event types), embed and rerank
(``ClientV2(base_url=llm.url)``).

Cohere reports two sets of figures for a chat: ``usage.billed_units`` (what the bill counts) and
``usage.tokens`` (what the model processed, Cohere's prompt template included). The stand-in's
defaults follow the rules of :mod:`spanledger.standin.tokens` for the billed figures and add
:data:`PROMPT_TEMPLATE_TOKENS` to the processed input; a scenario's ``usage`` is merged over
``{"billed_units": ..., "tokens": ...}`` (``cached_tokens`` when it sets one). A stream is
``message-start``, ``content-start``, ``content-delta``…, ``content-end`` (or the
``tool-plan-delta`` and ``tool-call-*`` events of a tool call) and ``message-end``, whose delta
carries the finish reason and the usage. Embed bills ``input_tokens`` (and ``images``), rerank
one search unit per query and 100 documents.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Iterator
from typing import Any

from spanledger.standin import tokens
from spanledger.standin.openai_embeddings import embedding_vector
from spanledger.standin.openai_shared import output_tokens, tool_calls
from spanledger.standin.replies import Call, JsonReply, StreamReply, sse
from spanledger.standin.scenario import Scenario

PROMPT_TEMPLATE_TOKENS = 64
"""Tokens of the prompt template Cohere wraps a chat in: counted in ``usage.tokens``, not billed."""

DOCUMENTS_PER_SEARCH_UNIT = 100
STREAM_ERROR = "internal server error, this has been reported to our developers"

_FINISH = {False: "COMPLETE", True: "TOOL_CALL"}


def chat(call: Call, s: Scenario) -> JsonReply | StreamReply:
    """``POST /v2/chat``."""
    calls = tool_calls(call, s)
    text = "" if calls and s.text is None else tokens.reply_text(s.text, _chunks(s))
    billed_input = tokens.prompt_tokens(call.body)
    output = output_tokens(text, calls, s)
    usage = tokens.merge(
        {
            "billed_units": {"input_tokens": billed_input, "output_tokens": output},
            "tokens": {
                "input_tokens": billed_input + PROMPT_TEMPLATE_TOKENS,
                "output_tokens": output,
            },
        },
        s.usage,
    )
    finish = _FINISH[bool(calls)]
    if call.body.get("stream"):
        events = _events(call, s, text=text, calls=calls, finish=finish, usage=usage)
        return StreamReply(events, stream_error)
    message: dict[str, Any] = {"role": "assistant"}
    if calls:
        message["tool_plan"] = "I will call the tools."
        message["tool_calls"] = [_tool_call(cid, name, args) for cid, name, args in calls]
    else:
        message["content"] = [{"type": "text", "text": text}]
    return JsonReply({"id": _id(call), "finish_reason": finish, "message": message, "usage": usage})


def embed(call: Call, s: Scenario) -> JsonReply:
    """``POST /v2/embed``: texts, images or mixed inputs; one vector per input and type."""
    body = call.body
    texts = [str(text) for text in body.get("texts") or ()]
    images = list(body.get("images") or ())
    items: list[Any] = [*texts, *images]
    for entry in body.get("inputs") or ():
        parts = entry.get("content") if isinstance(entry, dict) else None
        items.append(entry)
        for part in parts or ():
            if isinstance(part, dict) and part.get("type") == "text":
                texts.append(str(part.get("text", "")))
            elif isinstance(part, dict):
                images.append(part)
    billed: dict[str, Any] = {"input_tokens": sum(map(tokens.estimate_tokens, texts))}
    if images:
        billed["images"] = len(images)
    dimensions = body.get("output_dimension")
    if not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1:
        dimensions = 8
    kinds = body.get("embedding_types") or ["float"]
    embeddings = {kind: [_embedding(item, dimensions, kind) for item in items] for kind in kinds}
    meta = {"api_version": {"version": "2"}, "billed_units": tokens.merge(billed, s.usage)}
    reply: dict[str, Any] = {
        "id": _id(call),
        "embeddings": embeddings,
        "texts": [str(text) for text in body.get("texts") or ()],
        "meta": meta,
        "response_type": "embeddings_by_type",
    }
    return JsonReply(reply)


def rerank(call: Call, s: Scenario) -> JsonReply:
    """``POST /v2/rerank``: every document scored against the query, best first."""
    body = call.body
    query = str(body.get("query", ""))
    documents = [str(document) for document in body.get("documents") or ()]
    scores = [
        (zlib.crc32(json.dumps([query, document]).encode()) % 10_000) / 10_000
        for document in documents
    ]
    ranked = sorted(range(len(documents)), key=lambda index: -scores[index])
    top_n = body.get("top_n")
    if isinstance(top_n, int) and not isinstance(top_n, bool) and top_n >= 0:
        ranked = ranked[:top_n]
    units = max(1, math.ceil(len(documents) / DOCUMENTS_PER_SEARCH_UNIT))
    billed = tokens.merge({"search_units": units}, s.usage)
    return JsonReply(
        {
            "id": _id(call),
            "results": [{"index": index, "relevance_score": scores[index]} for index in ranked],
            "meta": {"api_version": {"version": "2"}, "billed_units": billed},
        }
    )


ROUTES = {"/v2/chat": chat, "/v2/embed": embed, "/v2/rerank": rerank}
"""Path → route, for the stand-in's router."""


def cohere_error(
    status: int, message: str | None = None, retry_after: float | None = None
) -> JsonReply:
    """Cohere's error body (``{"id", "message"}``) with ``status``."""
    default = {
        400: "invalid request",
        401: "invalid api token",
        404: "model not found",
        429: "You are past the rate limit for this API key.",
    }.get(status, STREAM_ERROR if status >= 500 else "error")
    headers = {} if retry_after is None else {"retry-after": f"{retry_after:g}"}
    return JsonReply({"id": "error-standin", "message": message or default}, status, headers)


def stream_error(sent: int, message: str | None) -> bytes:
    """A stream cut short: a ``message-end`` whose delta names the error and no usage."""
    delta = {"error": message or STREAM_ERROR, "finish_reason": "ERROR"}
    return sse({"type": "message-end", "delta": delta}, "message-end")


def _id(call: Call) -> str:
    return f"standin-{call.number:012d}"


def _chunks(s: Scenario) -> int:
    return s.chunks or tokens.DEFAULT_CHUNKS


def _tool_call(cid: str, name: str, args: str) -> dict[str, Any]:
    return {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}


def _embedding(item: Any, dimensions: int, kind: str) -> Any:
    vector = embedding_vector(item, dimensions)
    if kind == "float":
        return vector
    if kind == "base64":
        return "".join(f"{int(v * 127) & 0xFF:02x}" for v in vector)
    offset = 128 if kind in ("uint8", "ubinary") else 0
    return [int(v * 127) + offset for v in vector]


def _event(kind: str, **fields: Any) -> bytes:
    return sse({"type": kind, **fields}, kind)


def _events(
    call: Call,
    s: Scenario,
    *,
    text: str,
    calls: list[tuple[str, str, str]],
    finish: str,
    usage: dict[str, Any],
) -> Iterator[bytes]:
    start = {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}
    yield _event("message-start", id=_id(call), delta={"message": start})
    if calls:
        yield _event("tool-plan-delta", delta={"message": {"tool_plan": "I will call the tools."}})
        for index, (cid, name, args) in enumerate(calls):
            opening = {"tool_calls": _tool_call(cid, name, "")}
            yield _event("tool-call-start", index=index, delta={"message": opening})
            arguments = {"tool_calls": {"function": {"arguments": args}}}
            yield _event("tool-call-delta", index=index, delta={"message": arguments})
            yield _event("tool-call-end", index=index)
    else:
        opening = {"content": {"type": "text", "text": ""}}
        yield _event("content-start", index=0, delta={"message": opening})
        for piece in tokens.split(text, _chunks(s)):
            yield _event("content-delta", index=0, delta={"message": {"content": {"text": piece}}})
        yield _event("content-end", index=0)
    yield _event("message-end", id=_id(call), delta={"finish_reason": finish, "usage": usage})
