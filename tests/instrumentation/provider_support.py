"""Helpers the SDK tests of the kit's providers share: inference spans, a budget service that
refuses every call, and an app run under ``opentelemetry-instrument`` against the real processor.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from instrumentation_support import PricedCalls
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from spanledger.instrumentation.budgets import ENDPOINT_ENV, ENFORCE_ENV
from spanledger.processor.model import CountedCall
from spanledger.processor.otlp.attributes import attributes_to_dict
from spanledger.processor.pipeline.core import Pipeline
from spanledger.processor.pipeline.fanout import FanOut
from spanledger.processor.pricing import PriceBook, PricingConfig
from spanledger.processor.receivers import GrpcReceiver, GrpcReceiverConfig
from spanledger.processor.rollup import RollupConfig
from spanledger.semconv import DEFAULT_TAG_KEYS, GEN_AI_OPERATION_NAME

AUTOLOADED = ("spanledger_tags", "threading", "httpx", "httpx2")
"""Instrumentations an instrumented app keeps besides the SDK's own; the others only cost
start-up time. The tags instrumentor and the HTTP instrumentations stay: tags must reach the span
and no baggage the request, and HTTP spans must nest under the inference span."""


class PricedWith(PricedCalls):
    """:class:`PricedCalls` whose processor prices as ``pricing`` says (overrides, markup,
    ``prefer_reported``)."""

    def __init__(self, pricing: PricingConfig) -> None:
        super().__init__()
        self.pipeline = Pipeline(
            RollupConfig(trace_idle=60.0, root_grace=1.0),
            DEFAULT_TAG_KEYS,
            PriceBook(pricing),
            FanOut([self._recorder], [self._recorder]),
        )
        self.receiver = GrpcReceiver(GrpcReceiverConfig(endpoint="127.0.0.1:0"), self.pipeline)


def inference_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    """The finished spans that record an inference call (they name a GenAI operation)."""
    return [
        span
        for span in exporter.get_finished_spans()
        if GEN_AI_OPERATION_NAME in (span.attributes or {})
    ]


def assert_content_left_out(span: ReadableSpan) -> None:
    """No message content on the span (capture is off by default)."""
    attributes = span.attributes or {}
    assert "gen_ai.input.messages" not in attributes
    assert "gen_ai.output.messages" not in attributes


def assert_content_captured(
    span: ReadableSpan, question: str, answer: str, finish_reason: str
) -> None:
    """The span holds one user question and one assistant answer, as text parts."""
    attributes = span.attributes or {}
    assert json.loads(str(attributes["gen_ai.input.messages"])) == [
        {"role": "user", "parts": [{"type": "text", "content": question}]}
    ]
    assert json.loads(str(attributes["gen_ai.output.messages"])) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": answer}],
            "finish_reason": finish_reason,
        }
    ]


class _RefusingBudget(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        body = json.dumps({"allow": False, "reasons": [{"budget": "daily"}]}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def refusing_budget(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Budget enforcement on, against a budget service that refuses every call."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RefusingBudget)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv(ENFORCE_ENV, "1")
    monkeypatch.setenv(ENDPOINT_ENV, f"http://127.0.0.1:{server.server_port}")
    yield
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def run_instrumented_app(
    tmp_path: Path,
    app: str,
    priced: PricedCalls,
    *,
    env: Mapping[str, str] | None = None,
    instrumentations: Sequence[str] = (),
) -> str:
    """Run ``app`` under ``opentelemetry-instrument``, exporting over OTLP/gRPC to ``priced``'s
    processor, with ``instrumentations`` (entry point names) and :data:`AUTOLOADED` on; return
    what it printed."""
    script = tmp_path / "app.py"
    script.write_text(app)
    instrument = Path(sys.executable).with_name("opentelemetry-instrument")
    kept = {*instrumentations, *AUTOLOADED}
    installed = {entry.name for entry in entry_points(group="opentelemetry_instrumentor")}
    disabled = sorted(installed - kept)
    completed = subprocess.run(
        [str(instrument), sys.executable, str(script)],
        env={
            **os.environ,
            **(env or {}),
            "OTEL_SERVICE_NAME": "provider-app",
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{priced.receiver.port}",
            "OTEL_BSP_SCHEDULE_DELAY": "50",
            "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": ",".join(disabled),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def forwarded_spans(priced: PricedCalls) -> list[tuple[str, str, dict[str, Any]]]:
    """``(scope name, span name, attributes)`` of every span the processor forwarded so far."""
    priced.pipeline.flush_all()
    return [
        (scope_spans.scope.name, span.name, attributes_to_dict(span.attributes))
        for request in priced._recorder.requests
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    ]


def counted_calls(priced: PricedCalls, expected: int, timeout: float = 10.0) -> list[CountedCall]:
    """The calls the processor counted, once ``expected`` of them arrived (or the time is up)."""
    deadline = time.monotonic() + timeout
    calls = priced.calls()
    while len(calls) < expected and time.monotonic() < deadline:
        time.sleep(0.05)
        calls = priced.calls()
    return calls


def assert_untraced(priced: PricedCalls, requests: int, timeout: float = 10.0) -> None:
    """The HTTP spans of the app's ``requests`` (at least one each) reached the processor, and
    no inference span did."""
    deadline = time.monotonic() + timeout
    spans = forwarded_spans(priced)
    while len(spans) < requests and time.monotonic() < deadline:
        time.sleep(0.05)
        spans = forwarded_spans(priced)
    assert len(spans) >= requests
    assert {name for _, name, _ in spans} == {"POST"}
    assert not any(GEN_AI_OPERATION_NAME in attributes for _, _, attributes in spans)
    assert priced.calls() == []
