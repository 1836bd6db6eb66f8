"""``spanledger.install_tags``: the one call for apps that configure OpenTelemetry in code."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest
from opentelemetry import propagate
from opentelemetry.instrumentation.threading import ThreadingInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import spanledger
from spanledger.instrumentation.baggage.config import TagConfig
from spanledger.instrumentation.baggage.instrumentor import TagsInstrumentor
from spanledger.instrumentation.baggage.propagator import GuardedPropagator


@pytest.fixture
def provider() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield tracer_provider, exporter
    for instrumentor in (TagsInstrumentor(), ThreadingInstrumentor()):
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
    tracer_provider.shutdown()


def test_install_tags_copies_tags_into_threads_and_guards_propagation(
    provider: tuple[TracerProvider, InMemorySpanExporter], caplog: pytest.LogCaptureFixture
) -> None:
    tracer_provider, exporter = provider
    spanledger.install_tags(tracer_provider, config=TagConfig.from_env({}))
    assert isinstance(propagate.get_global_textmap(), GuardedPropagator)
    tracer = tracer_provider.get_tracer("app")

    with spanledger.tags(customer="acme", team="search"):
        worker = threading.Thread(target=lambda: tracer.start_span("in a thread").end())
        worker.start()
        worker.join(timeout=10)
    tracer.start_span("outside").end()

    with caplog.at_level(logging.WARNING):
        spanledger.install_tags(tracer_provider)
    assert caplog.records == []
    assert len(tracer_provider._active_span_processor._span_processors) == 2

    attributes = {span.name: dict(span.attributes or {}) for span in exporter.get_finished_spans()}
    assert attributes == {"in a thread": {"customer": "acme", "team": "search"}, "outside": {}}


def test_install_tags_on_a_provider_without_processors_warns_and_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class NoSdkProvider:
        pass

    try:
        with caplog.at_level(logging.WARNING):
            spanledger.install_tags(NoSdkProvider(), attach_env=False)
        assert any("accepts no span processor" in r.getMessage() for r in caplog.records)
        # Propagation is still guarded.
        assert isinstance(propagate.get_global_textmap(), GuardedPropagator)
    finally:
        TagsInstrumentor().uninstrument()
        ThreadingInstrumentor().uninstrument()


def test_install_tags_again_adds_a_provider_created_later(
    provider: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    first, _ = provider
    spanledger.install_tags(first, config=TagConfig.from_env({}), attach_env=False)
    # As under opentelemetry-instrument, when the application then sets up its own provider.
    later_exporter = InMemorySpanExporter()
    later = TracerProvider()
    later.add_span_processor(SimpleSpanProcessor(later_exporter))
    try:
        spanledger.install_tags(later)
        with spanledger.tags(customer="acme"):
            later.get_tracer("app").start_span("later").end()
        (span,) = later_exporter.get_finished_spans()
        assert dict(span.attributes or {}) == {"customer": "acme"}
    finally:
        later.shutdown()
