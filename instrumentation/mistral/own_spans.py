"""mistralai's own spans, turned off for the calls we trace.

From 2.x on, mistralai can trace its requests itself (``mistralai/client/_hooks/tracing.py``): a
span per request, named like ours and carrying the same usage, plus the request and reply
messages whatever ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` says, and the caller's
baggage injected into the request to Mistral. 2.x does it whenever a tracer provider is set (so
always under ``opentelemetry-instrument``); 3.x when ``MISTRAL_SDK_TELEMETRY`` or
``configure_telemetry`` asks. Inside our span it would be a second inference span for the call,
and the innermost, the one the processor counts.

The hook starts its span in ``get_traced_request_and_span`` (a function of its module, looked up
when called). While one of our spans is current, that is while the patched method sends, the
wrapper below answers as the SDK does when tracing is off: the request untouched and no span.
The hook's other steps then have no span to finish.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Tracer

HOOK_MODULE = "mistralai.client._hooks.tracing"
HOOK_FUNCTION = "get_traced_request_and_span"


def _ours_is_current(scope_name: str) -> bool:
    scope = getattr(trace.get_current_span(), "instrumentation_scope", None)
    return getattr(scope, "name", None) == scope_name


def skip_own_span(scope_name: str) -> Callable[[Tracer], Callable[..., Any]]:
    """The wrapper factory of the hook's span-starting function, for our tracer's scope."""

    def factory(tracer: Tracer) -> Callable[..., Any]:
        def wrapper(wrapped: Callable[..., Any], _: Any, args: tuple, kwargs: dict) -> Any:
            if _ours_is_current(scope_name):
                request = kwargs["request"] if "request" in kwargs else args[4]
                return request, kwargs.get("span")
            return wrapped(*args, **kwargs)

        return wrapper

    return factory
