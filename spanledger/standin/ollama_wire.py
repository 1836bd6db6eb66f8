"""Ollama's native API: ``/api/chat`` and ``/api/generate`` as JSON and as NDJSON streams,
``/api/embed`` and the older ``/api/embeddings`` (``ollama.Client(host=llm.url)``).

A request streams unless it says ``"stream": false`` (the Python SDK always says). Each streamed
line is a JSON object with ``"done": false`` and a piece of the reply; the last has
``"done": true``, the ``done_reason`` and the figures: ``prompt_eval_count`` (input tokens),
``eval_count`` (output tokens, thinking included) and the durations in nanoseconds. A scenario's
``usage`` is merged over those figures. Durations follow fixed rates, so that throughput can be
computed from a reply: :data:`PROMPT_EVAL_NS_PER_TOKEN` and :data:`EVAL_NS_PER_TOKEN`. An error
is ``{"error": "..."}``, in a stream as its last line.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from spanledger.standin import tokens
from spanledger.standin.openai_embeddings import embedding_vector
from spanledger.standin.openai_shared import output_tokens
from spanledger.standin.replies import Call, JsonReply, StreamReply, compact_json
from spanledger.standin.scenario import Scenario

NDJSON = "application/x-ndjson"
LOAD_NS = 2_000_000
PROMPT_EVAL_NS_PER_TOKEN = 500_000
"""Prompt processing at 2,000 tokens a second."""
EVAL_NS_PER_TOKEN = 20_000_000
"""Generation at 50 tokens a second."""


def chat(call: Call, s: Scenario) -> JsonReply | StreamReply:
    """``POST /api/chat``."""
    calls = [
        {"function": {"name": c["name"], "arguments": c.get("arguments", {})}}
        for c in s.tool_calls or ()
    ]
    text = "" if calls and s.text is None else tokens.reply_text(s.text, _chunks(s))
    thinking = tokens.thinking_text(s.reasoning)
    pieces = [{"message": {"role": "assistant", "content": piece}} for piece in _split(text, s)]
    last: dict[str, Any] = {"role": "assistant", "content": ""}
    if thinking:
        last["thinking"] = thinking
    if calls:
        last["tool_calls"] = calls
    named = [("", c["function"]["name"], json.dumps(c["function"]["arguments"])) for c in calls]
    return _reply(
        call,
        s,
        prompt=tokens.prompt_tokens(call.body),
        output=output_tokens(text, named, s),
        pieces=pieces,
        whole={"message": {**last, "content": text}},
        end={"message": last},
    )


def generate(call: Call, s: Scenario) -> JsonReply | StreamReply:
    """``POST /api/generate``: a raw completion of ``prompt`` (and ``system``, ``suffix``)."""
    body = call.body
    text = tokens.reply_text(s.text, _chunks(s))
    prompt = tokens.estimate_tokens(tokens.prompt_text(body) + str(body.get("suffix") or ""))
    return _reply(
        call,
        s,
        prompt=prompt,
        output=output_tokens(text, [], s),
        pieces=[{"response": piece} for piece in _split(text, s)],
        whole={"response": text, "context": [1, 2, 3]},
        end={"response": "", "context": [1, 2, 3]},
    )


def embed(call: Call, s: Scenario) -> JsonReply:
    """``POST /api/embed``: one vector per input, and the input tokens."""
    body = call.body
    inputs = tokens.embedding_inputs(body)
    prompt = tokens.embedding_tokens(inputs)
    dimensions = body.get("dimensions")
    if not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1:
        dimensions = 8
    figures = tokens.merge(
        {
            "total_duration": LOAD_NS + prompt * PROMPT_EVAL_NS_PER_TOKEN,
            "load_duration": LOAD_NS,
            "prompt_eval_count": prompt,
        },
        s.usage,
    )
    vectors = [embedding_vector(item, dimensions) for item in inputs]
    return JsonReply({"model": _model(call, s), "embeddings": vectors, **figures})


def embeddings(call: Call, s: Scenario) -> JsonReply:
    """``POST /api/embeddings`` (superseded by ``/api/embed``): one vector, no counts."""
    return JsonReply({"embedding": embedding_vector(str(call.body.get("prompt", "")), 8)})


ROUTES = {
    "/api/chat": chat,
    "/api/generate": generate,
    "/api/embed": embed,
    "/api/embeddings": embeddings,
}
"""Path → route, for the stand-in's router."""


def ollama_error(
    status: int, message: str | None = None, retry_after: float | None = None
) -> JsonReply:
    """Ollama's error body, ``{"error": "..."}``, with ``status``."""
    default = {
        400: "invalid request",
        404: 'model "unknown" not found, try pulling it first',
        429: "server busy, please try again.  maximum pending requests exceeded",
    }.get(status, "an error was encountered while running the model")
    headers = {} if retry_after is None else {"retry-after": f"{retry_after:g}"}
    return JsonReply({"error": message or default}, status, headers)


def stream_error(sent: int, message: str | None) -> bytes:
    """The line that ends a stream cut short by an error."""
    return _line(ollama_error(500, message).body)


def _chunks(s: Scenario) -> int:
    return s.chunks or tokens.DEFAULT_CHUNKS


def _split(text: str, s: Scenario) -> list[str]:
    return tokens.split(text, _chunks(s)) if text else []


def _model(call: Call, s: Scenario) -> str:
    return s.model or str(call.body.get("model", ""))


def _line(data: Any) -> bytes:
    return (compact_json(data) + "\n").encode()


def _reply(
    call: Call,
    s: Scenario,
    *,
    prompt: int,
    output: int,
    pieces: list[dict[str, Any]],
    whole: dict[str, Any],
    end: dict[str, Any],
) -> JsonReply | StreamReply:
    head = {
        "model": _model(call, s),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(call.created)),
    }
    prompt_ns = prompt * PROMPT_EVAL_NS_PER_TOKEN
    eval_ns = output * EVAL_NS_PER_TOKEN
    figures = tokens.merge(
        {
            "total_duration": LOAD_NS + prompt_ns + eval_ns,
            "load_duration": LOAD_NS,
            "prompt_eval_count": prompt,
            "prompt_eval_duration": prompt_ns,
            "eval_count": output,
            "eval_duration": eval_ns,
        },
        s.usage,
    )
    done = {"done": True, "done_reason": "stop", **figures}
    if call.body.get("stream", True) is False:
        return JsonReply({**head, **whole, **done})
    lines = [{**head, **piece, "done": False} for piece in pieces]
    lines.append({**head, **end, **done})
    events: Iterator[bytes] = (_line(line) for line in lines)
    return StreamReply(events, stream_error, content_type=NDJSON)
