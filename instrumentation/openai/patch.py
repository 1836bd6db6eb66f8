"""The OpenAI SDK's patch points: its client's ``request``, where every call passes, and the
response classes' ``_parse``, where every result is built.

- ``SyncAPIClient.request`` / ``AsyncAPIClient.request`` (an unshadowable patch, see
  ``genai.patching``): every API call of every resource (``create``, ``parse``, the ``stream``
  helpers, ``with_raw_response``, ``with_streaming_response``) passes here. :func:`describe`
  picks the inference requests out; the kit's wrapper gives each its span, current while the
  client sends, and its budget check. A stream that would not report usage is asked for its
  final usage chunk (:func:`_ask_for_usage`), which the caller then does not see.
- ``BaseAPIResponse._parse`` / ``LegacyAPIResponse._parse``: every result is built here, inside
  ``request`` for ordinary calls (the kit's ``current_call()``) and later for raw responses; this
  is where usage is read and streams are observed, in place, so the caller gets the very object
  the SDK built.

A call's span ends exactly once, whichever of these comes first:

- the client's ``request`` returns a parsed result or raises (the common case);
- a raw response (``with_raw_response`` / ``with_streaming_response``) is parsed, its body was
  already read, or it is garbage collected unparsed;
- a stream is exhausted, fails, is closed (directly, by ``with``/``async with``, or through the
  ``chat.completions.stream`` / ``responses.stream`` helpers, which all close the HTTP response)
  or is garbage collected.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from openai import AsyncStream, Stream
from openai._legacy_response import LegacyAPIResponse
from openai._response import BaseAPIResponse

from spanledger.instrumentation.genai import (
    HIDE,
    Call,
    CallDescription,
    Describe,
    capture_content_enabled,
    current_call,
    guarded,
    log_fault,
    observe,
    observe_async,
    record_output_messages,
)
from spanledger.instrumentation.genai.endpoints import Endpoint, endpoint_of
from spanledger.instrumentation.genai.stream import ItemCallback

from .requests import (
    RESPONSES,
    InferenceRequest,
    asked_for_usage,
    read_request,
    with_usage_requested,
)
from .usage import (
    RESPONSE_EVENTS,
    read_field,
    reported_cost_from_headers,
    usage_from_result,
    usage_from_tokens,
)

AZURE_PROVIDER = "azure.ai.openai"
OUTPUT_TEXT_DELTA = "response.output_text.delta"
TERMINAL_RESPONSE_EVENTS = frozenset(
    {"response.completed", "response.incomplete", "response.failed"}
)

_RAW_RESPONSES: weakref.WeakKeyDictionary[Any, Call] = weakref.WeakKeyDictionary()
_RAW_RESPONSE_TYPES = (BaseAPIResponse, LegacyAPIResponse)
_STREAMS = (Stream, AsyncStream)


@dataclass(slots=True)
class OpenAICall:
    """What the patch points share about one inference call: the ``details`` of its description."""

    request: InferenceRequest
    capture_content: bool = False
    usage_injected: bool = False
    returned: bool = False
    stream_observed: bool = False
    streamed_text: list[str] = field(default_factory=list)

    @property
    def streamed(self) -> bool:
        return self.request.streamed


def _endpoint(client: Any) -> Endpoint:
    """``(provider, server.address, server.port)`` of a client, kept until its base URL changes."""
    # ``base_url`` is a property that runs an import on every read; it returns ``_base_url``.
    base_url = getattr(client, "_base_url", None)
    if base_url is None:
        base_url = client.base_url
    default = AZURE_PROVIDER if type(client).__name__.startswith("Azure") else "openai"
    return endpoint_of(base_url, default)


def _input_messages(body: dict[str, Any], path: str) -> Any:
    """The request's messages in chat form, for content capture."""
    if path != RESPONSES:
        return body.get("messages", body.get("prompt"))
    given = body.get("input")
    messages = given if isinstance(given, list) else [{"role": "user", "content": given}]
    instructions = body.get("instructions")
    if instructions:
        return [{"role": "system", "content": instructions}, *messages]
    return messages


def describer(inject_stream_usage: bool) -> Describe:
    """The ``describe`` of ``request``; ``inject_stream_usage``: ask streams that would not
    report usage for it."""

    def describe(client: Any, args: tuple, kwargs: dict) -> CallDescription | None:
        options = args[1] if len(args) > 1 else kwargs.get("options")
        request = read_request(options, bool(kwargs.get("stream", False)))
        if request is None:
            return None
        provider, address, port = _endpoint(client)
        capture = capture_content_enabled()
        inject = inject_stream_usage and request.streamed and not asked_for_usage(request)
        # Positional: calling a class with keywords builds a dict of them on every call.
        return CallDescription(
            request.operation,
            provider,
            request.model,
            request.streamed,
            address,
            port,
            None,
            partial(_input_messages, request.body, request.path) if capture else None,
            OpenAICall(request, capture),
            None,
            _ask_for_usage if inject else None,
        )

    return describe


def _ask_for_usage(call: Call, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Send a copy of the request whose stream reports its usage; a span that is not recording
    gets nothing from the usage chunk, so its request is left be."""
    if not call.span.is_recording():
        return args, kwargs
    if len(args) > 1:
        args = (args[0], with_usage_requested(args[1]), *args[2:])
    else:
        kwargs = {**kwargs, "options": with_usage_requested(kwargs["options"])}
    call.description.details.usage_injected = True
    return args, kwargs


def settle(call: Call, result: Any) -> Any:
    """After ``request`` returned: end the span unless the result now owns it."""
    facts: OpenAICall = call.description.details
    facts.returned = True
    if call.ended or facts.stream_observed:
        return result
    if isinstance(result, _RAW_RESPONSE_TYPES):
        _RAW_RESPONSES[result] = call
        settle_raw_response(call, result)
        return result
    _finish(call)
    return result


def parse_wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
    """Wrapper for the response classes' ``_parse``: read usage, observe streams."""
    result = wrapped(*args, **kwargs)
    try:
        call = (_RAW_RESPONSES.get(instance) if _RAW_RESPONSES else None) or current_call()
        if call is not None and not call.ended and type(call.description.details) is OpenAICall:
            take_parsed(call, instance, result)
    except Exception:
        log_fault("reading an OpenAI result")
    return result


def _finish(call: Call) -> None:
    call.finish(completed=False if call.description.stream else None)


def _note_headers(call: Call, headers: Any) -> None:
    """Take a proxy-reported cost from the response headers."""
    cost = reported_cost_from_headers(headers)
    if cost is not None and call.usage.reported_cost is None:
        call.usage.reported_cost = cost


def _take_result(call: Call, result: Any) -> None:
    """Record usage and (opt-in) content of a whole, non-streamed result."""
    call.usage.update(usage_from_result(result))
    if call.description.details.capture_content:
        record_output_messages(call.span, output_messages(result))


def output_messages(result: Any) -> list[dict[str, Any]] | None:
    """The assistant output of a chat, completion or Responses result, for content capture."""
    choices = read_field(result, "choices")
    if isinstance(choices, list):
        messages = []
        for choice in choices:
            message = read_field(choice, "message")
            content = read_field(message, "content") if message is not None else None
            if content is None:
                content = read_field(choice, "text")
            messages.append(
                {
                    "role": "assistant",
                    "content": content,
                    "finish_reason": read_field(choice, "finish_reason"),
                }
            )
        return messages
    text = getattr(result, "output_text", None)
    if isinstance(text, str):
        return [{"role": "assistant", "content": text}]
    return None


def settle_raw_response(call: Call, raw: Any) -> None:
    """Handle an unparsed raw response returned to the caller."""
    http_response = raw.http_response
    _note_headers(call, http_response.headers)
    streamed = call.description.stream
    if not streamed:
        try:
            content = http_response.content
        except Exception:
            content = None
        if content is not None:
            with guarded("reading a raw OpenAI response body"):
                _take_result(call, json.loads(content))
            _finish(call)
            return
    call.watch(raw, completed=False if streamed else None)


def take_parsed(call: Call, raw: Any, result: Any) -> None:
    """Observe what a raw response was parsed into: a stream, or a whole result."""
    _note_headers(call, raw.http_response.headers)
    if isinstance(result, _STREAMS):
        observe_stream(call, result)
        return
    _take_result(call, result)
    if call.description.details.returned:
        _finish(call)


def observe_stream(call: Call, stream: Stream[Any] | AsyncStream[Any]) -> None:
    """Observe a stream in place: the caller keeps the very same Stream/AsyncStream object."""
    facts: OpenAICall = call.description.details
    if facts.stream_observed:
        return
    facts.stream_observed = True
    state = call
    state.usage.content_chunks = 0
    on_item = item_reader(call)
    response = stream.response
    if isinstance(stream, AsyncStream):
        stream._iterator = observe_async(stream._iterator, state, on_item)
        original_aclose = response.aclose

        async def aclose() -> None:
            try:
                await original_aclose()
            finally:
                state.transport_closed()

        response.aclose = aclose
    else:
        stream._iterator = observe(stream._iterator, state, on_item)
        original_close = response.close

        def close() -> None:
            try:
                original_close()
            finally:
                state.transport_closed()

        response.close = close
    state.watch(stream, completed=False)


def item_reader(call: Call) -> ItemCallback:
    """The callback that reads each item of ``call``'s stream, for :func:`observe`."""
    if call.description.details.request.path == RESPONSES:
        return partial(read_response_event, call)
    return chunk_reader(call)


def chunk_reader(call: Call) -> ItemCallback:
    """Read each Chat Completions / Completions chunk; hide the usage chunk we asked for.

    This runs for every chunk, so what stays the same for the whole stream is looked up once
    here, and a content chunk costs a handful of lookups: its fields, its choices' finish
    reasons, its (absent) usage.
    """
    usage = call.usage
    reasons = usage.finish_reasons
    facts: OpenAICall = call.description.details
    injected = facts.usage_injected
    capture = facts.capture_content

    def read_chunk(chunk: Any) -> Any:
        try:
            fields = chunk.__dict__
        except AttributeError:
            if type(chunk) is not dict:
                return chunk
            fields = chunk
        if usage.response_id is None:
            usage.response_id = fields.get("id")
            usage.response_model = fields.get("model")
        try:
            # A model of the SDK holds every field, ``None`` when the chunk left it out.
            choices = fields["choices"]
            tokens = fields["usage"]
        except KeyError:
            choices = fields.get("choices")
            tokens = fields.get("usage")
        if choices:
            usage.content_chunks += 1  # type: ignore[operator]
            for choice in choices:
                try:
                    reason = choice.finish_reason
                except AttributeError:
                    reason = read_field(choice, "finish_reason")
                if reason and reason not in reasons:
                    reasons.append(reason)
                if capture:
                    _gather_text(call, facts, choice, reason)
        if tokens is not None:
            usage.update(usage_from_tokens(tokens))
            if injected and not choices:
                return HIDE
        elif injected and fields is not chunk:
            # The caller did not ask for usage: leave no trace of ``"usage": null`` in the chunk.
            try:
                fields_set = chunk.__pydantic_fields_set__
            except AttributeError:
                return chunk
            fields_set.discard("usage")
        return chunk

    return read_chunk


def _gather_text(call: Call, facts: OpenAICall, choice: Any, reason: Any) -> None:
    delta = read_field(choice, "delta")
    text = read_field(delta, "content") if delta is not None else read_field(choice, "text")
    if text:
        facts.streamed_text.append(text)
    if reason:
        record_streamed_content(call)


def read_response_event(call: Call, event: Any) -> Any:
    """Read one Responses API stream event."""
    event_type = read_field(event, "type")
    if event_type not in RESPONSE_EVENTS:
        if event_type == OUTPUT_TEXT_DELTA:
            call.usage.content_chunks += 1  # type: ignore[operator]
        return event
    response = read_field(event, "response")
    seen = usage_from_result(response)
    if event_type not in TERMINAL_RESPONSE_EVENTS:
        seen.finish_reasons.clear()
    call.usage.update(seen)
    if call.description.details.capture_content and event_type in TERMINAL_RESPONSE_EVENTS:
        record_output_messages(call.span, output_messages(response))
    return event


def record_streamed_content(call: Call) -> None:
    """Write the text gathered from chat deltas (content capture only)."""
    facts: OpenAICall = call.description.details
    if facts.capture_content and facts.streamed_text:
        record_output_messages(
            call.span, [{"role": "assistant", "content": "".join(facts.streamed_text)}]
        )
