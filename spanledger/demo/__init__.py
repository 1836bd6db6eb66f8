"""``spanledger demo``: the whole path offline, in one command.

It starts the local LLM stand-in and the processor (embedded defaults, a ledger in a
temporary directory, or in ``--keep DIR``), runs the triage sub-service and the example agent
under ``opentelemetry-instrument``, then prints cost per feature and per customer and one
trace's cost tree, and reconciles the ledger with the stand-in's bill (its admin usage and cost
APIs), which charges the in-house fine-tune more than the demo's price override says. Nothing
is left running, and without ``--keep`` nothing is left on disk.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from spanledger.demo.tree import RecordingExporter, render_cost_tree
from spanledger.standin import StandIn

DEMO_PRICES = """\
# Prices for models the public table does not know: the demo's in-house fine-tune.
models:
  - model: acme-support-ft-2
    input_mtok: 0.50
    output_mtok: 1.50
"""


_TEMPORARY = "temporary: removed when the demo ends; --keep DIR keeps it"

BILLED_PRICES = {"acme-support-ft-2": {"input": "0.60", "output": "1.80"}}
"""What the stand-in, as the provider, bills for the fine-tune: more than ``DEMO_PRICES``."""


def run_demo(keep: str | None = None) -> int:
    """Run the demo; keep the ledger and config in ``keep`` when given. Returns an exit code."""
    from spanledger.processor.cli.report import run_report
    from spanledger.processor.config import Config
    from spanledger.processor.pricing import PricingConfig
    from spanledger.processor.receivers import HttpReceiverConfig
    from spanledger.processor.rollup import RollupConfig
    from spanledger.processor.service import Service
    from spanledger.processor.sinks.ledger import LedgerConfig
    from spanledger.processor.sinks.metrics import MetricsConfig

    workdir = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="spanledger-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    ledger_path = workdir / "spanledger.db"
    ledger_path.unlink(missing_ok=True)
    prices = workdir / "prices.yaml"
    prices.write_text(DEMO_PRICES, encoding="utf-8")
    config = Config(
        grpc=None,
        http=HttpReceiverConfig(endpoint="127.0.0.1:0"),
        pricing=PricingConfig(overrides=str(prices)),
        rollup=RollupConfig(trace_idle=0.5, root_grace=0.3),
        metrics=MetricsConfig(prometheus_endpoint=None),
        ledger=LedgerConfig(path=str(ledger_path)),
    )
    recorder = RecordingExporter()
    step = _Steps()
    step(f"ledger {ledger_path} ({'kept' if keep else _TEMPORARY})")
    started = datetime.now(UTC).date()
    try:
        with StandIn(prices=BILLED_PRICES) as llm:
            step(f"LLM stand-in at {llm.url} (OpenAI, Anthropic, Gemini and Bedrock protocols)")
            service = Service(config, extra_exporters=[recorder])
            service.start()
            assert service.http is not None
            endpoint = f"http://127.0.0.1:{service.http.port}"
            step(f"processor receiving OTLP/HTTP at {endpoint}")
            env = _instrumented_env(llm, endpoint)
            try:
                with _triage(env) as triage_url:
                    step(f"triage sub-service at {triage_url}")
                    step("agent: 3 customers x 3 features (threads, asyncio, HTTP hop) ...")
                    code = _run_agent({**env, "SPANLEDGER_DEMO_TRIAGE_URL": triage_url}, step)
                    if code != 0:
                        print(f"the demo agent failed with exit code {code}", file=sys.stderr)
                        return code
            finally:
                step("draining the processor (rollup wait, then flush)")
                service.stop()
            step("reconciling the ledger with the stand-in's bill (admin usage and cost APIs)")
            reconciled = _reconcile(llm.url, workdir, ledger_path, started)
        stats = service.pipeline.stats if service.pipeline else {}
        step(
            f"processed {stats.get('spans_received', 0)} spans in "
            f"{stats.get('traces_flushed', 0)} traces"
        )
        for key in ("feature", "customer"):
            print(f"\nCost by {key}:")
            run_report(["--ledger", str(ledger_path), "--by", key])
        print("\nOne trace, each span with the cost of its subtree:")
        print(render_cost_tree(recorder.trace_with_most_services()))
        print("\nThe provider's bill against the ledger (spanledger reconcile):")
        print(reconciled, end="")
        print("\nSettled cost by customer: the invoices spread over the tags, adding up exactly:")
        run_report(["--ledger", str(ledger_path), "--settled", "--by", "customer"])
        print()
        if keep:
            print(f"Ledger kept at {ledger_path}; try:")
            print(f"  spanledger report --ledger {ledger_path} --by customer --by feature")
        else:
            print(f"{ledger_path} is removed as the demo ends. To keep it and report on it:")
            print("  spanledger demo --keep DIR")
            print("  spanledger report --ledger DIR/spanledger.db --by customer --by feature")
        return 0
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


def _reconcile(standin_url: str, workdir: Path, ledger_path: Path, since: date) -> str:
    """``spanledger reconcile`` against the stand-in's admin APIs; returns its table."""
    from spanledger.processor.cli.reconcile import run_reconcile

    config = workdir / "reconcile.yaml"
    config.write_text(
        f"ledger: {{path: {ledger_path.name}}}\npricing: {{overrides: prices.yaml}}\n",
        encoding="utf-8",
    )
    until = datetime.now(UTC).date() + timedelta(days=1)
    out = io.StringIO()
    run_reconcile(
        [
            *("--config", str(config), "--api", "openai", "--api", "anthropic"),
            *("--openai-url", standin_url, "--anthropic-url", standin_url),
            *("--since", str(since), "--until", str(until)),
            # The demo's bill is a few cents: settle in millionths of a dollar to show shares.
            *("--settle-unit", "0.000001"),
        ],
        out,
        environ={"OPENAI_ADMIN_KEY": "demo-admin-key", "ANTHROPIC_ADMIN_KEY": "demo-admin-key"},
    )
    return out.getvalue()


class _Steps:
    """Progress lines with the time since the demo started."""

    def __init__(self) -> None:
        self._start = time.monotonic()

    def __call__(self, message: str) -> None:
        print(f"[{time.monotonic() - self._start:5.1f}s] {message}", flush=True)


def _instrumented_env(llm: StandIn, otlp_endpoint: str) -> dict[str, str]:
    # The machine's own OpenTelemetry, AWS and Google settings (a profile, Vertex AI mode) stay
    # out: every SDK of the demo talks to the stand-in with made-up credentials.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AWS_", "GOOGLE_"))}
    env.update(
        # One endpoint for every signal, as for any app: the processor takes metrics and logs too.
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp_endpoint,
        OTEL_BSP_SCHEDULE_DELAY="200",
        OPENAI_BASE_URL=llm.openai_base_url,
        OPENAI_API_KEY="demo-key",
        ANTHROPIC_BASE_URL=llm.anthropic_base_url,
        ANTHROPIC_API_KEY="demo-key",
        GOOGLE_GEMINI_BASE_URL=llm.url,
        GEMINI_API_KEY="demo-key",
        AWS_ENDPOINT_URL_BEDROCK_RUNTIME=llm.url,
        AWS_ACCESS_KEY_ID="AKIDDEMO",
        AWS_SECRET_ACCESS_KEY="demo-secret",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        PYTHONUNBUFFERED="1",
    )
    return env


def _instrument_command() -> list[str]:
    script = Path(sys.executable).parent / "opentelemetry-instrument"
    if script.exists():
        return [str(script)]
    found = shutil.which("opentelemetry-instrument")
    if found is None:
        raise RuntimeError("opentelemetry-instrument is not installed beside this Python")
    return [found]


@contextmanager
def _triage(env: dict[str, str]) -> Iterator[str]:
    process = subprocess.Popen(
        [*_instrument_command(), sys.executable, "-m", "spanledger.demo.triage"],
        env={**env, "OTEL_SERVICE_NAME": "triage"},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError(f"the triage sub-service did not start: {line!r}")
        threading.Thread(target=process.stdout.read, daemon=True).start()
        yield line.rsplit(" ", 1)[-1].strip()
    finally:
        # SIGINT lets the service's SDK flush its last spans before it exits.
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _run_agent(env: dict[str, str], step: _Steps) -> int:
    process = subprocess.Popen(
        [*_instrument_command(), sys.executable, "-m", "spanledger.demo.agent"],
        env={**env, "OTEL_SERVICE_NAME": "agent"},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        step(line.strip())
    return process.wait(timeout=300)
