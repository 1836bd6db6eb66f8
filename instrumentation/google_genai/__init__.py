"""OpenTelemetry instrumentation of Google's Gen AI SDK (``google-genai``): Gemini and Vertex AI.

Usage::

    from spanledger.instrumentation.google_genai import GoogleGenAIInstrumentor

    GoogleGenAIInstrumentor().instrument()

or with zero code, through the ``spanledger_google_genai`` entry point of
``opentelemetry-instrument``. Each request to a model (``generate_content``,
``generate_content_stream``, ``embed_content``, their ``client.aio`` twins, chats, and every
request of automatic function calling) gets one CLIENT span with the usage Google reports,
``gen_ai.provider.name`` ``gcp.gemini`` or, for ``genai.Client(vertexai=True)``,
``gcp.vertex_ai``. See docs/google-genai.md.
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
from .patch import (
    describe_embed,
    describe_generate,
    describe_stream,
    settle_async_stream,
    settle_embed,
    settle_generate,
    settle_stream,
)

__all__ = ["GoogleGenAIInstrumentor"]

_MODELS = "google.genai.models"


class GoogleGenAIInstrumentor(SdkInstrumentor):
    """Traces the model requests of ``google.genai.Client`` (sync and ``client.aio``)."""

    instruments = _instruments

    def patches(self) -> Sequence[Patch]:
        generate = call_wrapper(describe_generate, settle_generate)
        embed = call_wrapper(describe_embed, settle_embed)
        return (
            Patch(_MODELS, "Models._generate_content", generate),
            Patch(
                _MODELS,
                "Models._generate_content_stream",
                call_wrapper(describe_stream, settle_stream),
            ),
            Patch(_MODELS, "Models.embed_content", embed),
            Patch(
                _MODELS,
                "AsyncModels._generate_content",
                async_call_wrapper(describe_generate, settle_generate),
            ),
            Patch(
                _MODELS,
                "AsyncModels._generate_content_stream",
                async_call_wrapper(describe_stream, settle_async_stream),
            ),
            Patch(
                _MODELS,
                "AsyncModels.embed_content",
                async_call_wrapper(describe_embed, settle_embed),
            ),
        )
