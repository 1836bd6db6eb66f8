"""OpenTelemetry instrumentation for the ``openai`` SDK (3.x), recording token usage on GenAI spans.

Usage::

    from spanledger.instrumentation.openai import OpenAIInstrumentor

    OpenAIInstrumentor().instrument()

or with zero code, through the ``spanledger_openai`` entry point of ``opentelemetry-instrument``.

The instrumentor wraps the client's low-level request path (see ``wrappers``), so Chat
Completions, Responses, Embeddings and Completions are covered for ``create``, ``parse``, the
``stream`` helpers, ``with_raw_response`` and ``with_streaming_response``, sync and async.

Options to ``instrument()``: ``tracer_provider``; ``inject_stream_usage`` (default ``True``): ask
Chat Completions / Completions streams for their final usage chunk when the caller did not, and
hide that chunk from the caller.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.dependencies import get_dependency_conflicts
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from opentelemetry.instrumentation.utils import unwrap
from opentelemetry.trace import get_tracer
from wrapt import wrap_function_wrapper

from spanledger.instrumentation.genai import logger
from spanledger.instrumentation.genai.patching import MethodPatch
from spanledger.version import __version__

from .package import _instruments

__all__ = ["OpenAIInstrumentor"]

_PARSE_PATCHES = (
    ("openai._response", "BaseAPIResponse", "_parse"),
    ("openai._legacy_response", "LegacyAPIResponse", "_parse"),
)


class OpenAIInstrumentor(BaseInstrumentor):
    """Instrument the OpenAI SDK: one CLIENT span per inference call, with token usage.

    ``request`` is wrapped on the SDK's base clients and on every client class that another
    instrumentor patched already (see ``spanledger.instrumentation.genai.patching``), so each
    call gets its span and its budget check exactly once, whatever else patched the SDK.
    """

    _request_patches: tuple[MethodPatch, ...] = ()

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        # ``opentelemetry-instrument`` may skip the per-instrumentor version check (it checks the
        # distribution as a whole); never patch an SDK whose internals this code does not know.
        conflict = get_dependency_conflicts(_instruments)
        if conflict is not None:
            logger.warning("spanledger OpenAI instrumentation not installed: %s", conflict)
            return
        from openai._base_client import AsyncAPIClient, SyncAPIClient

        from .wrappers import async_request_wrapper, parse_wrapper, request_wrapper

        tracer = get_tracer(__name__, __version__, kwargs.get("tracer_provider"), schema_url=None)
        inject = bool(kwargs.get("inject_stream_usage", True))
        self._request_patches = (
            MethodPatch(SyncAPIClient, "request", request_wrapper(tracer, inject)),
            MethodPatch(
                AsyncAPIClient, "request", async_request_wrapper(tracer, inject), is_async=True
            ),
        )
        for patch in self._request_patches:
            patch.install()
        wrap_function_wrapper("openai._response", "BaseAPIResponse._parse", parse_wrapper)
        wrap_function_wrapper("openai._legacy_response", "LegacyAPIResponse._parse", parse_wrapper)

    def _uninstrument(self, **kwargs: Any) -> None:
        import importlib

        for patch in self._request_patches:
            patch.uninstall()
        self._request_patches = ()
        for module_name, class_name, method in _PARSE_PATCHES:
            unwrap(getattr(importlib.import_module(module_name), class_name), method)
