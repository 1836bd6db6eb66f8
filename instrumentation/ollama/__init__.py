"""OpenTelemetry instrumentation of Ollama's Python SDK (``ollama``).

Usage::

    from spanledger.instrumentation.ollama import OllamaInstrumentor

    OllamaInstrumentor().instrument()

or with zero code, through the ``spanledger_ollama`` entry point of ``opentelemetry-instrument``.
Each ``chat``, ``generate``, ``embed`` and ``embeddings`` call of ``ollama.Client`` and
``ollama.AsyncClient`` (and of the module-level functions, which use a default ``Client``),
streamed or not, gets one CLIENT span with ``gen_ai.provider.name`` ``ollama`` and the counts
Ollama reports. Self-hosted models have no list price: the processor counts them unpriced unless
an override prices them. See docs/ollama.md.
"""

from __future__ import annotations

from collections.abc import Sequence

from spanledger.instrumentation.genai import (
    Patch,
    SdkInstrumentor,
    async_call_wrapper,
    call_wrapper,
)

from .package import _instruments
from .patch import describe_chat, describe_embed, describe_generate, settle_embed, settle_reply

__all__ = ["OllamaInstrumentor"]

_CLIENT = "ollama._client"


class OllamaInstrumentor(SdkInstrumentor):
    """Traces the chat, generate and embedding calls of ``ollama.Client`` and ``AsyncClient``."""

    instruments = _instruments

    def patches(self) -> Sequence[Patch]:
        chat = call_wrapper(describe_chat, settle_reply)
        generate = call_wrapper(describe_generate, settle_reply)
        embed = call_wrapper(describe_embed, settle_embed)
        return (
            Patch(_CLIENT, "Client.chat", chat),
            Patch(_CLIENT, "Client.generate", generate),
            Patch(_CLIENT, "Client.embed", embed),
            Patch(_CLIENT, "Client.embeddings", embed),
            Patch(_CLIENT, "AsyncClient.chat", async_call_wrapper(describe_chat, settle_reply)),
            Patch(
                _CLIENT,
                "AsyncClient.generate",
                async_call_wrapper(describe_generate, settle_reply),
            ),
            Patch(_CLIENT, "AsyncClient.embed", async_call_wrapper(describe_embed, settle_embed)),
            Patch(
                _CLIENT,
                "AsyncClient.embeddings",
                async_call_wrapper(describe_embed, settle_embed),
            ),
            # ``ollama.chat`` and the like are methods of a default client, bound when ``ollama``
            # is imported, before the class is patched: they are patched apart.
            Patch("ollama", "chat", chat),
            Patch("ollama", "generate", generate),
            Patch("ollama", "embed", embed),
            Patch("ollama", "embeddings", embed),
        )
