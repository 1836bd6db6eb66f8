"""Fixtures for the mistralai tests: the real SDK pointed at the stand-in, instrumented."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from instrumentation_support import instrumented
from mistral_support import Mistral
from opentelemetry.sdk.trace import TracerProvider
from provider_support import refusing_budget  # noqa: F401  (a fixture)

from spanledger.instrumentation.mistral import MistralInstrumentor
from spanledger.standin import StandIn


@pytest.fixture
def instrumentor(tracer_provider: TracerProvider) -> Iterator[MistralInstrumentor]:
    with instrumented(MistralInstrumentor(), tracer_provider) as instrumentor:
        yield instrumentor


@pytest.fixture
def client(llm: StandIn, instrumentor: MistralInstrumentor) -> Mistral:
    return Mistral(api_key="test-key", server_url=llm.mistral_base_url)
