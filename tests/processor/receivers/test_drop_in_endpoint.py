"""The processor as an application's only OTLP endpoint: traces, metrics and logs all get through.

The real processor (``Service``) runs on free ports; the OpenTelemetry SDK's own OTLP exporters,
over gRPC and over HTTP, send it spans, metrics and logs made by the real SDK; a scripted gRPC
endpoint and a scripted HTTP endpoint stand behind the processor's two exporter kinds and record
what reaches them. Metrics and logs must arrive exactly as the SDK encoded them.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from google.protobuf.message import Message
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogs
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
    OTLPMetricExporter as GrpcMetrics,
)
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpans
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogs
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as HttpMetrics,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpans
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from spanledger.processor.config import Config, ServiceConfig
from spanledger.processor.exporters import (
    DiskQueueConfig,
    OtlpGrpcExporterConfig,
    OtlpHttpExporterConfig,
    TlsClientConfig,
)
from spanledger.processor.intake.write_ahead import WriteAheadConfig
from spanledger.processor.otlp.signals import LOGS, METRICS, TRACES, Signal
from spanledger.processor.receivers import GrpcReceiverConfig, HttpReceiverConfig
from spanledger.processor.rollup import RollupConfig
from spanledger.processor.service import Service
from spanledger.processor.sinks.ledger import LedgerConfig
from spanledger.processor.sinks.metrics import MetricsConfig

try:
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter as InMemoryLogs
except ImportError:  # SDK releases before the log exporter classes were renamed
    from opentelemetry.sdk._logs.export import InMemoryLogExporter as InMemoryLogs

DROPPED_LINE = "OTLP {} are accepted and dropped: no exporter takes them"
RESOURCE = Resource.create({"service.name": "shop", "deployment.environment": "test"})


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[Callable[..., Service]]:
    """Start the processor with the given exporter configs; every one started is stopped."""
    started: list[Service] = []

    def start(
        *exporters: OtlpGrpcExporterConfig | OtlpHttpExporterConfig,
        write_ahead: WriteAheadConfig | None = None,
    ) -> Service:
        config = Config(
            grpc=GrpcReceiverConfig("127.0.0.1:0"),
            http=HttpReceiverConfig("127.0.0.1:0"),
            exporters=list(exporters),
            rollup=RollupConfig(trace_idle=0.2, root_grace=0.1),
            metrics=MetricsConfig(prometheus_endpoint=None),
            ledger=LedgerConfig(path=str(tmp_path / f"ledger-{len(started)}.db")),
            service=ServiceConfig(shutdown_timeout=5.0, write_ahead=write_ahead),
        )
        service = Service(config)
        started.append(service)
        service.start()
        return service

    yield start
    for service in started:
        service.stop()


class SdkExporters:
    """The SDK's OTLP span, metric and log exporters over one protocol, aimed at ``service``."""

    def __init__(self, protocol: str, service: Service) -> None:
        assert service.grpc is not None and service.http is not None
        if protocol == "grpc":
            target = f"http://127.0.0.1:{service.grpc.port}"
            self.spans = GrpcSpans(endpoint=target, insecure=True)
            self.metrics = GrpcMetrics(endpoint=target, insecure=True)
            self.logs = GrpcLogs(endpoint=target, insecure=True)
        else:
            base = f"http://127.0.0.1:{service.http.port}"
            self.spans = HttpSpans(endpoint=f"{base}/v1/traces")
            self.metrics = HttpMetrics(endpoint=f"{base}/v1/metrics")
            self.logs = HttpLogs(endpoint=f"{base}/v1/logs")

    def shutdown(self) -> None:
        for exporter in (self.spans, self.metrics, self.logs):
            exporter.shutdown()


def send(protocol: str, service: Service, spans: list, metrics: object, logs: list) -> None:  # type: ignore[type-arg]
    """Export with the SDK's exporters (spans only if any are given); each must succeed."""
    sdk = SdkExporters(protocol, service)
    try:
        assert sdk.metrics.export(metrics).name == "SUCCESS"
        assert sdk.logs.export(logs).name == "SUCCESS"
        if spans:
            assert sdk.spans.export(spans).name == "SUCCESS"
    finally:
        sdk.shutdown()


def sdk_telemetry() -> tuple[list, object, list]:  # type: ignore[type-arg]
    """What a small shop app records with the real SDK: spans, metrics data and log records.

    The log records are written inside the span, so they carry its trace and span ids.
    """
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider(resource=RESOURCE)
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(resource=RESOURCE, metric_readers=[reader])
    logs = InMemoryLogs()
    logger_provider = LoggerProvider(resource=RESOURCE)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))

    meter = meter_provider.get_meter("shop.checkout", "1.2")
    orders = meter.create_counter("shop.orders", unit="{order}")
    duration = meter.create_histogram("shop.checkout.duration", unit="s")
    logger = logger_provider.get_logger("shop.payments")
    with tracer_provider.get_tracer("shop").start_as_current_span("checkout"):
        orders.add(2, {"customer": "acme"})
        orders.add(1, {"customer": "globex"})
        duration.record(0.25, {"route": "/buy"})
        logger.emit(
            LogRecord(
                severity_number=SeverityNumber.WARN,
                severity_text="WARN",
                body="payment retried",
                attributes={"customer": "acme", "attempt": 2},
            )
        )
        logger.emit(LogRecord(severity_number=SeverityNumber.INFO, body={"paid": 12.5}))
    metrics = reader.get_metrics_data()
    for provider in (tracer_provider, meter_provider, logger_provider):
        provider.shutdown()
    return list(spans.get_finished_spans()), metrics, list(logs.get_finished_logs())


def wait_for(received: Callable[[], list], count: int, timeout: float = 10.0) -> list:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while len(found := received()) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return found


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_sdk_metrics_and_logs_reach_both_exporter_kinds_unchanged(
    protocol, start_service, scripted_grpc, scripted_http, merge_requests
) -> None:  # type: ignore[no-untyped-def]
    grpc_backend = OtlpGrpcExporterConfig(
        f"127.0.0.1:{scripted_grpc.port}", tls=TlsClientConfig(insecure=True)
    )
    http_backend = OtlpHttpExporterConfig(scripted_http.base_url)  # a base URL: /v1/<signal>
    service = start_service(grpc_backend, http_backend)
    spans, metrics, log_records = sdk_telemetry()
    send(protocol, service, spans, metrics, log_records)

    expected = {METRICS: encode_metrics(metrics), LOGS: encode_logs(log_records)}
    for backend in (scripted_grpc, scripted_http):

        def arrived(signal: Signal, backend=backend) -> list[Message]:  # type: ignore[no-untyped-def]
            return [r.request() for r in list(backend.received) if r.signal is signal]

        for signal, request in expected.items():
            got = wait_for(lambda s=signal: arrived(s), 1)
            assert got, f"no {signal.name} reached {type(backend).__name__}"
            assert merge_requests(got) == request, f"{signal.name} changed on the way"
        forwarded = wait_for(lambda: arrived(TRACES), 1)
        trace_ids = {
            span.trace_id
            for request in forwarded
            for rs in request.resource_spans
            for ss in rs.scope_spans
            for span in ss.spans
        }
        assert trace_ids == {spans[0].context.trace_id.to_bytes(16, "big")}
    # the log records are tied to the span they were written in
    record_trace_ids = {r.log_record.trace_id for r in log_records}
    assert record_trace_ids == {spans[0].context.trace_id}
    assert scripted_http.paths() == {"/v1/traces", "/v1/metrics", "/v1/logs"}


def test_metrics_and_logs_pass_beside_the_write_ahead_log_through_disk_queues(
    start_service, scripted_grpc, merge_requests, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    queue = tmp_path / "queue"
    backend = OtlpGrpcExporterConfig(
        f"127.0.0.1:{scripted_grpc.port}",
        tls=TlsClientConfig(insecure=True),
        queue=DiskQueueConfig(str(queue)),
    )
    service = start_service(backend, write_ahead=WriteAheadConfig(str(tmp_path / "wal")))
    spans, metrics, log_records = sdk_telemetry()
    send("grpc", service, spans, metrics, log_records)

    def arrived(signal: Signal) -> list[Message]:
        return [r.request() for r in list(scripted_grpc.received) if r.signal is signal]

    assert merge_requests(wait_for(lambda: arrived(METRICS), 1)) == encode_metrics(metrics)
    assert merge_requests(wait_for(lambda: arrived(LOGS), 1)) == encode_logs(log_records)
    assert wait_for(lambda: arrived(TRACES), 1)
    service.stop()
    # Each signal had a disk queue of its own, and every record in them was settled.
    assert (queue / "metrics").is_dir() and (queue / "logs").is_dir()
    assert sorted(p.name for p in queue.rglob("*.seg")) == []


def test_with_no_exporter_metrics_and_logs_are_accepted_dropped_and_said_once(
    start_service, caplog
) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO, logger="spanledger.processor")
    service = start_service()
    _, metrics, log_records = sdk_telemetry()
    for protocol in ("grpc", "http"):
        send(protocol, service, [], metrics, log_records)

    said = [r.getMessage() for r in caplog.records if "accepted and dropped" in r.getMessage()]
    assert said == [DROPPED_LINE.format("metrics and logs")]
    points = METRICS.count(encode_metrics(metrics))
    assert (points, len(log_records)) == (3, 2)
    assert service.forwarders[METRICS].dropped == 2 * points
    assert service.forwarders[LOGS].dropped == 2 * len(log_records)


@pytest.mark.parametrize(
    ("signals", "line"),
    [
        (["traces"], DROPPED_LINE.format("metrics and logs")),
        (["traces", "metrics"], DROPPED_LINE.format("logs")),
        (["logs", "traces", "metrics"], None),
    ],
)
def test_the_start_line_names_the_signals_no_exporter_takes(
    signals, line, start_service, free_port, caplog
) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO, logger="spanledger.processor")
    start_service(
        OtlpHttpExporterConfig(f"http://127.0.0.1:{free_port}/v1/traces", signals=signals)
    )
    said = [r.getMessage() for r in caplog.records if "accepted and dropped" in r.getMessage()]
    assert said == ([line] if line else [])


APP = """\
import logging

from opentelemetry import metrics, trace

# Beside the SDK's own logging handler, so that the SDK's export errors are printed too.
logging.getLogger().addHandler(logging.StreamHandler())
orders = metrics.get_meter("shop").create_counter("shop.orders", unit="{order}")
with trace.get_tracer("shop").start_as_current_span("checkout"):
    orders.add(2, {"customer": "acme"})
    logging.getLogger("shop.payments").warning("payment retried for %s", "acme")
print("checked out")
"""


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_opentelemetry_instrument_with_only_the_endpoint_set_prints_no_export_error(
    protocol, start_service, scripted_grpc, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    service = start_service(
        OtlpGrpcExporterConfig(f"127.0.0.1:{scripted_grpc.port}", tls=TlsClientConfig(True))
    )
    assert service.grpc is not None and service.http is not None
    port = service.grpc.port if protocol == "grpc" else service.http.port
    app = tmp_path / "shop.py"
    app.write_text(textwrap.dedent(APP), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{port}"
    if protocol != "grpc":  # the distro's default protocol is grpc
        env["OTEL_EXPORTER_OTLP_PROTOCOL"] = protocol
    # Let stdlib logging reach the SDK's log pipeline, so the app sends logs too.
    env["OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED"] = "true"
    instrument = Path(sys.executable).parent / "opentelemetry-instrument"
    run = subprocess.run(
        [str(instrument), sys.executable, str(app)],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "checked out"
    assert "payment retried for acme" in run.stderr  # stderr does show the app's logging
    complaints = [
        line
        for line in run.stderr.splitlines()
        if any(word in line.lower() for word in ("export", "error", "unimplemented", "traceback"))
    ]
    assert complaints == [], run.stderr

    def names(signal: Signal) -> set[str]:
        found = set()
        for received in list(scripted_grpc.received):
            if received.signal is not signal:
                continue
            request = received.request()
            if signal is METRICS:
                found |= {
                    m.name
                    for rm in request.resource_metrics
                    for sm in rm.scope_metrics
                    for m in sm.metrics
                }
            else:
                found |= {
                    r.body.string_value
                    for rl in request.resource_logs
                    for sl in rl.scope_logs
                    for r in sl.log_records
                }
        return found

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (names(METRICS) and names(LOGS)):
        time.sleep(0.05)
    assert "shop.orders" in names(METRICS)
    assert "payment retried for acme" in names(LOGS)
