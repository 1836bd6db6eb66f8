"""OpenTelemetry instrumentation of the Anthropic Python SDK (``anthropic`` 2.x).

Each Messages API call (create, stream, parse, beta, raw and streaming responses, sync and
async) gets one CLIENT span ``chat {model}`` with the usage Anthropic reports::

    from spanledger.instrumentation.anthropic import AnthropicInstrumentor

    AnthropicInstrumentor().instrument()

Under ``opentelemetry-instrument`` it loads by itself through the ``spanledger_anthropic``
entry point. While it is on, the SDK's own span for those calls is left out, so that each call
is counted once (see docs/anthropic.md).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from opentelemetry.instrumentation.utils import unwrap
from opentelemetry.trace import get_tracer
from wrapt import wrap_function_wrapper

from spanledger.version import __version__

from .package import _instruments
from .patch import async_messages_request, messages_request
from .sdk_spans import SdkSpanSwitch

__all__ = ["AnthropicInstrumentor"]

_BASE_CLIENT = "anthropic._base_client"


class AnthropicInstrumentor(BaseInstrumentor):
    """Traces Messages API calls of ``anthropic.Anthropic`` and ``anthropic.AsyncAnthropic``."""

    _sdk_spans: SdkSpanSwitch | None = None

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        tracer = get_tracer(__name__, __version__, tracer_provider=kwargs.get("tracer_provider"))
        wrap_function_wrapper(_BASE_CLIENT, "SyncAPIClient.request", messages_request(tracer))
        wrap_function_wrapper(
            _BASE_CLIENT, "AsyncAPIClient.request", async_messages_request(tracer)
        )
        self._sdk_spans = SdkSpanSwitch()
        self._sdk_spans.install()

    def _uninstrument(self, **kwargs: Any) -> None:
        from anthropic._base_client import AsyncAPIClient, SyncAPIClient

        unwrap(SyncAPIClient, "request")
        unwrap(AsyncAPIClient, "request")
        if self._sdk_spans is not None:
            self._sdk_spans.uninstall()
            self._sdk_spans = None
