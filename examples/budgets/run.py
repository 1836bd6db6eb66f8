"""Runs app.py against a processor with budgets and shows the alerts and the enforcement.

Starts the LLM stand-in (each answer reports 200,000 prompt tokens, about $0.03 with
gpt-4o-mini), a local webhook receiver, and the processor (processor.yaml, moved to free ports
and a temporary ledger); runs ``app.py`` under ``opentelemetry-instrument`` with enforcement on,
then prints the webhook alerts and ``spanledger report --budgets``. Exits 1 unless the fifth
call was stopped, the alerts at 50, 80 and 100% arrived once each with a valid signature, and
the vendor never saw the stopped call.

    python examples/budgets/run.py
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import sysconfig
import tempfile
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from spanledger.processor.cli.report import run_report
from spanledger.processor.config import load_config
from spanledger.processor.receivers import HttpReceiverConfig
from spanledger.processor.service import Service
from spanledger.standin import Scenario, StandIn

HERE = Path(__file__).parent
INSTRUMENT = str(Path(sysconfig.get_path("scripts")) / "opentelemetry-instrument")
SECRET = "example-webhook-secret"
TOKEN = "example-budget-token"


class Alerts(BaseHTTPRequestHandler):
    received: list[tuple[dict, bool]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        signed = hmac.compare_digest(self.headers.get("x-spanledger-signature", ""), expected)
        Alerts.received.append((json.loads(body), signed))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def run_app(llm: StandIn, otlp_port: int, status_url: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SPANLEDGER_"))}
    env.update(
        OTEL_SERVICE_NAME="budgets-example",
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_BSP_SCHEDULE_DELAY="100",
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{otlp_port}",
        OPENAI_BASE_URL=llm.openai_base_url,
        OPENAI_API_KEY="example-key",
        SPANLEDGER_BUDGET_ENFORCE="1",
        SPANLEDGER_BUDGET_ENDPOINT=status_url,
        SPANLEDGER_BUDGET_TOKEN=TOKEN,
    )
    command = [INSTRUMENT, sys.executable, str(HERE / "app.py")]
    done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    print(done.stdout, end="")
    return done.stdout


def main() -> int:
    os.environ.update(WEBHOOK_SECRET=SECRET, BUDGET_TOKEN=TOKEN)
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Alerts)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    with StandIn() as llm, tempfile.TemporaryDirectory() as workdir:
        llm.push(Scenario(usage={"prompt_tokens": 200_000, "completion_tokens": 2_000}, repeat=20))
        config = load_config(HERE / "processor.yaml")
        config.http = HttpReceiverConfig(endpoint="127.0.0.1:0")
        config.ledger = replace(config.ledger, path=str(Path(workdir) / "spanledger.db"))
        assert config.budgets.status is not None and config.budgets.webhook is not None
        config.budgets.status.endpoint = "127.0.0.1:0"
        config.budgets.webhook.url = f"http://127.0.0.1:{receiver.server_port}/budget-alerts"
        service = Service(config)
        service.start()
        try:
            assert service.http is not None and service.budgets and service.budgets.server
            output = run_app(llm, service.http.port, service.budgets.server.url)
        finally:
            service.stop()  # delivers the alerts still queued
        vendor_calls = len(llm.requests)
        print("\nwebhook alerts:")
        for alert, signed in Alerts.received:
            print(
                f"  {alert['budget']} {alert['threshold_percent']:g}% at ${alert['spend_usd']} "
                f"of ${alert['amount_usd']} ({'signed' if signed else 'BAD SIGNATURE'})"
            )
        print("\nspanledger report --budgets:")
        config_copy = Path(workdir) / "processor.yaml"
        config_copy.write_text(
            f"ledger: {{path: {config.ledger.path}}}\n"
            "budgets: {limits: [{name: acme-monthly, match: {customer: acme}, amount_usd: 0.10}]}\n"
        )
        run_report(["--config", str(config_copy), "--budgets"])
    receiver.shutdown()

    problems = []
    if "BLOCKED 5" not in output:
        problems.append("the fifth call was not the one stopped")
    if vendor_calls != 4:
        problems.append(f"the vendor saw {vendor_calls} calls, expected 4")
    thresholds = [alert["threshold_percent"] for alert, _ in Alerts.received]
    if thresholds != [50, 80, 100]:
        problems.append(f"alerts at {thresholds}, expected 50, 80, 100 once each")
    if not all(signed for _, signed in Alerts.received):
        problems.append("an alert had a bad signature")
    for problem in problems:
        print("PROBLEM:", problem)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
