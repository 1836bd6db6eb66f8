"""Runs the support app and the retriever service through the processor; prints cost per customer.

Starts the LLM stand-in, a processor (in this process, on a free port) and the retriever under
``opentelemetry-instrument``, then runs the app under ``opentelemetry-instrument``. Prints each
customer's spend by service and feature, and each trace's total as written on its root span.
Exits 1 if a call lost its customer on the way to the other service, or a trace total is not
the sum of its calls in both services.

    python examples/multi_service/run.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from decimal import Decimal
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from spanledger.processor.config import Config
from spanledger.processor.model import CountedCall
from spanledger.processor.receivers import HttpReceiverConfig
from spanledger.processor.service import Service
from spanledger.processor.sinks.ledger import LedgerConfig
from spanledger.processor.sinks.metrics import MetricsConfig
from spanledger.semconv import TRACE_COST
from spanledger.standin import StandIn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _support import INSTRUMENT, instrumented_environment, instrumented_service

HERE = Path(__file__).parent
CUSTOMERS = ("acme", "globex")
CALLS_PER_TICKET = {"support-app": 2, "retriever": 2}


class Recorder:
    """Both a span exporter and a call sink: keeps what the processor forwards and counts."""

    def __init__(self) -> None:
        self.calls: list[CountedCall] = []
        self.service_of: dict[str, str] = {}
        """span id (hex) → service.name of the process that made it."""
        self.trace_cost: dict[str, float] = {}
        """trace id (hex) → spanledger.trace.cost written on its root."""
        self._lock = threading.Lock()

    def export(self, request: ExportTraceServiceRequest) -> None:
        with self._lock:
            for resource_spans in request.resource_spans:
                service = next(
                    (
                        a.value.string_value
                        for a in resource_spans.resource.attributes
                        if a.key == "service.name"
                    ),
                    "?",
                )
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.service_of[span.span_id.hex()] = service
                        for attribute in span.attributes:
                            if attribute.key == TRACE_COST:
                                self.trace_cost[span.trace_id.hex()] = attribute.value.double_value

    def record(self, calls: Sequence[CountedCall]) -> None:
        with self._lock:
            self.calls.extend(calls)

    def shutdown(self, timeout: float) -> None:
        pass


def environment(llm: StandIn, processor: Service, service: str) -> dict[str, str]:
    assert processor.http is not None
    return instrumented_environment(
        llm.openai_base_url,
        llm.anthropic_base_url,
        service,
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{processor.http.port}",
    )


def retriever(env: dict[str, str]) -> AbstractContextManager[str]:
    return instrumented_service(HERE / "retriever.py", env, "retriever service")


@contextmanager
def processor(recorder: Recorder) -> Iterator[Service]:
    with tempfile.TemporaryDirectory() as workdir:
        config = Config(
            grpc=None,
            http=HttpReceiverConfig(endpoint="127.0.0.1:0"),
            metrics=MetricsConfig(prometheus_endpoint=None),
            ledger=LedgerConfig(path=str(Path(workdir) / "spanledger.db")),
        )
        service = Service(config, extra_exporters=[recorder], extra_sinks=[recorder])
        service.start()
        try:
            yield service
        finally:
            service.stop()  # flushes every trace still waiting


def check(recorder: Recorder, llm: StandIn) -> list[str]:
    problems = [
        f"the LLM got baggage: {request.headers['baggage']}"
        for request in llm.requests
        if "baggage" in request.headers
    ]
    by_trace: dict[str, list[CountedCall]] = defaultdict(list)
    for call in recorder.calls:
        by_trace[call.trace_id].append(call)
    if len(by_trace) != len(CUSTOMERS):
        problems.append(f"{len(by_trace)} traces, expected one per customer")
    for trace_id, calls in by_trace.items():
        customers = {call.tags["customer"] for call in calls}
        services = defaultdict(int)
        for call in calls:
            services[recorder.service_of.get(call.span_id, "?")] += 1
        if len(customers) != 1 or customers & {"(none)"}:
            problems.append(f"trace {trace_id[:8]}: calls billed to {sorted(customers)}")
        if dict(services) != CALLS_PER_TICKET:
            problems.append(f"trace {trace_id[:8]}: calls by service {dict(services)}")
        total = sum((call.cost.total for call in calls), Decimal(0))
        if recorder.trace_cost.get(trace_id) != float(total):
            problems.append(
                f"trace {trace_id[:8]}: root total {recorder.trace_cost.get(trace_id)} "
                f"is not the sum of its calls {total}"
            )
    return problems


def main() -> int:
    recorder = Recorder()
    with StandIn() as llm:
        with (
            processor(recorder) as service,
            retriever(environment(llm, service, "retriever")) as url,
        ):
            env = {**environment(llm, service, "support-app"), "RETRIEVER_URL": url}
            subprocess.run([INSTRUMENT, sys.executable, str(HERE / "app.py")], env=env, check=True)
        problems = check(recorder, llm)

    spend: dict[tuple[str, str, str], list[Decimal]] = defaultdict(list)
    for call in recorder.calls:
        service = recorder.service_of.get(call.span_id, "?")
        spend[(call.tags["customer"], service, call.tags["feature"])].append(call.cost.total)
    print(f"{'customer':<10} {'service':<13} {'feature':<15} {'calls':>5} {'cost USD':>12}")
    for (customer, service, feature), costs in sorted(spend.items()):
        print(f"{customer:<10} {service:<13} {feature:<15} {len(costs):>5} {sum(costs):>12.8f}")
    print()
    for call_trace, cost in sorted(recorder.trace_cost.items()):
        customer = next(c.tags["customer"] for c in recorder.calls if c.trace_id == call_trace)
        print(f"trace {call_trace[:8]} ({customer}): spanledger.trace.cost = {cost:.8f} USD")
    for problem in problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
