"""Fixtures for the cohere tests: the real SDK's v2 clients pointed at the stand-in,
instrumented."""

from __future__ import annotations

from collections.abc import Iterator

import cohere
import pytest
from instrumentation_support import instrumented
from opentelemetry.sdk.trace import TracerProvider
from provider_support import refusing_budget  # noqa: F401  (a fixture)

from spanledger.instrumentation.cohere import CohereInstrumentor
from spanledger.standin import StandIn


@pytest.fixture
def instrumentor(tracer_provider: TracerProvider) -> Iterator[CohereInstrumentor]:
    with instrumented(CohereInstrumentor(), tracer_provider) as instrumentor:
        yield instrumentor


@pytest.fixture
def client(llm: StandIn, instrumentor: CohereInstrumentor) -> cohere.ClientV2:
    return cohere.ClientV2(api_key="test-key", base_url=llm.url)


@pytest.fixture
def async_client(llm: StandIn, instrumentor: CohereInstrumentor) -> cohere.AsyncClientV2:
    return cohere.AsyncClientV2(api_key="test-key", base_url=llm.url)
