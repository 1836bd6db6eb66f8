"""Fixtures for the OpenAI instrumentation tests: the real SDK against the local stand-in."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest
from opentelemetry.sdk.trace import TracerProvider

from spanledger.instrumentation.openai import OpenAIInstrumentor
from spanledger.standin import StandIn


@pytest.fixture
def instrumentor(tracer_provider: TracerProvider) -> Iterator[OpenAIInstrumentor]:
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider)
    yield instrumentor
    instrumentor.uninstrument()


@pytest.fixture
def client(llm: StandIn, instrumentor: OpenAIInstrumentor) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(api_key="test-key", base_url=llm.openai_base_url, max_retries=0) as sdk:
        yield sdk
