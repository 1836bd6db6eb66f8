"""OpenTelemetry instrumentation of Mistral's Python SDK (``mistralai``).

Usage::

    from spanledger.instrumentation.mistral import MistralInstrumentor

    MistralInstrumentor().instrument()

or with zero code, through the ``spanledger_mistral`` entry point of ``opentelemetry-instrument``.
Each ``chat.complete``, ``chat.stream``, ``fim.complete``, ``fim.stream`` and
``embeddings.create`` call, and their ``_async`` forms, gets one CLIENT span with
``gen_ai.provider.name`` ``mistral_ai`` and the usage Mistral reports; the SDK's own span for
such a call is turned off (see ``own_spans``). See docs/mistral.md.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from spanledger.instrumentation.genai import (
    Patch,
    SdkInstrumentor,
    async_call_wrapper,
    call_wrapper,
)

from .own_spans import HOOK_FUNCTION, HOOK_MODULE, skip_own_span
from .package import _instruments
from .patch import (
    describe_chat,
    describe_chat_stream,
    describe_embeddings,
    describe_fim,
    describe_fim_stream,
    settle_async_stream,
    settle_completion,
    settle_embeddings,
    settle_stream,
)

__all__ = ["MistralInstrumentor"]


def _sdk_package() -> str:
    """Where the SDK's resource classes live: ``mistralai.client`` from 2.x on, else
    ``mistralai`` (1.x, where ``mistralai.client`` is a module of its own)."""
    try:
        importlib.import_module("mistralai.client.chat")
    except ImportError:
        return "mistralai"
    return "mistralai.client"


class MistralInstrumentor(SdkInstrumentor):
    """Traces the chat, fill-in-the-middle and embeddings calls of ``mistralai.Mistral``."""

    instruments = _instruments

    def patches(self) -> Sequence[Patch]:
        package = _sdk_package()
        chat, fim, embeddings = f"{package}.chat", f"{package}.fim", f"{package}.embeddings"
        complete = call_wrapper(describe_chat, settle_completion)
        complete_async = async_call_wrapper(describe_chat, settle_completion)
        stream = call_wrapper(describe_chat_stream, settle_stream)
        stream_async = async_call_wrapper(describe_chat_stream, settle_async_stream)
        return (
            Patch(chat, "Chat.complete", complete),
            Patch(chat, "Chat.complete_async", complete_async),
            Patch(chat, "Chat.stream", stream),
            Patch(chat, "Chat.stream_async", stream_async),
            Patch(fim, "Fim.complete", call_wrapper(describe_fim, settle_completion)),
            Patch(fim, "Fim.complete_async", async_call_wrapper(describe_fim, settle_completion)),
            Patch(fim, "Fim.stream", call_wrapper(describe_fim_stream, settle_stream)),
            Patch(
                fim,
                "Fim.stream_async",
                async_call_wrapper(describe_fim_stream, settle_async_stream),
            ),
            Patch(
                embeddings,
                "Embeddings.create",
                call_wrapper(describe_embeddings, settle_embeddings),
            ),
            Patch(
                embeddings,
                "Embeddings.create_async",
                async_call_wrapper(describe_embeddings, settle_embeddings),
            ),
            # The SDK's own span (2.x and later; see own_spans): off for the calls traced here.
            Patch(HOOK_MODULE, HOOK_FUNCTION, skip_own_span(__name__), optional=True),
        )
