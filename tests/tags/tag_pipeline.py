"""Tag test helpers: an in-memory pipeline with tags and LLM SDKs traced; a header recorder."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from spanledger.instrumentation.baggage.config import TagConfig
from spanledger.instrumentation.baggage.instrumentor import TagsInstrumentor
from spanledger.semconv import GEN_AI_OPERATION_NAME, TAGS_TRUNCATED


def span_tags(attributes: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """The tag attributes of a span, plus the truncation flag when present."""
    found = {key: attributes[key] for key in keys if key in attributes}
    if TAGS_TRUNCATED in attributes:
        found[TAGS_TRUNCATED] = tuple(attributes[TAGS_TRUNCATED])
    return found


@dataclass
class Pipeline:
    """A TracerProvider exporting to memory, with the tag pipeline installed on it."""

    provider: TracerProvider
    exporter: InMemorySpanExporter
    config: TagConfig
    instrumented: list[BaseInstrumentor] = field(default_factory=list)

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def llm_spans(self) -> list[ReadableSpan]:
        """The inference spans written by the spanledger SDK instrumentation."""
        return [s for s in self.spans() if GEN_AI_OPERATION_NAME in (s.attributes or {})]

    def tags_of(self, span: ReadableSpan) -> dict[str, Any]:
        return span_tags(span.attributes or {}, self.config.tag_keys)

    def instrument(self, instrumentor: BaseInstrumentor, **kwargs: Any) -> None:
        """Instruments for this test only, sending spans to this pipeline's provider."""
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
        instrumentor.instrument(tracer_provider=self.provider, **kwargs)
        self.instrumented.append(instrumentor)


@contextmanager
def installed_pipeline(env: Mapping[str, str]) -> Iterator[Pipeline]:
    """The pipeline, with the ``SPANLEDGER_*`` settings in ``env``; uninstruments on exit."""
    from opentelemetry.instrumentation.httpx import HTTPX2ClientInstrumentor
    from opentelemetry.instrumentation.threading import ThreadingInstrumentor

    from spanledger.instrumentation.anthropic import AnthropicInstrumentor
    from spanledger.instrumentation.openai import OpenAIInstrumentor

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    pipeline = Pipeline(provider, exporter, TagConfig.from_env(env))
    try:
        pipeline.instrument(ThreadingInstrumentor())
        pipeline.instrument(TagsInstrumentor(), config=pipeline.config, attach_env=False)
        pipeline.instrument(OpenAIInstrumentor())
        pipeline.instrument(AnthropicInstrumentor())
        pipeline.instrument(HTTPX2ClientInstrumentor())
        yield pipeline
    finally:
        for instrumentor in reversed(pipeline.instrumented):
            instrumentor.uninstrument()
        provider.shutdown()


@dataclass
class Echo:
    """A local HTTP server that records the headers of every request it gets."""

    url: str
    headers: list[dict[str, str]]


@contextmanager
def echo_server() -> Iterator[Echo]:
    """Runs the server on 127.0.0.1 at a free port; fails on exit if a request broke it."""
    received: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            received.append({k.lower(): v for k, v in self.headers.items()})
            self.send_response(200)
            self.send_header("content-type", "text/plain")
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    errors: list[BaseException] = []

    class Server(ThreadingHTTPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:
            # A client may reset a kept-alive connection when it closes; anything else is a bug.
            error = sys.exc_info()[1]
            if not isinstance(error, ConnectionError) and error is not None:
                errors.append(error)

    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield Echo(f"http://127.0.0.1:{server.server_port}", received)
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
    assert errors == []
