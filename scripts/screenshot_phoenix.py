"""Render one agent trace, priced by spanledger, in Arize Phoenix's UI with headless Chromium.

Starts Phoenix (from .phoenix-venv, see scripts/phoenix/install.sh), the LLM stand-in and a
processor forwarding to Phoenix, runs a small agent (OpenAI and Anthropic calls under one tagged
root span) through the real SDKs and instrumentation, waits until Phoenix holds the priced
trace, then opens it with its root span selected and saves a screenshot.

    .venv/bin/python scripts/screenshot_phoenix.py [--output docs/images/phoenix-trace-cost.png]

Needs Debian's ``chromium`` (apt-get install -y chromium). Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import anthropic
import openai
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

import spanledger
from spanledger.instrumentation.anthropic import AnthropicInstrumentor
from spanledger.instrumentation.openai import OpenAIInstrumentor
from spanledger.processor.config import Config
from spanledger.processor.exporters import OtlpHttpExporterConfig
from spanledger.processor.receivers import HttpReceiverConfig
from spanledger.processor.rollup import RollupConfig
from spanledger.processor.service import Service
from spanledger.processor.sinks.ledger import LedgerConfig
from spanledger.processor.sinks.metrics import MetricsConfig
from spanledger.semconv import TRACE_COST
from spanledger.standin import Scenario, StandIn

ROOT = Path(__file__).resolve().parent.parent
PHOENIX_PYTHON = ROOT / ".phoenix-venv" / "bin" / "python"
PROJECT = "spanledger-demo"
ROOT_SPAN = "research agent"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return json.load(reply)


def wait_until(what: str, check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = check()
        except (urllib.error.URLError, OSError):
            found = None
        if found:
            return found
        time.sleep(0.5)
    raise SystemExit(f"gave up waiting for {what} after {timeout:.0f}s")


def start_phoenix(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    if not PHOENIX_PYTHON.exists():
        raise SystemExit("Phoenix is not installed: bash scripts/phoenix/install.sh")
    port, grpc_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PHOENIX_"))}
    env.update(
        PHOENIX_HOST="127.0.0.1",
        PHOENIX_PORT=str(port),
        PHOENIX_GRPC_PORT=str(grpc_port),
        PHOENIX_WORKING_DIR=str(workdir),
        PHOENIX_TELEMETRY_ENABLED="false",
    )
    log = (workdir / "phoenix.log").open("wb")
    process = subprocess.Popen(
        [str(PHOENIX_PYTHON), str(ROOT / "scripts" / "phoenix" / "serve.py"), "serve"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    wait_until("Phoenix", lambda: urllib.request.urlopen(f"{url}/healthz", timeout=2), 240)
    return process, url


def start_processor(phoenix_url: str, workdir: Path) -> Service:
    config = Config(
        grpc=None,
        http=HttpReceiverConfig(endpoint="127.0.0.1:0"),
        exporters=[OtlpHttpExporterConfig(endpoint=f"{phoenix_url}/v1/traces")],
        metrics=MetricsConfig(prometheus_endpoint=None),
        ledger=LedgerConfig(path=str(workdir / "spanledger.db")),
        rollup=RollupConfig(trace_idle=0.5, root_grace=0.3),
    )
    service = Service(config)
    service.start()
    return service


def run_agent(llm: StandIn, processor: Service) -> str:
    """One research run for customer acme; returns its trace id (hex)."""
    assert processor.http is not None
    provider = TracerProvider(
        resource=Resource.create(
            {"service.name": "research-agent", "openinference.project.name": PROJECT}
        )
    )
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{processor.http.port}/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter))
    spanledger.install_tags(provider)
    instrumentors = [OpenAIInstrumentor(), AnthropicInstrumentor()]
    for instrumentor in instrumentors:
        instrumentor.instrument(tracer_provider=provider)
    tracer = provider.get_tracer("research-agent")
    try:
        with (
            openai.OpenAI(api_key="demo", base_url=llm.openai_base_url) as oai,
            anthropic.Anthropic(api_key="demo", base_url=llm.anthropic_base_url) as claude,
            spanledger.tags(customer="acme", feature="research", env="prod"),
            tracer.start_as_current_span(ROOT_SPAN) as root,
        ):
            oai.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "Plan a market scan of EU heat pumps."}],
                extra_headers=Scenario(
                    usage={
                        "prompt_tokens": 1800,
                        "completion_tokens": 420,
                        "prompt_tokens_details": {"cached_tokens": 1024},
                    }
                ).to_header(),
            )
            for step, (fresh, cached, output) in enumerate(((900, 12000, 650), (1400, 12000, 800))):
                with tracer.start_as_current_span(f"read sources {step + 1}"):
                    claude.messages.create(
                        model="claude-sonnet-4-6",
                        max_tokens=1024,
                        messages=[{"role": "user", "content": f"Summarise batch {step + 1}."}],
                        extra_headers=Scenario(
                            usage={
                                "input_tokens": fresh,
                                "cache_read_input_tokens": cached,
                                "output_tokens": output,
                            }
                        ).to_header(),
                    )
            with spanledger.tags(feature="report"):
                oai.chat.completions.create(
                    model="gpt-4.1",
                    messages=[{"role": "user", "content": "Write the final report."}],
                    extra_headers=Scenario(
                        usage={"prompt_tokens": 3200, "completion_tokens": 1500}
                    ).to_header(),
                )
            trace_id = format(root.get_span_context().trace_id, "032x")
    finally:
        provider.shutdown()
        for instrumentor in instrumentors:
            instrumentor.uninstrument()
    return trace_id


def trace_url(phoenix_url: str, trace_id: str) -> str:
    """The UI address of the trace with its root span selected, once Phoenix holds the total."""

    def root_with_total() -> dict[str, Any] | None:
        query = urllib.parse.urlencode({"trace_id": trace_id, "limit": 100})
        spans = get_json(f"{phoenix_url}/v1/projects/{PROJECT}/spans?{query}")["data"]
        for span in spans:
            if span["name"] == ROOT_SPAN and TRACE_COST in json.dumps(span["attributes"]):
                return span
        return None

    root = wait_until("the priced trace in Phoenix", root_with_total, 60)
    projects = get_json(f"{phoenix_url}/v1/projects")["data"]
    project_id = next(p["id"] for p in projects if p["name"] == PROJECT)
    selected = urllib.parse.quote(root["id"])
    return f"{phoenix_url}/projects/{project_id}/traces/{trace_id}?selectedSpanNodeId={selected}"


def screenshot(url: str, output: Path, size: str, workdir: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("chromium is not installed: apt-get install -y chromium")
    output.parent.mkdir(parents=True, exist_ok=True)
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={workdir / 'chromium'}",
        f"--window-size={size}",
        "--virtual-time-budget=20000",
        f"--screenshot={output}",
        url,
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=180)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "docs/images/phoenix-trace-cost.png")
    parser.add_argument("--window-size", default="1600,1000")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="spanledger-screenshot-") as tmp:
        workdir = Path(tmp)
        phoenix, phoenix_url = start_phoenix(workdir)
        try:
            with StandIn() as llm:
                processor = start_processor(phoenix_url, workdir)
                try:
                    trace_id = run_agent(llm, processor)
                finally:
                    processor.stop()
            url = trace_url(phoenix_url, trace_id)
            print(f"trace {trace_id}: {url}")
            screenshot(url, args.output, args.window_size, workdir)
        finally:
            phoenix.terminate()
            phoenix.wait(timeout=30)
    print(f"saved {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
