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
from opentelemetry.trace import get_tracer

from spanledger.instrumentation.genai.patching import MethodPatch
from spanledger.version import __version__

from .package import _instruments
from .patch import async_messages_request, messages_request
from .sdk_spans import SdkSpanSwitch

__all__ = ["AnthropicInstrumentor"]


class AnthropicInstrumentor(BaseInstrumentor):
    """Traces Messages API calls of ``anthropic.Anthropic`` and ``anthropic.AsyncAnthropic``.

    ``request`` is wrapped on the SDK's base clients and on every client class that another
    instrumentor patched already (see ``spanledger.instrumentation.genai.patching``).
    """

    _sdk_spans: SdkSpanSwitch | None = None
    _request_patches: tuple[MethodPatch, ...] = ()

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        from anthropic._base_client import AsyncAPIClient, SyncAPIClient

        tracer = get_tracer(__name__, __version__, tracer_provider=kwargs.get("tracer_provider"))
        self._request_patches = (
            MethodPatch(SyncAPIClient, "request", messages_request(tracer)),
            MethodPatch(AsyncAPIClient, "request", async_messages_request(tracer), is_async=True),
        )
        for patch in self._request_patches:
            patch.install()
        self._sdk_spans = SdkSpanSwitch()
        self._sdk_spans.install()

    def _uninstrument(self, **kwargs: Any) -> None:
        for patch in self._request_patches:
            patch.uninstall()
        self._request_patches = ()
        if self._sdk_spans is not None:
            self._sdk_spans.uninstall()
            self._sdk_spans = None
