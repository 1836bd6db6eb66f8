"""Shared machinery for GenAI inference spans, used by every SDK instrumentation.

A provider built on the kit (see docs/adding-a-provider.md) declares its patch points with
:class:`SdkInstrumentor` and :class:`Patch`, and wraps each SDK method with
:func:`call_wrapper` / :func:`async_call_wrapper`, giving a ``describe`` (is this an inference
call, and which) and a ``settle`` (read the usage, or observe the stream). The kit starts the
span, checks the budget, ends the span exactly once and keeps faults away from the program.

The pieces underneath, for SDKs that need another shape::

    span = start_inference_span(tracer, operation=OPERATION_CHAT, provider="openai",
                                request_model=model, stream=False,
                                server_address=host, server_port=port)
    try:
        result = call_the_sdk()
    except Exception as error:
        end_with_error(span, error)
        raise
    with guarded("recording usage"):
        record_usage(span, InferenceUsage(input_tokens=..., output_tokens=...))
    span.end()

For streams, hand the span to a :class:`StreamSpan` and wrap the iterator with :func:`observe`
(or the whole object with :class:`StreamProxy`); the span then ends exactly once.
"""

from .call import (
    Call,
    CallDescription,
    Describe,
    Settle,
    async_call_wrapper,
    async_generator_wrapper,
    call_wrapper,
    current_call,
    start_call,
)
from .content import (
    CAPTURE_CONTENT_ENV,
    ReplyText,
    capture_content_enabled,
    message_text,
    record_input_messages,
    record_output_messages,
    text_message,
    text_messages,
)
from .endpoints import provider_from_url, server_address_port
from .fields import count, count_whole, read_field
from .guard import guarded, log_fault, logger, safe
from .instrumentor import Patch, SdkInstrumentor
from .span import (
    ERROR_TYPE,
    OPERATION_CHAT,
    OPERATION_EMBEDDINGS,
    OPERATION_GENERATE_CONTENT,
    OPERATION_TEXT_COMPLETION,
    SERVER_ADDRESS,
    SERVER_PORT,
    InferenceUsage,
    end_with_error,
    error_type,
    finish_reasons_of,
    record_usage,
    start_inference_span,
)
from .stream import (
    HIDE,
    AsyncStreamProxy,
    StreamProxy,
    StreamSpan,
    observe,
    observe_async,
    observe_async_current,
    observe_current,
)

__all__ = [
    "CAPTURE_CONTENT_ENV",
    "ERROR_TYPE",
    "HIDE",
    "OPERATION_CHAT",
    "OPERATION_EMBEDDINGS",
    "OPERATION_GENERATE_CONTENT",
    "OPERATION_TEXT_COMPLETION",
    "SERVER_ADDRESS",
    "SERVER_PORT",
    "AsyncStreamProxy",
    "Call",
    "CallDescription",
    "Describe",
    "InferenceUsage",
    "Patch",
    "ReplyText",
    "SdkInstrumentor",
    "Settle",
    "StreamProxy",
    "StreamSpan",
    "async_call_wrapper",
    "async_generator_wrapper",
    "call_wrapper",
    "capture_content_enabled",
    "count",
    "count_whole",
    "current_call",
    "end_with_error",
    "error_type",
    "finish_reasons_of",
    "guarded",
    "log_fault",
    "logger",
    "message_text",
    "observe",
    "observe_async",
    "observe_async_current",
    "observe_current",
    "provider_from_url",
    "read_field",
    "record_input_messages",
    "record_output_messages",
    "record_usage",
    "safe",
    "server_address_port",
    "start_call",
    "start_inference_span",
    "text_message",
    "text_messages",
]
