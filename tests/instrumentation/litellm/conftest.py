"""Fixtures for the LiteLLM tests: LiteLLM calling the stand-in's OpenAI, Anthropic and Ollama
protocols, with the LiteLLM and OpenAI instrumentations on (LiteLLM calls OpenAI-compatible
providers through the ``openai`` SDK)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from instrumentation_support import instrumented
from opentelemetry.sdk.trace import TracerProvider
from provider_support import refusing_budget  # noqa: F401  (a fixture)

from spanledger.instrumentation.litellm import LiteLLMInstrumentor
from spanledger.instrumentation.openai import OpenAIInstrumentor

# LiteLLM fetches its price list from the internet when imported unless told to use its own
# copy; nothing above imports it.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture
def instrumentor(tracer_provider: TracerProvider) -> Iterator[LiteLLMInstrumentor]:
    with (
        instrumented(OpenAIInstrumentor(), tracer_provider),
        instrumented(LiteLLMInstrumentor(), tracer_provider) as instrumentor,
    ):
        yield instrumentor
