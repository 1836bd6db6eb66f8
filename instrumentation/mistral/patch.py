"""What each patched ``mistralai`` method is, and how its result is read.

Each of ``Chat.complete``, ``Chat.stream``, ``Fim.complete``, ``Fim.stream``,
``Embeddings.create`` and their ``_async`` twins sends exactly one request (the SDK's retries,
when configured, resend it inside the call). ``complete`` returns the whole response;
``stream`` returns an ``EventStream`` (``EventStreamAsync``) over a response already received,
whose events carry a ``CompletionChunk`` in ``data``; it is wrapped in a proxy that reads each
chunk and ends the span when the stream ends. ``Chat.parse`` and ``Chat.parse_stream`` call
``complete`` and ``stream``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from spanledger.instrumentation.genai import (
    OPERATION_CHAT,
    OPERATION_EMBEDDINGS,
    OPERATION_TEXT_COMPLETION,
    AsyncStreamProxy,
    Call,
    CallDescription,
    ReplyText,
    StreamProxy,
    capture_content_enabled,
    message_text,
    read_field,
    record_output_messages,
    text_message,
    text_messages,
)
from spanledger.instrumentation.genai.endpoints import endpoint_of

from .usage import usage_from_embeddings, usage_from_response

MISTRAL_AI = "mistral_ai"

_REQUEST_NUMBERS = (
    ("gen_ai.request.max_tokens", "max_tokens"),
    ("gen_ai.request.temperature", "temperature"),
    ("gen_ai.request.top_p", "top_p"),
    ("gen_ai.request.seed", "random_seed"),
)


def _server_url(sdk: Any, kwargs: Mapping[str, Any]) -> str:
    server_url = kwargs.get("server_url")
    if isinstance(server_url, str) and server_url:
        return server_url
    return sdk.sdk_configuration.get_server_details()[0]


def _describe(
    sdk: Any, kwargs: Mapping[str, Any], operation: str, *, stream: bool, messages: Any = None
) -> CallDescription:
    provider, address, port = endpoint_of(_server_url(sdk, kwargs), MISTRAL_AI)
    attributes = {}
    for attribute, name in _REQUEST_NUMBERS:
        value = kwargs.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            attributes[attribute] = value
    model = kwargs.get("model")
    return CallDescription(
        operation,
        provider,
        model if isinstance(model, str) else None,
        stream=stream,
        server_address=address,
        server_port=port,
        attributes=attributes,
        input_messages=messages,
    )


def describe_chat(chat: Any, args: tuple, kwargs: dict) -> CallDescription:
    messages = kwargs.get("messages")
    return _describe(
        chat, kwargs, OPERATION_CHAT, stream=False, messages=lambda: text_messages(messages)
    )


def describe_chat_stream(chat: Any, args: tuple, kwargs: dict) -> CallDescription:
    messages = kwargs.get("messages")
    return _describe(
        chat, kwargs, OPERATION_CHAT, stream=True, messages=lambda: text_messages(messages)
    )


def _fim_messages(kwargs: Mapping[str, Any]) -> list[dict[str, Any]]:
    parts = [{"type": "text", "content": kwargs.get("prompt")}]
    if kwargs.get("suffix"):
        parts.append({"type": "suffix", "content": kwargs.get("suffix")})
    return [{"role": "user", "parts": parts}]


def describe_fim(fim: Any, args: tuple, kwargs: dict) -> CallDescription:
    return _describe(
        fim,
        kwargs,
        OPERATION_TEXT_COMPLETION,
        stream=False,
        messages=lambda: _fim_messages(kwargs),
    )


def describe_fim_stream(fim: Any, args: tuple, kwargs: dict) -> CallDescription:
    return _describe(
        fim, kwargs, OPERATION_TEXT_COMPLETION, stream=True, messages=lambda: _fim_messages(kwargs)
    )


def describe_embeddings(embeddings: Any, args: tuple, kwargs: dict) -> CallDescription:
    return _describe(embeddings, kwargs, OPERATION_EMBEDDINGS, stream=False)


def settle_completion(call: Call, response: Any) -> Any:
    """A whole chat or fill-in-the-middle completion."""
    call.usage.update(usage_from_response(response))
    if capture_content_enabled():
        record_output_messages(call.span, output_messages(response))
    call.finish(completed=None)
    return response


def settle_embeddings(call: Call, response: Any) -> Any:
    call.finish_with(usage_from_embeddings(response))
    return response


class _ChunkReader:
    """Reads each event of a stream into the call; gathers the text when capture is on."""

    __slots__ = ("call", "reply")

    def __init__(self, call: Call) -> None:
        self.call = call
        self.reply = ReplyText()

    def __call__(self, event: Any) -> Any:
        chunk = read_field(event, "data")
        seen = usage_from_response(chunk)
        self.call.usage.update(seen)
        for choice in (read_field(chunk, "choices") or ())[:1]:
            self.reply.add(read_field(read_field(choice, "delta"), "content"))
        if seen.finish_reasons:
            self.reply.record(self.call.span, seen.finish_reasons[0])
        return event


def settle_stream(call: Call, stream: Any) -> Any:
    """An ``EventStream`` of completion chunks: wrapped, so that it is read into the span."""
    return StreamProxy(stream, call, _ChunkReader(call))


def settle_async_stream(call: Call, stream: Any) -> Any:
    """An ``EventStreamAsync`` of completion chunks."""
    return AsyncStreamProxy(stream, call, _ChunkReader(call))


def output_messages(response: Any) -> list[dict[str, Any]]:
    """The choices' text, for content capture."""
    messages = []
    for choice in read_field(response, "choices") or ():
        content = read_field(read_field(choice, "message"), "content")
        reason = read_field(choice, "finish_reason")
        reason = getattr(reason, "value", reason)
        messages.append(text_message("assistant", message_text(content), reason))
    return messages
