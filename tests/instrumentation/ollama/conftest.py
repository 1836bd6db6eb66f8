"""Fixtures for the ollama tests: the real SDK's clients pointed at the stand-in, instrumented."""

from __future__ import annotations

from collections.abc import Iterator

import ollama
import pytest
from instrumentation_support import instrumented
from opentelemetry.sdk.trace import TracerProvider
from provider_support import refusing_budget  # noqa: F401  (a fixture)

from spanledger.instrumentation.ollama import OllamaInstrumentor
from spanledger.standin import StandIn


@pytest.fixture
def instrumentor(tracer_provider: TracerProvider) -> Iterator[OllamaInstrumentor]:
    with instrumented(OllamaInstrumentor(), tracer_provider) as instrumentor:
        yield instrumentor


@pytest.fixture
def client(llm: StandIn, instrumentor: OllamaInstrumentor) -> ollama.Client:
    return ollama.Client(host=llm.url)


@pytest.fixture
def async_client(llm: StandIn, instrumentor: OllamaInstrumentor) -> ollama.AsyncClient:
    return ollama.AsyncClient(host=llm.url)


@pytest.fixture
def default_client(llm: StandIn, instrumentor: OllamaInstrumentor) -> Iterator[None]:
    """``ollama.chat`` and the other module-level functions, sent to the stand-in."""
    http = ollama.chat.__self__._client
    host = http.base_url
    http.base_url = llm.url
    yield
    http.base_url = host
