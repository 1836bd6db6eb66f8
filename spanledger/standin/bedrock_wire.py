"""The Amazon Bedrock runtime wire protocol: Converse and InvokeModel, whole and streamed.

Paths: ``/model/{modelId}/converse``, ``/converse-stream``, ``/invoke`` and
``/invoke-with-response-stream``; the model id is URL-encoded (an ARN's ``/`` is ``%2F``).

- **Converse** answers JSON with ``usage`` (``inputTokens`` without the cache,
  ``outputTokens``, ``totalTokens``, and ``cacheReadInputTokens`` / ``cacheWriteInputTokens``
  when a scenario sets them).
- **ConverseStream** sends ``messageStart``, ``contentBlockDelta``..., ``contentBlockStop``,
  ``messageStop`` and ``metadata`` (the usage) as event-stream messages.
- **InvokeModel** answers with the model family's own body, chosen by the model id: Anthropic
  (a Messages API Message), Amazon Nova (``output``/``usage`` with ``inputTokens``...), Meta
  Llama (``generation`` with ``prompt_token_count``/``generation_token_count``), Mistral
  (``outputs``, no usage in the body) and Titan embeddings (``inputTextTokenCount``). Every
  answer carries Bedrock's ``X-Amzn-Bedrock-Input-Token-Count`` / ``-Output-Token-Count``
  headers (the input count being all input tokens).
- **InvokeModelWithResponseStream** sends the family's stream events, each JSON document
  base64-encoded in a ``chunk`` event's ``bytes``; the last carries
  ``amazon-bedrock-invocationMetrics`` with the token counts.

A scenario's ``usage`` holds the fields of the answer's own usage: Converse's for Converse, the
family's for InvokeModel (``input_tokens``... for Anthropic, ``inputTokens``... for Nova,
``prompt_token_count``... for Llama; Mistral has none, so its counts follow the rules).
``stream_error_after`` ends a stream with a ``modelStreamErrorException``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from spanledger.standin import anthropic_wire, aws_eventstream, tokens
from spanledger.standin.openai_embeddings import embedding_vector
from spanledger.standin.replies import Call, JsonReply, StreamReply, compact_json
from spanledger.standin.scenario import Scenario

PATH = re.compile(
    r"^/model/(?P<model>[^/]+)/"
    r"(?P<method>converse|converse-stream|invoke|invoke-with-response-stream)$"
)
"""The paths of the Bedrock runtime's model operations."""

_ERRORS = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}


def bedrock_error(
    status: int, message: str | None = None, retry_after: float | None = None, request_id: str = ""
) -> JsonReply:
    """Bedrock's error answer: the error code in ``x-amzn-ErrorType``, the text in the body."""
    code = _ERRORS.get(
        status, "InternalServerException" if status >= 500 else "ValidationException"
    )
    headers = {"x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/com.amazon.bedrock/"}
    if retry_after is not None:
        headers["retry-after"] = f"{retry_after:g}"
    return JsonReply({"message": message or f"{code}."}, status, headers)


# Converse.


def _model(call: Call) -> str:
    return call.params.get("model", "")


def _text(s: Scenario) -> str:
    return "" if s.tool_calls and s.text is None else tokens.reply_text(s.text, _chunks(s))


def _chunks(s: Scenario) -> int:
    return s.chunks or tokens.DEFAULT_CHUNKS


def _tool_uses(call: Call, s: Scenario) -> list[dict[str, Any]]:
    return [
        {
            "toolUseId": f"tooluse_standin{call.number:06d}_{index}",
            "name": tool_call["name"],
            "input": tool_call.get("arguments", {}),
        }
        for index, tool_call in enumerate(s.tool_calls or [])
    ]


def _output_tokens(text: str, tool_uses: list[dict[str, Any]], s: Scenario) -> int:
    visible = tokens.estimate_tokens(text) if text or not tool_uses else 0
    visible += sum(tokens.estimate_tokens(use["name"] + str(use["input"])) for use in tool_uses)
    return visible + tokens.reasoning_tokens(s.reasoning)


def _converse_usage(call: Call, s: Scenario, output: int) -> dict[str, Any]:
    usage = tokens.merge(
        {"inputTokens": tokens.prompt_tokens(call.body), "outputTokens": output}, s.usage
    )
    if "totalTokens" not in (s.usage or {}):
        usage["totalTokens"] = sum(
            value
            for key in (
                "inputTokens",
                "outputTokens",
                "cacheReadInputTokens",
                "cacheWriteInputTokens",
            )
            if isinstance(value := usage.get(key), int)
        )
    return usage


def converse(call: Call, s: Scenario) -> JsonReply:
    """``/model/{modelId}/converse``."""
    text = _text(s)
    uses = _tool_uses(call, s)
    content: list[dict[str, Any]] = [{"text": text}] if text else []
    content += [{"toolUse": use} for use in uses]
    usage = _converse_usage(call, s, _output_tokens(text, uses, s))
    return JsonReply(
        {
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": "tool_use" if uses else "end_turn",
            "usage": usage,
            "metrics": {"latencyMs": 42},
        }
    )


def converse_stream(call: Call, s: Scenario) -> StreamReply:
    """``/model/{modelId}/converse-stream``."""
    text = _text(s)
    uses = _tool_uses(call, s)
    usage = _converse_usage(call, s, _output_tokens(text, uses, s))
    return _event_stream(_converse_events(text, uses, usage, s))


def _converse_events(
    text: str, uses: list[dict[str, Any]], usage: dict[str, Any], s: Scenario
) -> Iterator[bytes]:
    event = aws_eventstream.event
    yield event("messageStart", {"role": "assistant"})
    index = 0
    if text:
        for piece in tokens.split(text, _chunks(s)):
            yield event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece}})
        yield event("contentBlockStop", {"contentBlockIndex": 0})
        index = 1
    for offset, use in enumerate(uses, start=index):
        start = {"toolUse": {"toolUseId": use["toolUseId"], "name": use["name"]}}
        yield event("contentBlockStart", {"contentBlockIndex": offset, "start": start})
        delta = {"toolUse": {"input": compact_json(use["input"])}}
        yield event("contentBlockDelta", {"contentBlockIndex": offset, "delta": delta})
        yield event("contentBlockStop", {"contentBlockIndex": offset})
    yield event("messageStop", {"stopReason": "tool_use" if uses else "end_turn"})
    yield event("metadata", {"usage": usage, "metrics": {"latencyMs": 42}})


def _event_stream(events: Iterator[bytes]) -> StreamReply:
    return StreamReply(
        events=events, error_event=_stream_error, content_type=aws_eventstream.CONTENT_TYPE
    )


def _stream_error(sent: int, message: str | None) -> bytes:
    return aws_eventstream.exception(
        "modelStreamErrorException", message or "The model failed to stream its answer."
    )


# InvokeModel: one answer per model family.


class _Family(NamedTuple):
    """How one model family answers InvokeModel: its body, its stream and its token counts."""

    body: Callable[[Call, Scenario], tuple[dict[str, Any], int, int]]
    """``(body, input tokens, output tokens)``."""
    stream: Callable[[Call, Scenario], tuple[list[dict[str, Any]], int, int]]
    """``(decoded stream events, input tokens, output tokens)``."""


def _anthropic_body(call: Call, s: Scenario) -> tuple[dict[str, Any], int, int]:
    parts = anthropic_wire.answer(call, s, _anthropic_model(call))
    body = anthropic_wire.message_body(call, parts)
    body["id"] = call.id("msg_bdrk_")
    return (body, *_anthropic_counts(parts.usage))


def _anthropic_stream(call: Call, s: Scenario) -> tuple[list[dict[str, Any]], int, int]:
    parts = anthropic_wire.answer(call, s, _anthropic_model(call))
    events = list(anthropic_wire.stream_events(call, s, parts))
    return [event for event in events if event["type"] != "ping"], *_anthropic_counts(parts.usage)


def _anthropic_model(call: Call) -> str:
    """The Claude model in a Bedrock model id (``us.anthropic.claude-…-v1:0`` → ``claude-…``)."""
    model = _model(call).rsplit("/", 1)[-1]
    name = model.split("anthropic.", 1)[-1]
    return re.sub(r"-v\d+(:\d+)?$", "", name)


def _anthropic_counts(usage: dict[str, Any]) -> tuple[int, int]:
    inputs = sum(
        _int(usage.get(key))
        for key in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
    )
    return inputs, _int(usage.get("output_tokens"))


def _nova_usage(call: Call, s: Scenario, text: str) -> dict[str, Any]:
    defaults = {
        "inputTokens": tokens.prompt_tokens(call.body),
        "outputTokens": _output_tokens(text, [], s),
    }
    usage = tokens.merge(defaults, s.usage)
    usage.setdefault("totalTokens", _int(usage["inputTokens"]) + _int(usage["outputTokens"]))
    return usage


def _nova_counts(usage: dict[str, Any]) -> tuple[int, int]:
    inputs = sum(
        _int(usage.get(key))
        for key in ("inputTokens", "cacheReadInputTokenCount", "cacheWriteInputTokenCount")
    )
    return inputs, _int(usage.get("outputTokens"))


def _nova_body(call: Call, s: Scenario) -> tuple[dict[str, Any], int, int]:
    text = tokens.reply_text(s.text, _chunks(s))
    usage = _nova_usage(call, s, text)
    body = {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": "end_turn",
        "usage": usage,
    }
    return (body, *_nova_counts(usage))


def _nova_stream(call: Call, s: Scenario) -> tuple[list[dict[str, Any]], int, int]:
    text = tokens.reply_text(s.text, _chunks(s))
    usage = _nova_usage(call, s, text)
    events: list[dict[str, Any]] = [{"messageStart": {"role": "assistant"}}]
    for piece in tokens.split(text, _chunks(s)):
        events.append({"contentBlockDelta": {"delta": {"text": piece}, "contentBlockIndex": 0}})
    events.append({"contentBlockStop": {"contentBlockIndex": 0}})
    events.append({"messageStop": {"stopReason": "end_turn"}})
    events.append({"metadata": {"usage": usage, "metrics": {}, "trace": {}}})
    return events, *_nova_counts(usage)


def _llama_counts(call: Call, s: Scenario, text: str) -> dict[str, Any]:
    defaults = {
        "prompt_token_count": tokens.prompt_tokens(call.body),
        "generation_token_count": _output_tokens(text, [], s),
    }
    return tokens.merge(defaults, s.usage)


def _llama_body(call: Call, s: Scenario) -> tuple[dict[str, Any], int, int]:
    text = tokens.reply_text(s.text, _chunks(s))
    counts = _llama_counts(call, s, text)
    body = {"generation": text, **counts, "stop_reason": "stop"}
    return body, _int(counts["prompt_token_count"]), _int(counts["generation_token_count"])


def _llama_stream(call: Call, s: Scenario) -> tuple[list[dict[str, Any]], int, int]:
    text = tokens.reply_text(s.text, _chunks(s))
    counts = _llama_counts(call, s, text)
    pieces = tokens.split(text, _chunks(s))
    events = []
    produced = 0
    for index, piece in enumerate(pieces):
        last = index == len(pieces) - 1
        produced = _int(counts["generation_token_count"]) if last else produced + 1
        events.append(
            {
                "generation": piece,
                "prompt_token_count": counts["prompt_token_count"] if index == 0 else None,
                "generation_token_count": produced,
                "stop_reason": "stop" if last else None,
            }
        )
    return events, _int(counts["prompt_token_count"]), _int(counts["generation_token_count"])


def _mistral_body(call: Call, s: Scenario) -> tuple[dict[str, Any], int, int]:
    text = tokens.reply_text(s.text, _chunks(s))
    body = {"outputs": [{"text": text, "stop_reason": "stop"}]}
    return body, tokens.prompt_tokens(call.body), _output_tokens(text, [], s)


def _mistral_stream(call: Call, s: Scenario) -> tuple[list[dict[str, Any]], int, int]:
    text = tokens.reply_text(s.text, _chunks(s))
    pieces = tokens.split(text, _chunks(s))
    events = [
        {"outputs": [{"text": piece, "stop_reason": "stop" if i == len(pieces) - 1 else None}]}
        for i, piece in enumerate(pieces)
    ]
    return events, tokens.prompt_tokens(call.body), _output_tokens(text, [], s)


def _titan_embed_body(call: Call, s: Scenario) -> tuple[dict[str, Any], int, int]:
    text = call.body.get("inputText")
    if not isinstance(text, str):
        raise ValueError("a Titan embedding request needs an inputText")
    counts = tokens.merge({"inputTextTokenCount": tokens.estimate_tokens(text)}, s.usage)
    dimensions = call.body.get("dimensions") or 8
    body = {"embedding": embedding_vector(text, dimensions), **counts}
    return body, _int(counts["inputTextTokenCount"]), 0


def _no_stream(call: Call, s: Scenario) -> tuple[list[dict[str, Any]], int, int]:
    raise ValueError(f"model {_model(call)!r} does not stream")


_FAMILIES: tuple[tuple[str, _Family], ...] = (
    ("anthropic.", _Family(_anthropic_body, _anthropic_stream)),
    ("amazon.nova", _Family(_nova_body, _nova_stream)),
    ("amazon.titan-embed", _Family(_titan_embed_body, _no_stream)),
    ("meta.llama", _Family(_llama_body, _llama_stream)),
    ("mistral.", _Family(_mistral_body, _mistral_stream)),
)


def _family(call: Call) -> _Family:
    model = _model(call)
    for marker, family in _FAMILIES:
        if marker in model:
            return family
    raise ValueError(f"the stand-in has no InvokeModel body for model {model!r}")


def _count_headers(input_tokens: int, output_tokens: int) -> dict[str, str]:
    return {
        "X-Amzn-Bedrock-Input-Token-Count": str(input_tokens),
        "X-Amzn-Bedrock-Output-Token-Count": str(output_tokens),
        "X-Amzn-Bedrock-Invocation-Latency": "42",
    }


def invoke(call: Call, s: Scenario) -> JsonReply:
    """``/model/{modelId}/invoke``: the family's body, token counts in the headers."""
    body, input_tokens, output_tokens = _family(call).body(call, s)
    return JsonReply(body, headers=_count_headers(input_tokens, output_tokens))


def invoke_stream(call: Call, s: Scenario) -> StreamReply:
    """``/model/{modelId}/invoke-with-response-stream``: the family's events as chunks."""
    events, input_tokens, output_tokens = _family(call).stream(call, s)
    metrics = {
        "inputTokenCount": input_tokens,
        "outputTokenCount": output_tokens,
        "invocationLatency": 42,
        "firstByteLatency": 21,
    }
    events[-1] = {**events[-1], "amazon-bedrock-invocationMetrics": metrics}
    reply = _event_stream(_chunks_of(events))
    reply.headers["X-Amzn-Bedrock-Content-Type"] = "application/json"
    return reply


def _chunks_of(events: list[dict[str, Any]]) -> Iterator[bytes]:
    for decoded in events:
        encoded = base64.b64encode(compact_json(decoded).encode()).decode()
        yield aws_eventstream.event("chunk", {"bytes": encoded})


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


ROUTES = {
    "converse": converse,
    "converse-stream": converse_stream,
    "invoke": invoke,
    "invoke-with-response-stream": invoke_stream,
}
"""Operation path segment → route."""
