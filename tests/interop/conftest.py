"""The interop suite's ends: one ``spanledger serve`` per module, its receiving end, and the
peer venvs built by scripts/interop/install.sh."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from spanledger.processor.cli.report import run_report
from spanledger.processor.components import ConsumeResult
from spanledger.processor.otlp.attributes import attributes_to_dict
from spanledger.processor.receivers import HttpReceiver, HttpReceiverConfig
from spanledger.standin import StandIn

HERE = Path(__file__).resolve().parent
APP = HERE / "peer_app.py"
REPO = HERE.parents[1]
VENVS = Path(
    os.environ.get("SPANLEDGER_INTEROP_HOME")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "spanledger/interop"
)
INSTALL_HINT = "build the peer venvs with: bash scripts/interop/install.sh"


@dataclass
class Forwarded:
    """A span as the processor forwarded it."""

    span: Span
    scope: str
    attributes: dict[str, Any]
    customer: Any
    """The ``customer`` attribute of the span's resource: the run that made it."""


class Backend:
    """An OTLP/HTTP receiving end keeping every forwarded span by trace id."""

    def __init__(self) -> None:
        self.traces: dict[str, list[Forwarded]] = defaultdict(list)
        self._lock = threading.Lock()
        self.receiver = HttpReceiver(HttpReceiverConfig(endpoint="127.0.0.1:0"), self)
        self.receiver.start()

    def consume(self, request: ExportTraceServiceRequest) -> ConsumeResult:
        with self._lock:
            for resource_spans in request.resource_spans:
                resource = attributes_to_dict(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.traces[span.trace_id.hex()].append(
                            Forwarded(
                                span,
                                scope_spans.scope.name,
                                attributes_to_dict(span.attributes),
                                resource.get("customer"),
                            )
                        )
        return ConsumeResult()

    def trace(self, trace_id: str) -> list[Forwarded]:
        with self._lock:
            return list(self.traces.get(trace_id, ()))

    def traces_of(self, customer: str) -> dict[str, list[Forwarded]]:
        """Every trace holding a span of the run tagged ``customer``."""
        with self._lock:
            return {
                trace_id: list(spans)
                for trace_id, spans in self.traces.items()
                if any(item.customer == customer for item in spans)
            }


@dataclass
class Processor:
    """``spanledger serve`` in a subprocess, with its ledger and Prometheus endpoint."""

    config: Path
    process: subprocess.Popen
    otlp_http: str
    metrics: str
    backend: Backend
    log: list[str] = field(default_factory=list)

    def report(self, customer: str) -> dict[str, Any] | None:
        """The row of ``customer`` in ``spanledger report --by customer --format json``."""
        out = io.StringIO()
        argv = ["--config", str(self.config), "--by", "customer", "--format", "json"]
        assert run_report(argv, out) == 0
        rows = [row for row in json.loads(out.getvalue()) if row.get("customer") == customer]
        return rows[0] if rows else None

    def prometheus(self, customer: str) -> dict[str, float]:
        """Per metric name: the sum of its samples labelled ``customer``."""
        with urllib.request.urlopen(self.metrics, timeout=5) as answer:
            text = answer.read().decode()
        sums: dict[str, float] = defaultdict(float)
        for line in text.splitlines():
            if line.startswith("#") or f'customer="{customer}"' not in line:
                continue
            name, value = re.match(r"([a-zA-Z_:]+)\{.*\}\s+(\S+)", line).groups()  # type: ignore[union-attr]
            sums[name] += float(value)
        return dict(sums)


@pytest.fixture(scope="module")
def processor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processor]:
    backend = Backend()
    directory = tmp_path_factory.mktemp("interop-processor")
    config = directory / "spanledger.yaml"
    config.write_text(
        f"""
receivers: {{otlp: {{grpc: null, http: {{endpoint: 127.0.0.1:0}}}}}}
exporters:
  - otlp_http: {{endpoint: "http://127.0.0.1:{backend.receiver.port}/v1/traces", compression: none}}
rollup: {{trace_idle: 1s, root_grace: 500ms}}
metrics: {{prometheus: {{endpoint: 127.0.0.1:0}}}}
ledger: {{path: {directory / "ledger.db"}}}
""",
        encoding="utf-8",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "spanledger.processor.cli", "serve", "--config", str(config)],
        stderr=subprocess.PIPE,
        text=True,
        cwd=directory,
    )
    assert process.stderr is not None
    otlp = metrics = None
    log: list[str] = []
    for line in process.stderr:
        log.append(line)
        found_otlp = re.search(r"OTLP/HTTP (http://127\.0\.0\.1:\d+)", line)
        found_metrics = re.search(r"metrics (http://127\.0\.0\.1:\d+/metrics)", line)
        if found_otlp and found_metrics:
            otlp, metrics = found_otlp.group(1), found_metrics.group(1)
            break
    assert otlp and metrics, "the processor did not say where it listens:\n" + "".join(log)
    threading.Thread(target=lambda: log.extend(process.stderr), daemon=True).start()
    running = Processor(config, process, f"{otlp}/v1/traces", metrics, backend, log)
    try:
        yield running
    finally:
        process.terminate()
        process.wait(timeout=30)
        backend.receiver.stop()


def venv_python(name: str) -> Path:
    python = VENVS / name / "bin" / "python"
    if not python.exists():
        pytest.fail(f"no interop venv {name!r} in {VENVS}: {INSTALL_HINT}")
    return python


@dataclass
class Run:
    """One run of the app: the calls it made (one trace each) and the tag that marks them."""

    customer: str
    calls: list[dict[str, Any]]
    stderr: str
    peer: str
    order: str


def run_app(
    processor: Processor,
    standin: StandIn,
    *,
    venv: str,
    peer: str,
    order: str,
    calls: list[str],
    env: dict[str, str] | None = None,
    entry_points: list[str] | None = None,
) -> Run:
    """Run the app in ``venv``; with ``entry_points``, under ``opentelemetry-instrument`` with
    the distributions' metadata found in that order first."""
    customer = f"run-{uuid.uuid4().hex[:12]}"
    config = {
        "peer": peer,
        "order": order,
        "calls": calls,
        "endpoint": processor.otlp_http,
        "openai_url": standin.openai_base_url,
        "anthropic_url": standin.anthropic_base_url,
    }
    python = venv_python(venv)
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SPANLEDGER_"))},
        "PYTHONPATH": "",
        "OTEL_RESOURCE_ATTRIBUTES": f"customer={customer},service.name=interop-{peer}",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": processor.otlp_http,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        # LiteLLM would fetch its price map from the internet at import.
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        **(env or {}),
    }
    command = [str(python), str(APP), json.dumps(config)]
    if entry_points is not None:
        environment["PYTHONPATH"] = str(entry_points_first(python, entry_points))
        command = [str(python.parent / "opentelemetry-instrument"), *command]
    done = subprocess.run(
        command, check=False, capture_output=True, text=True, env=environment, timeout=180, cwd=HERE
    )
    assert done.returncode == 0, f"the app failed:\n{done.stdout}\n{done.stderr}"
    made = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [call["call"] for call in made] == calls, done.stderr
    return Run(customer, made, done.stderr, peer, order)


def entry_points_first(python: Path, distributions: list[str]) -> Path:
    """A folder holding copies of the metadata of ``distributions``, to go first on the path:
    ``opentelemetry-instrument`` then loads their instrumentors in that order, before others."""
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="interop-entry-points-"))
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    for index, distribution in enumerate(distributions):
        normalized = distribution.replace("-", "_").lower()
        found = [
            path
            for path in Path(site).glob("*.dist-info")
            if path.name.lower().startswith(normalized + "-")
        ]
        assert found, f"{distribution} is not installed in {site}"
        # One folder per distribution, in order: a path entry's distributions are listed in
        # directory order, the entries themselves in path order.
        target = folder / f"{index:02d}"
        target.mkdir()
        shutil.copytree(found[0], target / found[0].name)
    return folder


def wait_for_traces(processor: Processor, run: Run, timeout: float = 30.0) -> None:
    """Until the root span of every trace of ``run`` was forwarded (with the rest of its trace:
    a trace is forwarded whole, at once)."""
    deadline = time.monotonic() + timeout
    pending = [call["trace_id"] for call in run.calls]
    while time.monotonic() < deadline:
        pending = [
            trace_id
            for trace_id in pending
            if not any(not item.span.parent_span_id for item in processor.backend.trace(trace_id))
        ]
        if not pending:
            break
        time.sleep(0.2)
    assert not pending, f"traces not forwarded: {pending}\n{run.stderr}"
