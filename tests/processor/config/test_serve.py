"""`spanledger serve` as users run it: a real process, OTLP in, priced spans out, SIGTERM drains."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind
from support.sinks import OtlpHttpBackend

from spanledger.processor.cli.report import run_report


def test_serve_prices_forwards_records_and_drains_on_sigterm(tmp_path: Path) -> None:
    backend = OtlpHttpBackend().start()
    config = tmp_path / "spanledger.yaml"
    config.write_text(
        f"""
receivers: {{otlp: {{grpc: null, http: {{endpoint: 127.0.0.1:0}}}}}}
exporters:
  - otlp_http: {{endpoint: "{backend.endpoint}", compression: none}}
rollup: {{trace_idle: 30s, root_grace: 30s}}
metrics: {{prometheus: null}}
ledger: {{path: ledger.db}}
service: {{shutdown_timeout: 10s}}
""",
        encoding="utf-8",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "spanledger.processor.cli", "serve", "--config", str(config)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        port = None
        for line in process.stderr:
            found = re.search(r"OTLP/HTTP http://127\.0\.0\.1:(\d+)", line)
            if found:
                port = int(found.group(1))
                break
        assert port, "the processor did not say where it listens"
        log: list[str] = []
        threading.Thread(target=lambda: log.extend(process.stderr), daemon=True).start()

        provider = TracerProvider(resource=Resource.create({"service.name": "app"}))
        exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces")
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("test")
        llm_attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 1_000_000,
            "gen_ai.usage.output_tokens": 1_000_000,
            "customer": "acme",
        }
        with (
            tracer.start_as_current_span("agent run", attributes={"customer": "acme"}),
            tracer.start_as_current_span(
                "chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=llm_attributes
            ),
        ):
            pass
        provider.shutdown()

        # The rollup would wait 30 s; SIGTERM must flush the waiting trace and drain at once.
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
        assert time.monotonic() - started < 10
        received = backend.wait_for(lambda spans: len(spans) >= 2, timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
        backend.stop()

    by_name = {span.name: span.attributes for span in received}
    call = by_name["chat gpt-4o-mini"]
    assert call["gen_ai.usage.cost"] == 0.75  # $0.15 + $0.60 for a million tokens each
    assert call["spanledger.cost.status"] == "priced"
    root = by_name["agent run"]
    assert root["spanledger.trace.cost"] == 0.75
    assert root["spanledger.trace.llm_calls"] == 1

    out = tmp_path / "report.json"
    with out.open("w") as handle:
        assert (
            run_report(
                ["--config", str(config), "--by", "customer", "--format", "json"], out=handle
            )
            == 0
        )
    rows = json.loads(out.read_text())
    assert [(r["customer"], r["calls"], float(r["cost_usd"])) for r in rows] == [("acme", 1, 0.75)]
