"""Prices the calls of app.py with prices.yaml and prints where each price came from.

Starts the LLM stand-in and the processor (processor.yaml, moved to a free port and a temporary
ledger), runs ``app.py`` under ``opentelemetry-instrument``, then prints one line per call.
Exits 1 if a call was not priced the way prices.yaml says.

    python examples/custom_prices/run.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

from spanledger.processor.config import load_config
from spanledger.processor.model import CountedCall
from spanledger.processor.receivers import HttpReceiverConfig
from spanledger.processor.service import Service
from spanledger.processor.sinks.metrics import MetricsConfig
from spanledger.standin import StandIn

HERE = Path(__file__).parent
INSTRUMENT = str(Path(sysconfig.get_path("scripts")) / "opentelemetry-instrument")
MILLION = Decimal(1_000_000)
EXPECTED_SOURCE = {
    "gpt-4o-mini": "price_table",
    "ft:gpt-4o-mini-2024-07-18:acme:support:B7x2": "override",
    "llama-3.1-8b-instruct": "override",
    "claude-sonnet-4-6": "override",
    "acme-experimental-7b": None,
}


class Calls:
    """Keeps the counted calls the processor hands its sinks."""

    def __init__(self) -> None:
        self.calls: list[CountedCall] = []
        self._lock = threading.Lock()

    def record(self, calls: Sequence[CountedCall]) -> None:
        with self._lock:
            self.calls.extend(calls)

    def shutdown(self, timeout: float) -> None:
        pass


def run_app(llm: StandIn, port: int) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SPANLEDGER_"))}
    env.update(
        OTEL_SERVICE_NAME="custom-prices-example",
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{port}",
        OPENAI_BASE_URL=llm.openai_base_url,
        OPENAI_API_KEY="example-key",
        ANTHROPIC_BASE_URL=llm.anthropic_base_url,
        ANTHROPIC_API_KEY="example-key",
    )
    subprocess.run([INSTRUMENT, sys.executable, str(HERE / "app.py")], env=env, check=True)


def problems_of(call: CountedCall) -> list[str]:
    model = call.usage.request_model or ""
    expected = EXPECTED_SOURCE.get(model, "?")
    if call.cost.source != expected:
        return [f"{model}: priced by {call.cost.source}, expected {expected}"]
    if model == "llama-3.1-8b-instruct":
        own = call.usage.input_tokens * Decimal("0.02") + call.usage.output_tokens * Decimal("0.05")
        if call.cost.total != own / MILLION:
            return [f"{model}: ${call.cost.total} is not the price in prices.yaml"]
    return []


def main() -> int:
    calls = Calls()
    with StandIn() as llm, tempfile.TemporaryDirectory() as workdir:
        config = load_config(HERE / "processor.yaml")
        config.http = HttpReceiverConfig(endpoint="127.0.0.1:0")
        config.metrics = MetricsConfig(prometheus_endpoint=None)
        config.ledger = replace(config.ledger, path=str(Path(workdir) / "spanledger.db"))
        service = Service(config, extra_sinks=[calls])
        service.start()
        try:
            assert service.http is not None
            run_app(llm, service.http.port)
        finally:
            service.stop()  # flushes every trace still waiting

    print(f"{'model':<44} {'priced by':<12} {'price entry':<52} {'in/out':>9} {'cost USD':>12}")
    problems: list[str] = []
    for call in sorted(calls.calls, key=lambda c: c.start_time_unix_nano):
        cost = call.cost
        tokens = f"{call.usage.input_tokens}/{call.usage.output_tokens}"
        price = f"{cost.total:.8f}" if cost.status == "priced" else "unpriced"
        entry = cost.pricing_model or (cost.reason or "")[:52]
        print(
            f"{call.usage.request_model or '?':<44} {cost.source or '-':<12} "
            f"{entry:<52} {tokens:>9} {price:>12}"
        )
        problems += problems_of(call)
    if len(calls.calls) != len(EXPECTED_SOURCE):
        problems.append(f"{len(calls.calls)} calls counted, expected {len(EXPECTED_SOURCE)}")
    for problem in problems:
        print("PROBLEM:", problem)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
