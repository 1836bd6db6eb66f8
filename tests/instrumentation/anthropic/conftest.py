"""Fixtures for the Anthropic instrumentation tests: instrumented real SDK clients on the stand-in.

Each client hands the SDK's own tracing the same tracer provider as ours, so that any span the
SDK would add lands in the same exporter and the tests can count spans from both scopes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import anthropic
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from spanledger.instrumentation.anthropic import AnthropicInstrumentor
from spanledger.standin import StandIn

OUR_SCOPE = "spanledger.instrumentation.anthropic"
SDK_SCOPE = "com.anthropic.sdk.python"


@pytest.fixture(autouse=True)
def no_touching_ended_spans(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fails a test in which any span was ended twice or written to after its end."""
    with caplog.at_level(logging.WARNING, logger="opentelemetry.sdk.trace"):
        yield
    records = caplog.get_records("setup") + caplog.get_records("call")
    late = [r.getMessage() for r in records if "ended span" in r.getMessage()]
    assert late == []


@pytest.fixture
def instrumentor(tracer_provider: TracerProvider) -> Iterator[AnthropicInstrumentor]:
    """The instrumentor, on for the test and off (fully uninstrumented) afterwards."""
    instrumentor = AnthropicInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider)
    yield instrumentor
    instrumentor.uninstrument()


@pytest.fixture
def client(
    llm: StandIn, tracer_provider: TracerProvider, instrumentor: AnthropicInstrumentor
) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        base_url=llm.anthropic_base_url,
        api_key="test-key",
        max_retries=0,
        open_telemetry={"tracer_provider": tracer_provider},
    ) as sdk_client:
        yield sdk_client


@pytest.fixture
def async_client_for(
    llm: StandIn, tracer_provider: TracerProvider, instrumentor: AnthropicInstrumentor
) -> Callable[[], anthropic.AsyncAnthropic]:
    """Makes an async client; build it inside the event loop that will use it."""

    def make() -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(
            base_url=llm.anthropic_base_url,
            api_key="test-key",
            max_retries=0,
            open_telemetry={"tracer_provider": tracer_provider},
        )

    return make


@pytest.fixture
def only_span(span_exporter: InMemorySpanExporter):
    """Returns the one finished span, checking that no other span (ours or the SDK's) ended."""

    def take() -> ReadableSpan:
        spans = span_exporter.get_finished_spans()
        seen = [(span.name, getattr(span.instrumentation_scope, "name", None)) for span in spans]
        assert [scope for _, scope in seen] == [OUR_SCOPE], seen
        span_exporter.clear()
        return spans[0]

    return take
