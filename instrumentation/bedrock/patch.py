"""What each Bedrock runtime call is, and how its answer is read.

Every operation of every botocore client goes through ``BaseClient._make_api_call(operation,
params)``; the calls of a ``bedrock-runtime`` client to ``Converse``, ``ConverseStream``,
``InvokeModel`` and ``InvokeModelWithResponseStream`` are traced, everything else passes by.

- Converse: the usage is in the answer.
- ConverseStream and InvokeModelWithResponseStream: the answer's event stream (``stream`` /
  ``body``) is replaced by a proxy of it (``isinstance`` still holds) that reads each event as
  the application iterates, and ends the span at the end, on an error, on ``close()`` or when
  the stream is dropped.
- InvokeModel: the body is read before the answer is returned (it is one JSON document) and
  replaced by a ``StreamingBody`` over the same bytes; a failed read is kept for the
  application's own read to raise, as it would have.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any

from botocore.response import StreamingBody

from spanledger.instrumentation.genai import (
    OPERATION_CHAT,
    OPERATION_EMBEDDINGS,
    OPERATION_TEXT_COMPLETION,
    Call,
    CallDescription,
    StreamProxy,
    capture_content_enabled,
    read_field,
    record_output_messages,
)
from spanledger.instrumentation.genai.endpoints import server_address_port

from .usage import (
    InvokeStreamReader,
    body_usage,
    converse_result,
    converse_usage,
    fill_missing,
    header_usage,
)

PROVIDER = "aws.bedrock"
SERVICE = "bedrock-runtime"
CONVERSE = "Converse"
CONVERSE_STREAM = "ConverseStream"
INVOKE = "InvokeModel"
INVOKE_STREAM = "InvokeModelWithResponseStream"
OPERATIONS = frozenset({CONVERSE, CONVERSE_STREAM, INVOKE, INVOKE_STREAM})

_CONVERSE_NUMBERS = (
    ("gen_ai.request.max_tokens", "maxTokens"),
    ("gen_ai.request.temperature", "temperature"),
    ("gen_ai.request.top_p", "topP"),
)
_BODY_NUMBERS = (
    ("gen_ai.request.max_tokens", ("max_tokens", "max_gen_len", "maxTokens", "max_new_tokens")),
    ("gen_ai.request.temperature", ("temperature",)),
    ("gen_ai.request.top_p", ("top_p", "topP")),
    ("gen_ai.request.top_k", ("top_k", "topK")),
)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _decoded(body: Any) -> dict[str, Any] | None:
    """An InvokeModel request body as JSON, when it is given as bytes or text."""
    if isinstance(body, bytes | bytearray | str):
        try:
            decoded = json.loads(body)
        except ValueError:
            return None
        return decoded if isinstance(decoded, dict) else None
    return None


def _invoke_operation(model: str, body: Mapping[str, Any] | None) -> str:
    if "embed" in model:
        return OPERATION_EMBEDDINGS
    if body is not None and "messages" not in body and ("prompt" in body or "inputText" in body):
        return OPERATION_TEXT_COMPLETION
    return OPERATION_CHAT


def _invoke_attributes(body: Mapping[str, Any] | None) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    if body is None:
        return attributes
    places = [body]
    for nested in ("inferenceConfig", "textGenerationConfig"):
        if isinstance(body.get(nested), dict):
            places.append(body[nested])
    for attribute, names in _BODY_NUMBERS:
        for place in places:
            found = next((place[n] for n in names if _number(place.get(n))), None)
            if found is not None:
                attributes[attribute] = found
                break
    return attributes


def describe(client: Any, args: tuple, kwargs: dict) -> CallDescription | None:
    """A Bedrock runtime inference call, or ``None`` for any other AWS call."""
    meta = client.meta
    if meta.service_model.service_name != SERVICE:
        return None
    operation = args[0] if args else kwargs.get("operation_name")
    if operation not in OPERATIONS:
        return None
    params = (args[1] if len(args) > 1 else kwargs.get("api_params")) or {}
    model = params.get("modelId")
    model = model if isinstance(model, str) and model else None
    address, port = server_address_port(meta.endpoint_url)
    if operation in (CONVERSE, CONVERSE_STREAM):
        config = params.get("inferenceConfig") or {}
        attributes = {a: config[n] for a, n in _CONVERSE_NUMBERS if _number(config.get(n))}
        kind = OPERATION_CHAT
        messages = params
    else:
        body = _decoded(params.get("body"))
        attributes = _invoke_attributes(body)
        kind = _invoke_operation(model or "", body)
        messages = body
    return CallDescription(
        kind,
        PROVIDER,
        model,
        stream=operation in (CONVERSE_STREAM, INVOKE_STREAM),
        server_address=address,
        server_port=port,
        attributes=attributes,
        input_messages=lambda: input_messages(messages),
        details=operation,
    )


def settle(call: Call, result: Any) -> Any:
    """Read the answer of the operation ``call.description.details`` names."""
    operation = call.description.details
    if operation == CONVERSE:
        call.usage.update(converse_result(result))
        if capture_content_enabled():
            message = read_field(read_field(result, "output"), "message")
            record_output_messages(call.span, [_message(message, result.get("stopReason"))])
        call.finish(completed=None)
    elif operation == CONVERSE_STREAM:
        result["stream"] = ConverseStreamProxy(result["stream"], call)
    elif operation == INVOKE:
        _settle_invoke(call, result)
    else:
        result["body"] = InvokeStreamProxy(result["body"], call)
    return result


def _settle_invoke(call: Call, result: dict[str, Any]) -> None:
    body = result["body"]
    content_length = getattr(body, "_content_length", None)
    try:
        data = body.read()
    except Exception as error:
        result["body"] = StreamingBody(_FailedRead(error), None)
        call.fail(error, streamed=False)
        return
    result["body"] = StreamingBody(io.BytesIO(data), content_length)
    decoded = _decoded(data)
    usage = body_usage(decoded)
    headers = read_field(result.get("ResponseMetadata"), "HTTPHeaders")
    fill_missing(usage, header_usage(headers))
    call.usage.update(usage)
    if capture_content_enabled() and decoded is not None:
        record_output_messages(call.span, [{"role": "assistant", "body": decoded}])
    call.finish(completed=None)


class _FailedRead:
    """A raw stream whose every read raises the error that broke the read of the real one."""

    def __init__(self, error: BaseException) -> None:
        self._error = error

    def read(self, amt: int | None = None) -> bytes:
        raise self._error

    def close(self) -> None:
        return None


class ConverseStreamProxy(StreamProxy):
    """The ``stream`` of a ConverseStream answer, read event by event."""

    def __init__(self, wrapped: Any, call: Call) -> None:
        self._self_call = call
        self._self_texts: list[str] | None = [] if capture_content_enabled() else None
        super().__init__(wrapped, call)

    def on_item(self, event: Any) -> Any:
        call = self._self_call
        metadata = event.get("metadata")
        if metadata is not None:
            call.usage.update(converse_usage(read_field(metadata, "usage")))
        stop = event.get("messageStop")
        if stop is not None:
            reason = read_field(stop, "stopReason")
            if isinstance(reason, str) and reason not in call.usage.finish_reasons:
                call.usage.finish_reasons.append(reason)
            if self._self_texts is not None:
                text = {"content": [{"text": "".join(self._self_texts)}]}
                record_output_messages(call.span, [_message(text, reason)])
        elif self._self_texts is not None:
            text = read_field(read_field(event.get("contentBlockDelta"), "delta"), "text")
            if isinstance(text, str):
                self._self_texts.append(text)
        return event


class InvokeStreamProxy(StreamProxy):
    """The ``body`` of an InvokeModelWithResponseStream answer, read chunk by chunk."""

    def __init__(self, wrapped: Any, call: Call) -> None:
        self._self_reader = InvokeStreamReader(call.usage)
        super().__init__(wrapped, call)

    def on_item(self, event: Any) -> Any:
        data = read_field(event.get("chunk"), "bytes")
        if isinstance(data, bytes | bytearray):
            self._self_reader.add(_decoded(data))
        return event


def _message(message: Any, stop_reason: Any) -> dict[str, Any]:
    parts = [
        {"type": "text", "content": text}
        for block in read_field(message, "content") or ()
        if isinstance(text := read_field(block, "text"), str)
    ]
    return {"role": "assistant", "parts": parts, "finish_reason": stop_reason}


def input_messages(request: Mapping[str, Any] | None) -> Any:
    """The request's system prompt and messages (Converse, Messages-style bodies) or prompt."""
    if request is None:
        return None
    messages = list(request.get("messages") or ())
    system = request.get("system")
    if system:
        messages.insert(0, {"role": "system", "content": system})
    if not messages:
        prompt = request.get("prompt", request.get("inputText"))
        return [{"role": "user", "content": prompt}] if prompt is not None else None
    return messages
