"""What each patched ``ollama`` method is, and how its result is read.

``Client.chat`` and ``Client.generate`` send one request: with ``stream=False`` they return the
whole reply, with ``stream=True`` a generator that sends when first read. ``AsyncClient.chat``
and ``generate`` are coroutines returning the reply, or an async generator that sends when first
read. ``embed`` and the older ``embeddings`` return the whole reply. Their arguments may be
positional (``client.chat("llama3.2", messages)``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from spanledger.instrumentation.genai import (
    OPERATION_CHAT,
    OPERATION_EMBEDDINGS,
    OPERATION_TEXT_COMPLETION,
    Call,
    CallDescription,
    ReplyText,
    capture_content_enabled,
    observe_async_current,
    observe_current,
    read_field,
    record_output_messages,
    text_message,
    text_messages,
)
from spanledger.instrumentation.genai.endpoints import endpoint_of

from .usage import usage_from_embed, usage_from_response

OLLAMA = "ollama"

_OPTION_NUMBERS = (
    ("gen_ai.request.max_tokens", "num_predict"),
    ("gen_ai.request.temperature", "temperature"),
    ("gen_ai.request.top_p", "top_p"),
    ("gen_ai.request.top_k", "top_k"),
    ("gen_ai.request.seed", "seed"),
)


def _argument(args: tuple, kwargs: dict, position: int, name: str) -> Any:
    return kwargs[name] if name in kwargs else (args[position] if len(args) > position else None)


def _describe(
    client: Any, args: tuple, kwargs: dict, operation: str, messages: Any = None
) -> CallDescription:
    provider, address, port = endpoint_of(client._client.base_url, OLLAMA)
    attributes: dict[str, Any] = {}
    options = kwargs.get("options")
    for attribute, name in _OPTION_NUMBERS:
        value = read_field(options, name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            attributes[attribute] = value
    model = _argument(args, kwargs, 0, "model")
    return CallDescription(
        operation,
        provider,
        model if isinstance(model, str) and model else None,
        stream=bool(kwargs.get("stream")),
        server_address=address,
        server_port=port,
        attributes=attributes,
        input_messages=messages,
    )


def describe_chat(client: Any, args: tuple, kwargs: dict) -> CallDescription:
    messages = _argument(args, kwargs, 1, "messages")
    return _describe(client, args, kwargs, OPERATION_CHAT, lambda: text_messages(messages))


def describe_generate(client: Any, args: tuple, kwargs: dict) -> CallDescription:
    def prompt() -> list[dict[str, Any]]:
        system = kwargs.get("system")
        messages = [text_message("system", system)] if isinstance(system, str) else []
        return [*messages, text_message("user", str(_argument(args, kwargs, 1, "prompt") or ""))]

    return _describe(client, args, kwargs, OPERATION_TEXT_COMPLETION, prompt)


def describe_embed(client: Any, args: tuple, kwargs: dict) -> CallDescription:
    return _describe(client, args, kwargs, OPERATION_EMBEDDINGS)


def _reply_text(item: Any) -> Any:
    """The text of a chat reply (``message.content``) or a generate reply (``response``)."""
    message = read_field(item, "message")
    return read_field(message, "content") if message is not None else read_field(item, "response")


def settle_reply(call: Call, reply: Any) -> Any:
    """A whole chat or generate reply, or a stream of them."""
    if isinstance(reply, Iterator):
        observed = observe_current(reply, call, _ItemReader(call))
        call.watch(observed)
        return observed
    if isinstance(reply, AsyncIterator):
        observed_async = observe_async_current(reply, call, _ItemReader(call))
        call.watch(observed_async)
        return observed_async
    usage = usage_from_response(reply)
    call.usage.update(usage)
    if capture_content_enabled():
        reason = usage.finish_reasons[0] if usage.finish_reasons else None
        text = _reply_text(reply)
        message = text_message("assistant", text if isinstance(text, str) else "", reason)
        record_output_messages(call.span, [message])
    call.finish(completed=None)
    return reply


def settle_embed(call: Call, reply: Any) -> Any:
    call.finish_with(usage_from_embed(reply))
    return reply


class _ItemReader:
    """Reads each streamed reply into the call; gathers the text when capture is on."""

    __slots__ = ("call", "reply")

    def __init__(self, call: Call) -> None:
        self.call = call
        self.reply = ReplyText()

    def __call__(self, item: Any) -> None:
        seen = usage_from_response(item)
        self.call.usage.update(seen)
        self.reply.add(_reply_text(item))
        if read_field(item, "done") is True:
            self.reply.record(self.call.span, (seen.finish_reasons or [None])[0])
