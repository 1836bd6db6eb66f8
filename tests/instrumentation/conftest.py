"""Fixtures shared by the SDK instrumentation tests: a real, in-memory OpenTelemetry pipeline,
and the real processor behind an instrumented app."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from instrumentation_support import PricedCalls
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


@pytest.fixture
def span_exporter() -> InMemorySpanExporter:
    """Collects every span the ``tracer_provider`` fixture ends, synchronously."""
    return InMemorySpanExporter()


@pytest.fixture
def tracer_provider(span_exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    """A TracerProvider exporting to ``span_exporter``; pass it to ``instrument()``."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    yield provider
    provider.shutdown()


@pytest.fixture
def priced() -> Iterator[PricedCalls]:
    """A running processor (real receiver, pipeline and price book) and the tracer provider of
    an app sending it its spans; pass ``priced.tracer_provider`` to ``instrument()``."""
    running = PricedCalls().start()
    yield running
    running.stop()
