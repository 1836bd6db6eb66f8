"""OpenTelemetry instrumentation of Cohere's Python SDK (``cohere``), v2 API.

Usage::

    from spanledger.instrumentation.cohere import CohereInstrumentor

    CohereInstrumentor().instrument()

or with zero code, through the ``spanledger_cohere`` entry point of ``opentelemetry-instrument``.
Each ``chat``, ``chat_stream``, ``embed`` and ``rerank`` call of ``cohere.ClientV2`` and
``cohere.AsyncClientV2`` gets one CLIENT span with ``gen_ai.provider.name`` ``cohere`` and the
billed units Cohere reports. See docs/cohere.md.
"""

from __future__ import annotations

from collections.abc import Sequence

from spanledger.instrumentation.genai import (
    Patch,
    SdkInstrumentor,
    async_call_wrapper,
    async_generator_wrapper,
    call_wrapper,
)

from .package import _instruments
from .patch import (
    describe_chat,
    describe_chat_stream,
    describe_embed,
    describe_rerank,
    settle_async_chat_stream,
    settle_chat,
    settle_chat_stream,
    settle_meta,
)

__all__ = ["CohereInstrumentor"]

_V2 = "cohere.v2.client"


class CohereInstrumentor(SdkInstrumentor):
    """Traces the v2 chat, embed and rerank calls of ``cohere.ClientV2`` and its async twin."""

    instruments = _instruments

    def patches(self) -> Sequence[Patch]:
        chat = call_wrapper(describe_chat, settle_chat)
        embed = call_wrapper(describe_embed, settle_meta)
        rerank = call_wrapper(describe_rerank, settle_meta)
        return (
            Patch(_V2, "V2Client.chat", chat),
            Patch(
                _V2, "V2Client.chat_stream", call_wrapper(describe_chat_stream, settle_chat_stream)
            ),
            Patch(_V2, "V2Client.embed", embed),
            Patch(_V2, "V2Client.rerank", rerank),
            Patch(_V2, "AsyncV2Client.chat", async_call_wrapper(describe_chat, settle_chat)),
            Patch(
                _V2,
                "AsyncV2Client.chat_stream",
                async_generator_wrapper(describe_chat_stream, settle_async_chat_stream),
            ),
            Patch(_V2, "AsyncV2Client.embed", async_call_wrapper(describe_embed, settle_meta)),
            Patch(_V2, "AsyncV2Client.rerank", async_call_wrapper(describe_rerank, settle_meta)),
        )
