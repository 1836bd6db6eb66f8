"""What each patched ``cohere`` v2 method is, and how its result is read.

``V2Client.chat``, ``embed`` and ``rerank`` (and their ``AsyncV2Client`` twins) send one request
and return the whole response. ``V2Client.chat_stream`` is a generator that sends when first
read; ``AsyncV2Client.chat_stream`` an async generator method, called without ``await``, that
does the same. ``ClientV2`` and ``AsyncClientV2`` (and ``Client().v2``) inherit these methods.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from spanledger.instrumentation.genai import (
    OPERATION_CHAT,
    OPERATION_EMBEDDINGS,
    Call,
    CallDescription,
    ReplyText,
    capture_content_enabled,
    message_text,
    observe_async_current,
    observe_current,
    read_field,
    record_output_messages,
    text_message,
    text_messages,
)
from spanledger.instrumentation.genai.endpoints import endpoint_of

from .usage import finish_reason, read_usage, usage_from_chat, usage_from_meta

COHERE = "cohere"
OPERATION_RERANK = "rerank"
"""Not an operation of the GenAI semantic conventions, which have none for reranking."""

_REQUEST_NUMBERS = (
    ("gen_ai.request.max_tokens", "max_tokens"),
    ("gen_ai.request.temperature", "temperature"),
    ("gen_ai.request.top_p", "p"),
    ("gen_ai.request.top_k", "k"),
    ("gen_ai.request.seed", "seed"),
)


def _base_url(client: Any) -> str:
    wrapper = getattr(client, "_client_wrapper", None)
    if wrapper is None:
        wrapper = getattr(getattr(client, "_raw_client", None), "_client_wrapper", None)
    return wrapper.get_base_url()


def _describe(
    client: Any, kwargs: Mapping[str, Any], operation: str, *, stream: bool = False
) -> CallDescription:
    provider, address, port = endpoint_of(_base_url(client), COHERE)
    attributes: dict[str, Any] = {}
    for attribute, name in _REQUEST_NUMBERS:
        value = kwargs.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            attributes[attribute] = value
    kinds = kwargs.get("embedding_types")
    if isinstance(kinds, list | tuple) and all(isinstance(kind, str) for kind in kinds):
        attributes["gen_ai.request.encoding_formats"] = list(kinds)
    messages = kwargs.get("messages")
    model = kwargs.get("model")
    return CallDescription(
        operation,
        provider,
        model if isinstance(model, str) else None,
        stream=stream,
        server_address=address,
        server_port=port,
        attributes=attributes,
        input_messages=(lambda: text_messages(messages)) if messages is not None else None,
    )


def describe_chat(client: Any, args: tuple, kwargs: dict) -> CallDescription:
    return _describe(client, kwargs, OPERATION_CHAT)


def describe_chat_stream(client: Any, args: tuple, kwargs: dict) -> CallDescription:
    return _describe(client, kwargs, OPERATION_CHAT, stream=True)


def describe_embed(client: Any, args: tuple, kwargs: dict) -> CallDescription:
    return _describe(client, kwargs, OPERATION_EMBEDDINGS)


def describe_rerank(client: Any, args: tuple, kwargs: dict) -> CallDescription:
    return _describe(client, kwargs, OPERATION_RERANK)


def settle_chat(call: Call, response: Any) -> Any:
    usage, extra = usage_from_chat(response)
    call.usage.update(usage)
    _set(call, extra)
    if capture_content_enabled():
        message = read_field(response, "message")
        text = message_text(read_field(message, "content"))
        record_output_messages(call.span, [_reply(text, usage.finish_reasons)])
    call.finish(completed=None)
    return response


def settle_meta(call: Call, response: Any) -> Any:
    """An embed or rerank response: billed units in ``meta``."""
    usage, extra = usage_from_meta(response)
    _set(call, extra)
    call.finish_with(usage)
    return response


class _EventReader:
    """Reads each stream event into the call; gathers the text when capture is on."""

    __slots__ = ("call", "reply")

    def __init__(self, call: Call) -> None:
        self.call = call
        self.reply = ReplyText()

    def __call__(self, event: Any) -> None:
        kind = read_field(event, "type")
        if kind == "content-delta":
            content = read_field(read_field(read_field(event, "delta"), "message"), "content")
            self.reply.add(read_field(content, "text"))
        elif kind == "message-start":
            event_id = read_field(event, "id")
            if isinstance(event_id, str) and event_id:
                self.call.usage.response_id = event_id
        elif kind == "message-end":
            self._end(read_field(event, "delta"))

    def _end(self, delta: Any) -> None:
        usage = self.call.usage
        reason = finish_reason(read_field(delta, "finish_reason"))
        if reason and reason not in usage.finish_reasons:
            usage.finish_reasons.append(reason)
        reported = read_field(delta, "usage")
        if reported is not None:
            _set(self.call, read_usage(reported, usage))
        self.reply.record(self.call.span, reason)


def settle_chat_stream(call: Call, events: Iterator[Any]) -> Iterator[Any]:
    observed = observe_current(events, call, _EventReader(call))
    call.watch(observed)
    return observed


def settle_async_chat_stream(call: Call, events: AsyncIterator[Any]) -> AsyncIterator[Any]:
    observed = observe_async_current(events, call, _EventReader(call))
    call.watch(observed)
    return observed


def _set(call: Call, attributes: Mapping[str, int]) -> None:
    if attributes and call.span.is_recording():
        call.span.set_attributes(attributes)


def _reply(text: str, finish_reasons: list[str]) -> dict[str, Any]:
    return text_message("assistant", text, finish_reasons[0] if finish_reasons else None)
