"""OpenTelemetry instrumentation of LiteLLM used as a library (``litellm``).

Usage::

    from spanledger.instrumentation.litellm import LiteLLMInstrumentor

    LiteLLMInstrumentor().instrument()

or with zero code, through the ``spanledger_litellm`` entry point of ``opentelemetry-instrument``.
Each ``litellm.completion``, ``acompletion``, ``embedding`` and ``aembedding`` call (and each
deployment a ``Router`` tries) gets one CLIENT span naming the provider LiteLLM sends it to
(``openai``, ``anthropic``, ``aws.bedrock``, ``gcp.vertex_ai``…) and its model, with the usage
LiteLLM reports and LiteLLM's own cost as ``spanledger.cost.reported``. When LiteLLM calls the
provider through an SDK that is instrumented too (the ``openai`` SDK, for OpenAI-compatible
providers), that SDK's span is inside this one, and the processor counts the call once. See
docs/litellm.md.
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
from .patch import describe_completion, describe_embedding, settle, settle_async

__all__ = ["LiteLLMInstrumentor"]


class LiteLLMInstrumentor(SdkInstrumentor):
    """Traces LiteLLM's completion and embedding functions, sync and async."""

    instruments = _instruments
    # Importing litellm takes seconds and fetches its price list from the internet: patch it
    # when the application imports it, so that a process that does not use it never does.
    patch_when_imported = "litellm"

    def patches(self) -> Sequence[Patch]:
        # The functions as ``litellm`` exports them, which callers and the Router use. LiteLLM's
        # async functions call the sync ones through ``litellm.main``, which stays as it is, so
        # an async call is not traced twice.
        return (
            Patch("litellm", "completion", call_wrapper(describe_completion, settle)),
            Patch("litellm", "acompletion", async_call_wrapper(describe_completion, settle_async)),
            Patch("litellm", "embedding", call_wrapper(describe_embedding, settle)),
            Patch("litellm", "aembedding", async_call_wrapper(describe_embedding, settle_async)),
        )
