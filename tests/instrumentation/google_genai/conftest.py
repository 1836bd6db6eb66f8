"""Fixtures for the google-genai tests: the real SDK, for the Gemini Developer API and for Vertex
AI, pointed at the stand-in, with the instrumentation on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from google import genai
from google_genai_support import CLIENTS
from instrumentation_support import instrumented
from opentelemetry.sdk.trace import TracerProvider

from spanledger.instrumentation.google_genai import GoogleGenAIInstrumentor
from spanledger.standin import StandIn


@pytest.fixture
def instrumentor(tracer_provider: TracerProvider) -> Iterator[GoogleGenAIInstrumentor]:
    with instrumented(GoogleGenAIInstrumentor(), tracer_provider) as instrumentor:
        yield instrumentor


@pytest.fixture(params=sorted(CLIENTS))
def provider(request: pytest.FixtureRequest) -> str:
    """Each test using it runs against the Gemini Developer API and against Vertex AI."""
    return request.param


@pytest.fixture
def client(llm: StandIn, provider: str, instrumentor: GoogleGenAIInstrumentor) -> genai.Client:
    return CLIENTS[provider](llm)
