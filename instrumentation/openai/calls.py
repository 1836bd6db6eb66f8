"""One instrumented OpenAI call: its span, what it has seen, and how its result is observed.

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
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from openai import AsyncStream, Stream

from spanledger.instrumentation.genai import (
    HIDE,
    StreamSpan,
    capture_content_enabled,
    guarded,
    observe,
    observe_async,
    record_output_messages,
)
from spanledger.instrumentation.genai.stream import ItemCallback

from .requests import RESPONSES, InferenceRequest
from .usage import (
    RESPONSE_EVENTS,
    read_field,
    reported_cost_from_headers,
    usage_from_result,
    usage_from_tokens,
)

OUTPUT_TEXT_DELTA = "response.output_text.delta"
TERMINAL_RESPONSE_EVENTS = frozenset(
    {"response.completed", "response.incomplete", "response.failed"}
)


@dataclass(slots=True)
class Call:
    """State shared by the wrappers for one inference call."""

    request: InferenceRequest
    state: StreamSpan
    usage_injected: bool = False
    capture_content: bool = False
    returned: bool = False
    stream_observed: bool = False
    streamed_text: list[str] = field(default_factory=list)

    @property
    def streamed(self) -> bool:
        return self.request.streamed

    def note_headers(self, headers: Any) -> None:
        """Take a proxy-reported cost from the response headers."""
        cost = reported_cost_from_headers(headers)
        if cost is not None and self.state.usage.reported_cost is None:
            self.state.usage.reported_cost = cost

    def take_result(self, result: Any) -> None:
        """Record usage and (opt-in) content of a whole, non-streamed result."""
        self.state.usage.update(usage_from_result(result))
        if self.capture_content:
            record_output_messages(self.state.span, output_messages(result))

    def finish(self) -> None:
        self.state.finish(completed=False if self.streamed else None)


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
    call.note_headers(http_response.headers)
    if not call.streamed:
        try:
            content = http_response.content
        except Exception:
            content = None
        if content is not None:
            with guarded("reading a raw OpenAI response body"):
                call.take_result(json.loads(content))
            call.finish()
            return
    call.state.watch(raw, completed=False if call.streamed else None)


_STREAMS = (Stream, AsyncStream)


def take_parsed(call: Call, raw: Any, result: Any) -> None:
    """Observe what a raw response was parsed into: a stream, or a whole result."""
    call.note_headers(raw.http_response.headers)
    if isinstance(result, _STREAMS):
        observe_stream(call, result)
        return
    call.take_result(result)
    if call.returned:
        call.finish()


def observe_stream(call: Call, stream: Stream[Any] | AsyncStream[Any]) -> None:
    """Observe a stream in place: the caller keeps the very same Stream/AsyncStream object."""
    if call.stream_observed:
        return
    call.stream_observed = True
    state = call.state
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
    if call.request.path == RESPONSES:
        return partial(read_response_event, call)
    return chunk_reader(call)


def chunk_reader(call: Call) -> ItemCallback:
    """Read each Chat Completions / Completions chunk; hide the usage chunk we asked for.

    This runs for every chunk, so what stays the same for the whole stream is looked up once
    here, and a content chunk costs a handful of lookups: its fields, its choices' finish
    reasons, its (absent) usage.
    """
    usage = call.state.usage
    reasons = usage.finish_reasons
    injected = call.usage_injected
    capture = call.capture_content

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
                    _gather_text(call, choice, reason)
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


def _gather_text(call: Call, choice: Any, reason: Any) -> None:
    delta = read_field(choice, "delta")
    text = read_field(delta, "content") if delta is not None else read_field(choice, "text")
    if text:
        call.streamed_text.append(text)
    if reason:
        record_streamed_content(call)


def read_response_event(call: Call, event: Any) -> Any:
    """Read one Responses API stream event."""
    event_type = read_field(event, "type")
    if event_type not in RESPONSE_EVENTS:
        if event_type == OUTPUT_TEXT_DELTA:
            call.state.usage.content_chunks += 1  # type: ignore[operator]
        return event
    response = read_field(event, "response")
    seen = usage_from_result(response)
    if event_type not in TERMINAL_RESPONSE_EVENTS:
        seen.finish_reasons.clear()
    call.state.usage.update(seen)
    if call.capture_content and event_type in TERMINAL_RESPONSE_EVENTS:
        record_output_messages(call.state.span, output_messages(response))
    return event


def record_streamed_content(call: Call) -> None:
    """Write the text gathered from chat deltas (content capture only)."""
    if call.capture_content and call.streamed_text:
        record_output_messages(
            call.state.span, [{"role": "assistant", "content": "".join(call.streamed_text)}]
        )


def new_call(request: InferenceRequest, state: StreamSpan, usage_injected: bool) -> Call:
    # Positional: calling a class with keywords builds a dict of them on every call.
    return Call(request, state, usage_injected, capture_content_enabled())
