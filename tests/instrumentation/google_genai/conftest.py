"""Fixtures for the google-genai tests: the real SDK, for the Gemini Developer API and for Vertex
AI, pointed at the stand-in, with the instrumentation on."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import google.oauth2.credentials
import pytest
from google import genai
from opentelemetry.sdk.trace import TracerProvider

from spanledger.instrumentation.google_genai import GoogleGenAIInstrumentor
from spanledger.standin import StandIn


def gemini_client(llm: StandIn) -> genai.Client:
    """A Gemini Developer API client (API key) for the stand-in."""
    return genai.Client(api_key="test-key", http_options={"base_url": llm.url})


def vertex_client(llm: StandIn) -> genai.Client:
    """A Vertex AI client for the stand-in, with an access token that never needs a refresh."""
    credentials = google.oauth2.credentials.Credentials(token="test-token")
    return genai.Client(
        vertexai=True,
        project="test-project",
        location="us-central1",
        credentials=credentials,
        http_options={"base_url": llm.url},
    )


CLIENTS: dict[str, Callable[[StandIn], genai.Client]] = {
    "gcp.gemini": gemini_client,
    "gcp.vertex_ai": vertex_client,
}


def instrument(tracer_provider: TracerProvider) -> Iterator[GoogleGenAIInstrumentor]:
    instrumentor = GoogleGenAIInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider)
    try:
        yield instrumentor
    finally:
        instrumentor.uninstrument()


@pytest.fixture
def instrumentor(tracer_provider: TracerProvider) -> Iterator[GoogleGenAIInstrumentor]:
    yield from instrument(tracer_provider)


@pytest.fixture(params=sorted(CLIENTS))
def provider(request: pytest.FixtureRequest) -> str:
    """Each test using it runs against the Gemini Developer API and against Vertex AI."""
    return request.param


@pytest.fixture
def client(llm: StandIn, provider: str, instrumentor: GoogleGenAIInstrumentor) -> genai.Client:
    return CLIENTS[provider](llm)
