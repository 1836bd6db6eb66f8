"""The Gemini wire protocol, as the Gemini Developer API and Vertex AI serve it.

Paths (the model is the last segment before the colon):

- Developer API: ``/v1beta/models/{model}:{method}``;
- Vertex AI: ``/v1beta1/projects/{project}/locations/{location}/publishers/google/models/{model}
  :{method}`` (any API version; ``/v1/...`` too).

Methods: ``generateContent`` (JSON), ``streamGenerateContent?alt=sse`` (server-sent events, one
``GenerateContentResponse`` per event, usage on every event and complete on the last, as Gemini
sends it), ``embedContent`` and ``batchEmbedContents`` (``usageMetadata.promptTokenCount``), and
Vertex's ``predict`` for text-embedding models (``statistics.token_count`` per instance).

A scenario's ``usage`` holds ``usageMetadata`` fields (``promptTokenCount``,
``candidatesTokenCount``, ``cachedContentTokenCount``, ``thoughtsTokenCount``,
``toolUsePromptTokenCount``); ``totalTokenCount`` is recomputed unless it is set.
``reasoning`` becomes ``thoughtsTokenCount``; ``tool_calls`` become ``functionCall`` parts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from spanledger.standin import tokens
from spanledger.standin.openai_embeddings import embedding_vector
from spanledger.standin.replies import Call, JsonReply, StreamReply, sse
from spanledger.standin.scenario import Scenario

PATH = re.compile(
    r"^/(?P<version>v1(?:alpha|beta1?)?)/"
    r"(?:projects/(?P<project>[^/]+)/locations/[^/]+/)?(?:publishers/[^/]+/)?"
    r"models/(?P<model>[^/:]+):(?P<method>[A-Za-z]+)$"
)
"""The paths of Gemini model methods, Developer API and Vertex AI alike."""

DEFAULT_DIMENSIONS = 8

_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def gemini_error(
    status: int, message: str | None = None, retry_after: float | None = None, request_id: str = ""
) -> JsonReply:
    """``{"error": {"code", "message", "status"}}``, Google's error body."""
    name = _STATUS.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION")
    body = {"error": {"code": status, "message": message or f"{name}.", "status": name}}
    headers = {"retry-after": f"{retry_after:g}"} if retry_after is not None else {}
    return JsonReply(body, status, headers)


def prompt_tokens(body: dict[str, Any]) -> int:
    """Default ``promptTokenCount``: all text of ``systemInstruction`` and ``contents``."""
    return tokens.estimate_tokens(
        tokens.strings(body.get("systemInstruction")) + tokens.strings(body.get("contents"))
    )


def generate_content(call: Call, s: Scenario) -> JsonReply:
    """``:generateContent``: one ``GenerateContentResponse``."""
    parts = _parts(call, s)
    usage = _usage(call, s, parts)
    return JsonReply(_response(call, s, parts, usage, finished=True))


def stream_generate_content(call: Call, s: Scenario) -> StreamReply:
    """``:streamGenerateContent?alt=sse``: the answer in pieces, usage complete at the end."""
    parts = _parts(call, s)
    usage = _usage(call, s, parts)
    return StreamReply(events=_events(call, s, parts, usage), error_event=_stream_error)


def embed_content(call: Call, s: Scenario) -> JsonReply:
    """``:embedContent`` (Vertex AI, Gemini embedding models): one embedding."""
    content = call.body.get("content")
    prompt = tokens.estimate_tokens(tokens.strings(content))
    usage = tokens.merge({"promptTokenCount": prompt, "totalTokenCount": prompt}, s.usage)
    vector = embedding_vector(content, _dimensions(call.body))
    return JsonReply({"embedding": {"values": vector}, "usageMetadata": usage, "truncated": False})


def batch_embed_contents(call: Call, s: Scenario) -> JsonReply:
    """``:batchEmbedContents``: one embedding per request, usage for them all."""
    requests = call.body.get("requests")
    if not isinstance(requests, list):
        raise ValueError("batchEmbedContents needs a list of requests")
    embeddings = []
    prompt = 0
    for request in requests:
        content = request.get("content")
        prompt += tokens.estimate_tokens(tokens.strings(content))
        dimensions = _dimensions(request)
        embeddings.append({"values": embedding_vector(content, dimensions)})
    usage = tokens.merge({"promptTokenCount": prompt, "totalTokenCount": prompt}, s.usage)
    return JsonReply({"embeddings": embeddings, "usageMetadata": usage})


def predict(call: Call, s: Scenario) -> JsonReply:
    """``:predict`` (Vertex AI text-embedding models): a token count per instance."""
    instances = call.body.get("instances")
    if not isinstance(instances, list):
        raise ValueError("predict needs a list of instances")
    parameters = call.body.get("parameters") or {}
    dimensions = parameters.get("outputDimensionality") or DEFAULT_DIMENSIONS
    predictions = []
    characters = 0
    for instance in instances:
        text = tokens.strings(instance.get("content"))
        characters += len(text)
        statistics = {"token_count": tokens.estimate_tokens(text), "truncated": False}
        vector = embedding_vector(instance.get("content"), dimensions)
        predictions.append({"embeddings": {"values": vector, "statistics": statistics}})
    return JsonReply(
        {"predictions": predictions, "metadata": {"billableCharacterCount": characters}}
    )


ROUTES = {
    "generateContent": generate_content,
    "streamGenerateContent": stream_generate_content,
    "embedContent": embed_content,
    "batchEmbedContents": batch_embed_contents,
    "predict": predict,
}
"""Method name (after the colon) → route."""


def _dimensions(request: dict[str, Any]) -> int:
    dimensions = request.get("outputDimensionality")
    if isinstance(dimensions, int) and not isinstance(dimensions, bool) and dimensions > 0:
        return dimensions
    return DEFAULT_DIMENSIONS


def _parts(call: Call, s: Scenario) -> list[dict[str, Any]]:
    text = "" if s.tool_calls and s.text is None else tokens.reply_text(s.text, _chunks(s))
    parts: list[dict[str, Any]] = [{"text": text}] if text else []
    for tool_call in s.tool_calls or []:
        function_call = {"name": tool_call["name"], "args": tool_call.get("arguments", {})}
        parts.append({"functionCall": function_call})
    return parts


def _chunks(s: Scenario) -> int:
    return s.chunks or tokens.DEFAULT_CHUNKS


def _usage(call: Call, s: Scenario, parts: list[dict[str, Any]]) -> dict[str, Any]:
    candidates = 0
    for part in parts:
        if "text" in part:
            candidates += tokens.estimate_tokens(part["text"])
        else:
            function_call = part["functionCall"]
            candidates += tokens.estimate_tokens(function_call["name"] + str(function_call["args"]))
    defaults: dict[str, Any] = {
        "promptTokenCount": prompt_tokens(call.body),
        "candidatesTokenCount": candidates,
    }
    thoughts = tokens.reasoning_tokens(s.reasoning)
    if thoughts:
        defaults["thoughtsTokenCount"] = thoughts
    usage = tokens.merge(defaults, s.usage)
    if "totalTokenCount" not in (s.usage or {}):
        usage["totalTokenCount"] = sum(
            value
            for key, value in usage.items()
            if key.endswith("TokenCount")
            and key != "cachedContentTokenCount"
            and isinstance(value, int)
        )
    usage["promptTokensDetails"] = [
        {"modality": "TEXT", "tokenCount": usage.get("promptTokenCount", 0)}
    ]
    return usage


def _model(call: Call, s: Scenario) -> str:
    return s.model or call.params.get("model", "")


def _response(
    call: Call,
    s: Scenario,
    parts: list[dict[str, Any]],
    usage: dict[str, Any],
    *,
    finished: bool,
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finished:
        candidate["finishReason"] = "STOP"
    response: dict[str, Any] = {
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": _model(call, s),
        "responseId": call.id(""),
    }
    if call.params.get("project"):
        response["createTime"] = "2025-09-01T00:00:00.000000Z"
    return response


def _events(
    call: Call, s: Scenario, parts: list[dict[str, Any]], usage: dict[str, Any]
) -> Iterator[bytes]:
    texts = [part["text"] for part in parts if "text" in part]
    calls = [part for part in parts if "text" not in part]
    pieces = [[{"text": piece}] for piece in tokens.split(texts[0], _chunks(s))] if texts else []
    if calls:
        pieces.append(calls)
    partial = {k: usage[k] for k in ("promptTokenCount", "totalTokenCount") if k in usage}
    for index, piece in enumerate(pieces):
        last = index == len(pieces) - 1
        shown = usage if last else partial
        yield sse(_response(call, s, piece, shown, finished=last))


def _stream_error(sent: int, message: str | None) -> bytes:
    """The error Gemini sends in place of the rest of a stream."""
    error = {
        "code": 500,
        "message": message or "An internal error has occurred.",
        "status": "INTERNAL",
    }
    return sse({"error": error})
