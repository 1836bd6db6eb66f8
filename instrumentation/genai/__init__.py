"""Shared machinery for GenAI inference spans, used by every SDK instrumentation.

Typical use inside an SDK patch::

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

from .content import (
    CAPTURE_CONTENT_ENV,
    capture_content_enabled,
    record_input_messages,
    record_output_messages,
)
from .guard import guarded, log_fault, logger, safe
from .providers import provider_from_url, server_address_port
from .span import (
    ERROR_TYPE,
    OPERATION_CHAT,
    OPERATION_EMBEDDINGS,
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
)

__all__ = [
    "CAPTURE_CONTENT_ENV",
    "ERROR_TYPE",
    "HIDE",
    "OPERATION_CHAT",
    "OPERATION_EMBEDDINGS",
    "OPERATION_TEXT_COMPLETION",
    "SERVER_ADDRESS",
    "SERVER_PORT",
    "AsyncStreamProxy",
    "InferenceUsage",
    "StreamProxy",
    "StreamSpan",
    "capture_content_enabled",
    "end_with_error",
    "error_type",
    "finish_reasons_of",
    "guarded",
    "log_fault",
    "logger",
    "observe",
    "observe_async",
    "provider_from_url",
    "record_input_messages",
    "record_output_messages",
    "record_usage",
    "safe",
    "server_address_port",
    "start_inference_span",
]
