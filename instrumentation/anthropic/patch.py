"""The wrappers around the SDK's base-client ``request`` that trace Messages API calls.

Every Messages call of the SDK, whichever helper made it (``messages.create``, ``stream``,
``parse``, ``beta.messages.*``, ``with_raw_response``, ``with_streaming_response``), goes through
``SyncAPIClient.request`` / ``AsyncAPIClient.request`` with a ``POST /v1/messages``. The wrapper
starts one ``chat {model}`` span there and ends it:

- at once, for a Message that was read before ``request`` returned (parsed or raw);
- when the application has read, closed or dropped the body, for a stream or an unread raw
  response, by watching ``response.stream`` (see ``body.py``);
- with ERROR and ``error.type``, for an exception, which is re-raised untouched.

Return values are passed back as they are: the same ``Stream``, ``Message`` or ``APIResponse``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from functools import cache, lru_cache
from typing import Any
from urllib.parse import urlsplit

import httpx2
from opentelemetry.context import attach, detach
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import Span, Status, StatusCode, Tracer, set_span_in_context

from spanledger import semconv
from spanledger.instrumentation.budgets import acheck_budget, check_budget
from spanledger.instrumentation.genai import (
    ERROR_TYPE,
    OPERATION_CHAT,
    StreamSpan,
    capture_content_enabled,
    end_with_error,
    guarded,
    log_fault,
    record_input_messages,
    record_output_messages,
    start_inference_span,
)
from spanledger.instrumentation.genai.providers import endpoint_of

from .body import watch_body
from .message_body import BodyOutcome, MessageBodyWatcher, read_whole_body
from .sdk_spans import restore_sdk_spans, suppress_sdk_spans
from .usage import MessageFacts, facts_from_message, get, to_inference_usage

MESSAGES_PATH = "/v1/messages"
PROVIDER = "anthropic"
PLATFORM_PROVIDERS = {"bedrock": "aws.bedrock", "vertex": "gcp.vertex_ai"}
"""The cloud platforms whose clients are traced, and the provider each call is named after
(``AnthropicBedrock`` and its Mantle client, ``AnthropicVertex``)."""

_REQUEST_NUMBERS: Mapping[str, tuple[str, type | tuple[type, ...]]] = {
    "gen_ai.request.max_tokens": ("max_tokens", int),
    "gen_ai.request.temperature": ("temperature", (int, float)),
    "gen_ai.request.top_p": ("top_p", (int, float)),
    "gen_ai.request.top_k": ("top_k", (int, float)),
}


def _cut_short_attributes(facts: MessageFacts) -> dict[str, Any]:
    """A stream that ended before its final usage: the content deltas that arrived and, as an
    estimate of the output tokens, the larger of that and the count so far."""
    chunks = facts.content_chunks or 0
    values: dict[str, Any] = {semconv.STREAM_CHUNKS: chunks}
    if not facts.output_final:
        values[semconv.USAGE_ESTIMATE_OUTPUT_TOKENS] = max(chunks, facts.usage.output_tokens or 0)
    return values


def _record_facts(span: Span, facts: MessageFacts, completed: bool = True) -> None:
    if span.is_recording():
        attributes = to_inference_usage(facts).attributes()
        if not completed and facts.content_chunks is not None:
            attributes.update(_cut_short_attributes(facts))
        usage = facts.usage
        for name, value in (
            (semconv.USAGE_CACHE_CREATION_1H_INPUT_TOKENS, usage.cache_creation_1h_input_tokens),
            (semconv.ANTHROPIC_USAGE_COMPACTION_INPUT_TOKENS, usage.compaction_input_tokens),
            (semconv.ANTHROPIC_USAGE_COMPACTION_OUTPUT_TOKENS, usage.compaction_output_tokens),
        ):
            if value is not None:
                attributes[name] = value
        span.set_attributes(attributes)
    if (facts.output_text or facts.stop_reason) and capture_content_enabled():
        record_output_messages(
            span,
            [
                {
                    "role": "assistant",
                    "parts": [{"type": "text", "content": text} for text in facts.output_text],
                    "finish_reason": facts.stop_reason,
                }
            ],
        )


def _options_of(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    return args[1] if len(args) > 1 else kwargs.get("options")


def provider_of(client: Any) -> str | None:
    """The provider a client's calls are named after; ``None`` for a platform not traced."""
    platform = getattr(client, "_otel_platform", None)
    return PROVIDER if platform is None else PLATFORM_PROVIDERS.get(platform)


def is_messages_call(client: Any, options: Any) -> bool:
    """Whether ``options`` is a Messages API call on a first-party, Bedrock or Vertex AI client.

    The platform clients rewrite the path only when they build the request, after this
    wrapper; Bedrock streams in the AWS event-stream encoding, which the body watcher reads.
    Clients of other platforms (Foundry, AWS, Google Cloud) keep the SDK's own span.
    """
    if provider_of(client) is None:
        return False
    return _is_messages_route(str(getattr(options, "method", "")), str(getattr(options, "url", "")))


@lru_cache(maxsize=256)
def _is_messages_route(method: str, url: str) -> bool:
    return method.lower() == "post" and urlsplit(url).path.rstrip("/") == MESSAGES_PATH


class MessagesCall:
    """One traced Messages call: its span, from the request to the end of the response."""

    def __init__(self, tracer: Tracer, client: Any, options: Any, stream_arg: bool) -> None:
        body = getattr(options, "json_data", None)
        model = get(body, "model")
        streamed = stream_arg or get(body, "stream") is True
        attributes: dict[str, Any] = {}
        for attribute, (name, kinds) in _REQUEST_NUMBERS.items():
            value = get(body, name)
            if isinstance(value, kinds) and not isinstance(value, bool):
                attributes[attribute] = value
        default = provider_of(client) or PROVIDER
        provider, address, port = endpoint_of(getattr(client, "base_url", ""), default)
        self.keep_text = capture_content_enabled()
        self.span = start_inference_span(
            tracer,
            operation=OPERATION_CHAT,
            provider=provider,
            request_model=model if isinstance(model, str) else None,
            stream=streamed,
            server_address=address,
            server_port=port,
            attributes=attributes,
        )
        if self.keep_text:
            with guarded("recording Anthropic request messages"):
                messages = get(body, "messages")
                # Another iterable may be a one-shot generator the SDK has yet to read.
                if isinstance(messages, list | tuple):
                    record_input_messages(self.span, list(messages))

    def failed(self, error: BaseException) -> None:
        """The call raised ``error``: ERROR for an exception, a plain end for a cancellation."""
        if isinstance(error, Exception):
            end_with_error(self.span, error)
        else:
            self.span.end()

    def returned(self, result: object) -> None:
        """The call returned ``result``: end now, or once its body has been read."""
        response = None
        try:
            response = _response_of(result)
        except Exception:
            log_fault("finding the Anthropic response")
        if response is not None and not response.is_closed and self._watch(response):
            return
        outcome = None
        try:
            outcome = _read_outcome(result, response, keep_text=self.keep_text)
        except Exception:
            log_fault("reading an Anthropic Message")
        streamed = outcome is not None and outcome.streamed
        self._end(outcome, StreamSpan(self.span) if streamed else None)

    def _watch(self, response: httpx2.Response) -> bool:
        """End the span once the body of ``response`` is read; ``False`` if it cannot be."""
        state = StreamSpan(self.span)
        watcher = MessageBodyWatcher(
            content_type=response.headers.get("content-type", ""),
            content_encoding=response.headers.get("content-encoding", ""),
            on_end=lambda outcome: self._end(outcome, state),
            keep_text=self.keep_text,
        )
        with guarded("watching an Anthropic response body"):
            watch_body(response, watcher)
            return True
        return False

    def _end(self, outcome: BodyOutcome | None, state: StreamSpan | None) -> None:
        """Record ``outcome`` and end the span, through ``state`` for a body read over time."""
        span = self.span
        if state is not None and state.ended:
            return
        if outcome is not None and outcome.facts is not None:
            try:
                _record_facts(span, outcome.facts, outcome.completed)
            except Exception:
                log_fault("recording Anthropic usage")
        streamed = outcome is not None and outcome.streamed
        if outcome is not None and outcome.error is not None:
            if state is not None:
                state.fail(outcome.error, streamed=streamed)
            else:
                end_with_error(span, outcome.error)
            return
        if outcome is not None and outcome.error_type is not None and span.is_recording():
            span.set_attribute(ERROR_TYPE, outcome.error_type)
            span.set_status(Status(StatusCode.ERROR, outcome.error_type))
        if state is not None:
            # ``spanledger.stream.completed`` is for event streams only.
            state.finish(completed=outcome is not None and outcome.completed if streamed else None)
        else:
            span.end()


@cache
def _sdk_result_types() -> tuple[tuple[type, ...], type]:
    """The SDK's stream classes and its raw response class (imported once, when first needed)."""
    from anthropic._response import BaseAPIResponse
    from anthropic._streaming import AsyncStream, Stream

    return (Stream, AsyncStream), BaseAPIResponse


def _response_of(result: object) -> httpx2.Response | None:
    """The HTTP response behind ``result``: a stream's, a raw response's, or ``result`` itself."""
    streams, raw_response = _sdk_result_types()
    response: object = None
    if isinstance(result, streams):
        response = result.response  # type: ignore[attr-defined]
    elif isinstance(result, raw_response):
        response = result.http_response  # type: ignore[attr-defined]
    elif isinstance(result, httpx2.Response):
        response = result
    return response if isinstance(response, httpx2.Response) else None


def _read_outcome(
    result: object, response: httpx2.Response | None, *, keep_text: bool
) -> BodyOutcome | None:
    """What a result read in full tells: a Message model, or the body of a closed response."""
    if response is None:
        if get(result, "usage") is None:
            return None
        facts = facts_from_message(result, keep_text=keep_text)
        # Positional (facts, streamed, completed): a class call with keywords builds a dict.
        return BodyOutcome(facts, False, True)
    try:
        content = response.content
    except httpx2.ResponseNotRead:
        return None
    content_type = response.headers.get("content-type", "")
    return read_whole_body(content_type, content, keep_text=keep_text)


def _start(
    tracer: Tracer, client: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> MessagesCall | None:
    if not is_instrumentation_enabled():
        return None
    try:
        options = _options_of(args, kwargs)
        if is_messages_call(client, options):
            return MessagesCall(tracer, client, options, kwargs.get("stream") is True)
    except Exception:
        log_fault("starting an Anthropic span")
    return None


def _finish(call: MessagesCall, result: object) -> None:
    try:
        call.returned(result)
    except Exception:
        log_fault("ending an Anthropic span")


def _fail(call: MessagesCall, error: BaseException) -> None:
    try:
        call.failed(error)
    except Exception:
        log_fault("ending a failed Anthropic span")


def messages_request(tracer: Tracer) -> Callable[..., Any]:
    """The wrapt wrapper for ``SyncAPIClient.request``.

    While the SDK sends, the SDK's own span is off and the call's span is current (so HTTP
    client spans nest under it), set by attaching a context rather than through
    ``trace.use_span``: the same effect without a generator-based context manager.
    """

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        call = _start(tracer, instance, args, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        try:
            suppressed = suppress_sdk_spans()
            span_token = attach(set_span_in_context(call.span))
            try:
                check_budget()
                result = wrapped(*args, **kwargs)
            finally:
                detach(span_token)
                restore_sdk_spans(suppressed)
        except BaseException as error:
            _fail(call, error)
            raise
        _finish(call, result)
        return result

    return wrapper


def async_messages_request(tracer: Tracer) -> Callable[..., Awaitable[Any]]:
    """The wrapt wrapper for ``AsyncAPIClient.request``; see :func:`messages_request`."""

    async def wrapper(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        call = _start(tracer, instance, args, kwargs)
        if call is None:
            return await wrapped(*args, **kwargs)
        try:
            suppressed = suppress_sdk_spans()
            span_token = attach(set_span_in_context(call.span))
            try:
                await acheck_budget()
                result = await wrapped(*args, **kwargs)
            finally:
                detach(span_token)
                restore_sdk_spans(suppressed)
        except BaseException as error:
            _fail(call, error)
            raise
        _finish(call, result)
        return result

    return wrapper
