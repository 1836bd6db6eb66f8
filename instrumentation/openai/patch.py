"""The wrappers installed on the OpenAI client's low-level request path.

- ``SyncAPIClient.request`` / ``AsyncAPIClient.request``: every API call of every resource
  (``create``, ``parse``, the ``stream`` helpers, ``with_raw_response``,
  ``with_streaming_response``) passes here. Inference requests get a span that is current while
  the client sends (so HTTP client spans nest under it) and, for streams that would not report
  usage, a request for the final usage chunk.
- ``BaseAPIResponse._parse`` / ``LegacyAPIResponse._parse``: every result is built here, inside
  ``request`` for ordinary calls and later for raw responses; this is where usage is read and
  streams are observed, in place, so the caller gets the very object the SDK built.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from openai._legacy_response import LegacyAPIResponse
from openai._response import BaseAPIResponse
from opentelemetry.context import attach, detach
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import Tracer, set_span_in_context

from spanledger.instrumentation.budgets import acheck_budget, check_budget
from spanledger.instrumentation.genai import (
    StreamSpan,
    guarded,
    log_fault,
    record_input_messages,
    start_inference_span,
)
from spanledger.instrumentation.genai.providers import Endpoint, endpoint_of

from .calls import Call, new_call, settle_raw_response, take_parsed
from .requests import RESPONSES, asked_for_usage, read_request, with_usage_requested

_ACTIVE_CALL: ContextVar[Call | None] = ContextVar("spanledger_openai_call", default=None)
_RAW_RESPONSES: weakref.WeakKeyDictionary[Any, Call] = weakref.WeakKeyDictionary()

AZURE_PROVIDER = "azure.ai.openai"
_RAW_RESPONSE_TYPES = (BaseAPIResponse, LegacyAPIResponse)


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


def _begin(
    tracer: Tracer, inject_stream_usage: bool, client: Any, args: tuple, kwargs: dict
) -> tuple[Call | None, tuple, dict]:
    """Start a call for an inference request; pass anything else through untouched."""
    options = args[1] if len(args) > 1 else kwargs.get("options")
    request = read_request(options, bool(kwargs.get("stream", False)))
    if request is None:
        return None, args, kwargs
    provider, address, port = _endpoint(client)
    span = start_inference_span(
        tracer,
        operation=request.operation,
        provider=provider,
        request_model=request.model,
        stream=request.streamed,
        server_address=address,
        server_port=port,
    )
    try:
        # A span that is not recording gets nothing from the usage chunk: leave the request be.
        inject = (
            inject_stream_usage
            and request.streamed
            and not asked_for_usage(request)
            and span.is_recording()
        )
        if inject:
            replaced = with_usage_requested(options)
            if len(args) > 1:
                args = (args[0], replaced, *args[2:])
            else:
                kwargs = {**kwargs, "options": replaced}
        call = new_call(request, StreamSpan(span), usage_injected=inject)
    except Exception:
        span.end()
        raise
    if call.capture_content:
        with guarded("capturing OpenAI request messages"):
            record_input_messages(span, _input_messages(request.body, request.path))
    return call, args, kwargs


def _fail(call: Call, error: BaseException) -> None:
    try:
        call.state.fail(error, streamed=call.streamed)
    except Exception:
        log_fault("ending a failed OpenAI span")


def _settle(call: Call, result: Any) -> None:
    """After ``request`` returned: end the span unless the result now owns it."""
    call.returned = True
    if call.state.ended or call.stream_observed:
        return
    if isinstance(result, _RAW_RESPONSE_TYPES):
        _RAW_RESPONSES[result] = call
        settle_raw_response(call, result)
        return
    call.finish()


def request_wrapper(tracer: Tracer, inject_stream_usage: bool) -> Callable[..., Any]:
    """Wrapper for ``SyncAPIClient.request``.

    The call's span is current while the client sends (so HTTP client spans nest under it), by
    attaching a context rather than through ``trace.use_span``: the same effect with neither a
    generator-based context manager nor its exception handling, neither of which is used here.
    """

    def request(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
        if not is_instrumentation_enabled():
            return wrapped(*args, **kwargs)
        try:
            call, args, kwargs = _begin(tracer, inject_stream_usage, instance, args, kwargs)
        except Exception:
            log_fault("starting an OpenAI span")
            call = None
        if call is None:
            return wrapped(*args, **kwargs)
        call_token = _ACTIVE_CALL.set(call)
        try:
            span_token = attach(set_span_in_context(call.state.span))
            try:
                check_budget()
                result = wrapped(*args, **kwargs)
            finally:
                detach(span_token)
        except BaseException as error:
            _fail(call, error)
            raise
        finally:
            _ACTIVE_CALL.reset(call_token)
        try:
            _settle(call, result)
        except Exception:
            log_fault("settling an OpenAI result")
        return result

    return request


def async_request_wrapper(tracer: Tracer, inject_stream_usage: bool) -> Callable[..., Any]:
    """Wrapper for ``AsyncAPIClient.request``; see :func:`request_wrapper`."""

    async def request(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
        if not is_instrumentation_enabled():
            return await wrapped(*args, **kwargs)
        try:
            call, args, kwargs = _begin(tracer, inject_stream_usage, instance, args, kwargs)
        except Exception:
            log_fault("starting an OpenAI span")
            call = None
        if call is None:
            return await wrapped(*args, **kwargs)
        call_token = _ACTIVE_CALL.set(call)
        try:
            span_token = attach(set_span_in_context(call.state.span))
            try:
                await acheck_budget()
                result = await wrapped(*args, **kwargs)
            finally:
                detach(span_token)
        except BaseException as error:
            _fail(call, error)
            raise
        finally:
            _ACTIVE_CALL.reset(call_token)
        try:
            _settle(call, result)
        except Exception:
            log_fault("settling an OpenAI result")
        return result

    return request


def parse_wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
    """Wrapper for the response classes' ``_parse``: read usage, observe streams."""
    result = wrapped(*args, **kwargs)
    try:
        call = (_RAW_RESPONSES.get(instance) if _RAW_RESPONSES else None) or _ACTIVE_CALL.get()
        if call is not None and not call.state.ended:
            take_parsed(call, instance, result)
    except Exception:
        log_fault("reading an OpenAI result")
    return result
