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

from collections.abc import Sequence
from typing import Any

from spanledger.instrumentation.genai import Patch, SdkInstrumentor
from spanledger.instrumentation.genai.clients import base_client_request_patches

from .own_spans import SdkSpanSwitch
from .package import _instruments
from .patch import describe, settle, tracing_a_message

__all__ = ["AnthropicInstrumentor"]


class AnthropicInstrumentor(SdkInstrumentor):
    """Traces Messages API calls of ``anthropic.Anthropic`` and ``anthropic.AsyncAnthropic``.

    ``request`` is wrapped on the SDK's base clients and on every client class that another
    instrumentor patched already (an unshadowable patch, see
    ``spanledger.instrumentation.genai.patching``).
    """

    instruments = _instruments

    def patches(self) -> Sequence[Patch]:
        return base_client_request_patches("anthropic", describe, settle)

    def _instrument(self, **kwargs: Any) -> None:
        super()._instrument(**kwargs)
        if self._applied and self.__dict__.get("_own_spans") is None:
            switch = SdkSpanSwitch(tracing_a_message)
            if switch.install():
                self.__dict__["_own_spans"] = switch

    def _uninstrument(self, **kwargs: Any) -> None:
        super()._uninstrument(**kwargs)
        switch = self.__dict__.pop("_own_spans", None)
        if switch is not None:
            switch.uninstall()
