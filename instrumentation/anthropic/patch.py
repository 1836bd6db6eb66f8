"""The wrappers around the SDK's base-client ``request`` that trace Messages API calls.

Every Messages call of the SDK, whichever helper made it (``messages.create``, ``stream``,
``parse``, ``beta.messages.*``, ``with_raw_response``, ``with_streaming_response``), goes through
``SyncAPIClient.request`` / ``AsyncAPIClient.request`` with a ``POST /v1/messages``. The kit's
:func:`call_wrapper` starts one ``chat {model}`` span there (see :func:`describe`), and
:func:`settle` ends it:

- at once, for a Message that was read before ``request`` returned (parsed or raw);
- when the application has read, closed or dropped the body, for a stream or an unread raw
  response, by reading the body's bytes as they pass (the kit's ``body`` and ``body_reader``);
- with ERROR and ``error.type``, for an exception, which is re-raised untouched.

Why bytes rather than the SDK's parsed events, as the other providers read: ``request`` is the
one patch point that no other instrumentor can shadow (OpenInference patches the client classes'
``request``; see ``genai.patching``), and what it returns is not always parsed by the SDK.
``with_streaming_response`` hands the caller the body, read as lines or bytes
(``iter_lines()``), and a raw stream may be read the same way; only the body sees every byte
whichever way it is read. So the usage is read from the server-sent events themselves, with the
kit's SSE decoder (or its AWS event-stream decoder, for ``AnthropicBedrock``), which passes over
the text deltas without decoding them.

Return values are passed back as they are: the same ``Stream``, ``Message`` or ``APIResponse``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache, lru_cache
from typing import Any
from urllib.parse import urlsplit

import httpx2
from opentelemetry.trace import Status, StatusCode

from spanledger import semconv
from spanledger.instrumentation.genai import (
    ERROR_TYPE,
    OPERATION_CHAT,
    Call,
    CallDescription,
    capture_content_enabled,
    current_call,
    guarded,
    log_fault,
    record_output_messages,
)
from spanledger.instrumentation.genai.body import watch_body
from spanledger.instrumentation.genai.body_reader import BodyOutcome, BodyReader, read_whole_body
from spanledger.instrumentation.genai.endpoints import endpoint_of

from .usage import (
    MessageFacts,
    MessageOutcome,
    StreamAccumulator,
    facts_from_message,
    get,
    message_outcome,
    to_inference_usage,
)

MESSAGES_PATH = "/v1/messages"
PROVIDER = "anthropic"
PLATFORM_PROVIDERS = {"bedrock": "aws.bedrock", "vertex": "gcp.vertex_ai"}
"""The cloud platforms whose clients are traced, and the provider each call is named after
(``AnthropicBedrock`` and its Mantle client, ``AnthropicVertex``)."""

MESSAGES = "anthropic messages"
"""The ``details`` of every call this module describes: how :func:`tracing_a_message` knows
the kit's current call is one of ours."""

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


def _record_facts(call: Call, facts: MessageFacts, completed: bool, keep_text: bool) -> None:
    """Take the usage of ``facts`` into ``call`` (written when it ends) and write what only
    Anthropic reports: the 1-hour cache writes, compaction, and for a stream cut short its
    content deltas and output estimate."""
    call.usage = to_inference_usage(facts)
    span = call.span
    if span.is_recording():
        attributes: dict[str, Any] = {}
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
        if attributes:
            span.set_attributes(attributes)
    if keep_text and (facts.output_text or facts.stop_reason):
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
    wrapper; Bedrock streams in the AWS event-stream encoding, which the body reader follows.
    Clients of other platforms (Foundry, AWS, Google Cloud) keep the SDK's own span.
    """
    if provider_of(client) is None:
        return False
    return _is_messages_route(str(getattr(options, "method", "")), str(getattr(options, "url", "")))


@lru_cache(maxsize=256)
def _is_messages_route(method: str, url: str) -> bool:
    return method.lower() == "post" and urlsplit(url).path.rstrip("/") == MESSAGES_PATH


def describe(client: Any, args: tuple, kwargs: dict) -> CallDescription | None:
    """The Messages call that ``request`` is about to send; ``None`` for any other request."""
    options = _options_of(args, kwargs)
    if not is_messages_call(client, options):
        return None
    body = getattr(options, "json_data", None)
    model = get(body, "model")
    streamed = kwargs.get("stream") is True or get(body, "stream") is True
    attributes: dict[str, Any] = {}
    for attribute, (name, kinds) in _REQUEST_NUMBERS.items():
        value = get(body, name)
        if isinstance(value, kinds) and not isinstance(value, bool):
            attributes[attribute] = value
    default = provider_of(client) or PROVIDER
    provider, address, port = endpoint_of(getattr(client, "base_url", ""), default)
    return CallDescription(
        OPERATION_CHAT,
        provider,
        model if isinstance(model, str) else None,
        streamed,
        address,
        port,
        attributes,
        lambda: _request_messages(body),
        MESSAGES,
    )


def _request_messages(body: Any) -> list[Any] | None:
    messages = get(body, "messages")
    # Another iterable may be a one-shot generator the SDK has yet to read.
    return list(messages) if isinstance(messages, list | tuple) else None


def tracing_a_message() -> bool:
    """Whether the request being sent in this context is a Messages call we trace."""
    call = current_call()
    return call is not None and call.description.details is MESSAGES


def settle(call: Call, result: object) -> object:
    """End the span now, or once the body of ``result`` has been read; return ``result``."""
    keep_text = capture_content_enabled()
    response = None
    try:
        response = _response_of(result)
    except Exception:
        log_fault("finding the Anthropic response")
    if response is not None and not response.is_closed and _watch(call, response, keep_text):
        return result
    outcome = None
    try:
        outcome = _read_outcome(result, response, keep_text=keep_text)
    except Exception:
        log_fault("reading an Anthropic Message")
    _end(call, outcome, keep_text)
    return result


def message_body_reader(
    *,
    content_type: str,
    content_encoding: str,
    on_end: Callable[[MessageOutcome], None],
    keep_text: bool = False,
) -> BodyReader:
    """A reader of one Messages response body that reports its :class:`MessageOutcome`."""
    stream = StreamAccumulator(keep_text=keep_text)

    def ended(outcome: BodyOutcome) -> None:
        on_end(message_outcome(outcome, stream, keep_text=keep_text))

    return BodyReader(
        content_type=content_type, content_encoding=content_encoding, events=stream, on_end=ended
    )


def read_message_body(
    content_type: str, content: bytes, *, keep_text: bool = False
) -> MessageOutcome:
    """The outcome of a Messages body that was read in full already; ``content`` is decoded."""
    stream = StreamAccumulator(keep_text=keep_text)
    outcome = read_whole_body(content_type, content, stream)
    return message_outcome(outcome, stream, keep_text=keep_text)


def _watch(call: Call, response: httpx2.Response, keep_text: bool) -> bool:
    """End the span once the body of ``response`` is read; ``False`` if it cannot be."""
    reader = message_body_reader(
        content_type=response.headers.get("content-type", ""),
        content_encoding=response.headers.get("content-encoding", ""),
        on_end=lambda outcome: _end(call, outcome, keep_text),
        keep_text=keep_text,
    )
    with guarded("watching an Anthropic response body"):
        watch_body(response, reader)
        return True
    return False


def _end(call: Call, outcome: MessageOutcome | None, keep_text: bool) -> None:
    """Record ``outcome`` and end the span (a no-op once it has ended)."""
    if call.ended:
        return
    span = call.span
    if outcome is not None and outcome.facts is not None:
        try:
            _record_facts(call, outcome.facts, outcome.completed, keep_text)
        except Exception:
            log_fault("recording Anthropic usage")
    streamed = outcome is not None and outcome.streamed
    if outcome is not None and outcome.error is not None:
        call.fail(outcome.error, streamed=streamed)
        return
    if outcome is not None and outcome.error_type is not None and span.is_recording():
        span.set_attribute(ERROR_TYPE, outcome.error_type)
        span.set_status(Status(StatusCode.ERROR, outcome.error_type))
    # ``spanledger.stream.completed`` is for event streams only.
    call.finish(completed=outcome is not None and outcome.completed if streamed else None)


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
) -> MessageOutcome | None:
    """What a result read in full tells: a Message model, or the body of a closed response."""
    if response is None:
        if get(result, "usage") is None:
            return None
        facts = facts_from_message(result, keep_text=keep_text)
        # Positional (facts, streamed, completed): a class call with keywords builds a dict.
        return MessageOutcome(facts, False, True)
    try:
        content = response.content
    except httpx2.ResponseNotRead:
        return None
    content_type = response.headers.get("content-type", "")
    return read_message_body(content_type, content, keep_text=keep_text)
