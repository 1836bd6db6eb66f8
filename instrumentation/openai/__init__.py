"""OpenTelemetry instrumentation for the ``openai`` SDK (3.x), recording token usage on GenAI spans.

Usage::

    from spanledger.instrumentation.openai import OpenAIInstrumentor

    OpenAIInstrumentor().instrument()

or with zero code, through the ``spanledger_openai`` entry point of ``opentelemetry-instrument``.

The instrumentor wraps the client's low-level request path (see ``patch``), so Chat
Completions, Responses, Embeddings and Completions are covered for ``create``, ``parse``, the
``stream`` helpers, ``with_raw_response`` and ``with_streaming_response``, sync and async.

Options to ``instrument()``: ``tracer_provider``; ``inject_stream_usage`` (default ``True``): ask
Chat Completions / Completions streams for their final usage chunk when the caller did not, and
hide that chunk from the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from spanledger.instrumentation.genai import Patch, SdkInstrumentor
from spanledger.instrumentation.genai.clients import base_client_request_patches

from .package import _instruments

__all__ = ["OpenAIInstrumentor"]


def _parse(_: Any) -> Any:
    from .patch import parse_wrapper

    return parse_wrapper


class OpenAIInstrumentor(SdkInstrumentor):
    """Instrument the OpenAI SDK: one CLIENT span per inference call, with token usage.

    ``request`` is wrapped on the SDK's base clients and on every client class that another
    instrumentor patched already (an unshadowable patch, see
    ``spanledger.instrumentation.genai.patching``), so each call gets its span and its budget
    check exactly once, whatever else patched the SDK.
    """

    instruments = _instruments

    def _instrument(self, **kwargs: Any) -> None:
        self.__dict__["_inject_stream_usage"] = bool(kwargs.get("inject_stream_usage", True))
        super()._instrument(**kwargs)

    def patches(self) -> Sequence[Patch]:
        # The patch module imports the SDK: only once the SDK is known to be in range.
        from .patch import describer, settle

        describe = describer(self.__dict__.get("_inject_stream_usage", True))
        return (
            *base_client_request_patches("openai", describe, settle),
            Patch("openai._response", "BaseAPIResponse._parse", _parse),
            Patch("openai._legacy_response", "LegacyAPIResponse._parse", _parse),
        )
