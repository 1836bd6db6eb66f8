"""What each patched ``google-genai`` method is, and how its result is read.

The SDK sends one request per call of ``Models._generate_content`` (JSON),
``Models._generate_content_stream`` (a generator that sends when first read) and
``Models.embed_content``, and of their ``AsyncModels`` twins (whose stream method sends when
awaited and returns an async generator). The public ``generate_content`` and
``generate_content_stream`` loop over the private ones for automatic function calling and
automatic continuation, and chats call the public ones: patching the private methods gives one
span per request the model answers, whichever path made it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from spanledger.instrumentation.genai import (
    OPERATION_EMBEDDINGS,
    OPERATION_GENERATE_CONTENT,
    Call,
    CallDescription,
    capture_content_enabled,
    observe_async,
    observe_current,
    read_field,
    record_output_messages,
)
from spanledger.instrumentation.genai.endpoints import endpoint_of

from .usage import finish_reason, usage_from_embeddings, usage_from_response

GEMINI = "gcp.gemini"
VERTEX_AI = "gcp.vertex_ai"

_REQUEST_NUMBERS = (
    ("gen_ai.request.max_tokens", "max_output_tokens"),
    ("gen_ai.request.temperature", "temperature"),
    ("gen_ai.request.top_p", "top_p"),
    ("gen_ai.request.top_k", "top_k"),
)


def model_id(model: Any) -> str | None:
    """The model's id without its resource path: ``models/gemini-2.5-flash``,
    ``publishers/google/models/gemini-2.5-flash`` and ``projects/…/models/gemini-2.5-flash`` are
    all ``gemini-2.5-flash``; other names (``tunedModels/…``, endpoints) stay whole."""
    if not isinstance(model, str) or not model:
        return None
    _, found, rest = model.rpartition("models/")
    if found and rest and "/" not in rest and not model.startswith("tunedModels/"):
        return rest
    return model


def _describe(models: Any, kwargs: dict, operation: str, stream: bool) -> CallDescription:
    api_client = models._api_client
    vertex = bool(getattr(api_client, "vertexai", False))
    provider = VERTEX_AI if vertex else GEMINI
    base_url = read_field(getattr(api_client, "_http_options", None), "base_url") or ""
    _, address, port = endpoint_of(base_url, provider)
    config = kwargs.get("config")
    attributes = {}
    for attribute, name in _REQUEST_NUMBERS:
        value = read_field(config, name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            attributes[attribute] = value
    contents = kwargs.get("contents")
    return CallDescription(
        operation,
        provider,
        model_id(kwargs.get("model")),
        stream=stream,
        server_address=address,
        server_port=port,
        attributes=attributes,
        input_messages=lambda: input_messages(contents),
    )


def describe_generate(models: Any, args: tuple, kwargs: dict) -> CallDescription:
    return _describe(models, kwargs, OPERATION_GENERATE_CONTENT, stream=False)


def describe_stream(models: Any, args: tuple, kwargs: dict) -> CallDescription:
    return _describe(models, kwargs, OPERATION_GENERATE_CONTENT, stream=True)


def describe_embed(models: Any, args: tuple, kwargs: dict) -> CallDescription:
    return _describe(models, kwargs, OPERATION_EMBEDDINGS, stream=False)


def settle_generate(call: Call, response: Any) -> Any:
    """A whole ``GenerateContentResponse``."""
    call.usage.update(usage_from_response(response))
    if capture_content_enabled():
        record_output_messages(call.span, output_messages(response))
    call.finish(completed=None)
    return response


def settle_embed(call: Call, response: Any) -> Any:
    call.finish_with(usage_from_embeddings(response))
    return response


class _ChunkReader:
    """Reads each chunk of a stream into the call; gathers the text when capture is on."""

    __slots__ = ("call", "texts")

    def __init__(self, call: Call) -> None:
        self.call = call
        self.texts: list[str] | None = [] if capture_content_enabled() else None

    def __call__(self, chunk: Any) -> None:
        seen = usage_from_response(chunk)
        self.call.usage.update(seen)
        if self.texts is not None:
            self.texts.extend(_texts(chunk))
            if seen.finish_reasons:
                message = {"role": "model", "parts": [_text_part("".join(self.texts))]}
                message["finish_reason"] = seen.finish_reasons[0]
                record_output_messages(self.call.span, [message])


def settle_stream(call: Call, chunks: Iterator[Any]) -> Iterator[Any]:
    """A generator that has not sent its request yet: read it with the span current."""
    observed = observe_current(chunks, call, _ChunkReader(call))
    call.watch(observed)
    return observed


def settle_async_stream(call: Call, chunks: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """An async generator over a response already received."""
    observed = observe_async(chunks, call, _ChunkReader(call))
    call.watch(observed)
    return observed


def _text_part(text: str) -> dict[str, str]:
    return {"type": "text", "content": text}


def _texts(response: Any) -> list[str]:
    texts = []
    for candidate in (read_field(response, "candidates") or ())[:1]:
        for part in read_field(read_field(candidate, "content"), "parts") or ():
            text = read_field(part, "text")
            if isinstance(text, str) and text and not read_field(part, "thought"):
                texts.append(text)
    return texts


def output_messages(response: Any) -> list[dict[str, Any]]:
    """The first candidate's text, for content capture."""
    candidates = read_field(response, "candidates") or ()
    reason = finish_reason(read_field(candidates[0], "finish_reason")) if candidates else None
    return [
        {"role": "model", "parts": [_text_part("".join(_texts(response)))], "finish_reason": reason}
    ]


def input_messages(contents: Any) -> list[dict[str, Any]]:
    """The request's contents as messages of text parts, for content capture."""
    items = contents if isinstance(contents, list | tuple) else [contents]
    messages: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, str):
            messages.append({"role": "user", "parts": [_text_part(item)]})
            continue
        parts = read_field(item, "parts")
        if parts is None:
            text = read_field(item, "text")
            parts = [item] if isinstance(text, str) else []
        texts = [read_field(part, "text") for part in parts]
        messages.append(
            {
                "role": read_field(item, "role") or "user",
                "parts": [_text_part(text) for text in texts if isinstance(text, str)],
            }
        )
    return messages
