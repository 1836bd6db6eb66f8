"""The three OTLP signals (traces, metrics, logs) and what differs between them on the wire.

Receivers and exporters handle every signal the same way (decode once, queue, batch, retry);
only the message types, the gRPC service, the HTTP path, the unit a request is counted in and the
name of the partial-success field differ, and those are kept here as data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


@dataclass(frozen=True, eq=False)
class Signal:
    """One OTLP signal: its messages, where it is served, and what its requests are counted in."""

    name: str
    """``traces``, ``metrics`` or ``logs``, as written in configuration files."""
    unit: str
    """What requests are counted in, for logs: ``spans``, ``data points``, ``log records``."""
    request_type: type[Message]
    response_type: type[Message]
    service: str
    """Full name of the gRPC service whose ``Export`` method takes the signal."""
    http_path: str
    """The OTLP/HTTP path of the signal, ``/v1/<name>``."""
    rejected_field: str
    """The field of the response's ``partial_success`` that counts rejected items."""
    count: Callable[[Message], int]
    """How many items (spans, data points, log records) a decoded request carries."""

    @property
    def grpc_method(self) -> str:
        """The full gRPC method path, ``/<service>/Export``."""
        return f"/{self.service}/Export"

    def __repr__(self) -> str:
        return f"Signal({self.name})"


def count_spans(request: ExportTraceServiceRequest) -> int:
    return sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)


def count_data_points(request: ExportMetricsServiceRequest) -> int:
    total = 0
    for resource in request.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                kind = metric.WhichOneof("data")
                if kind is not None:
                    total += len(getattr(metric, kind).data_points)
    return total


def count_log_records(request: ExportLogsServiceRequest) -> int:
    return sum(len(sl.log_records) for rl in request.resource_logs for sl in rl.scope_logs)


TRACES = Signal(
    name="traces",
    unit="spans",
    request_type=ExportTraceServiceRequest,
    response_type=ExportTraceServiceResponse,
    service="opentelemetry.proto.collector.trace.v1.TraceService",
    http_path="/v1/traces",
    rejected_field="rejected_spans",
    count=count_spans,  # type: ignore[arg-type]
)
METRICS = Signal(
    name="metrics",
    unit="data points",
    request_type=ExportMetricsServiceRequest,
    response_type=ExportMetricsServiceResponse,
    service="opentelemetry.proto.collector.metrics.v1.MetricsService",
    http_path="/v1/metrics",
    rejected_field="rejected_data_points",
    count=count_data_points,  # type: ignore[arg-type]
)
LOGS = Signal(
    name="logs",
    unit="log records",
    request_type=ExportLogsServiceRequest,
    response_type=ExportLogsServiceResponse,
    service="opentelemetry.proto.collector.logs.v1.LogsService",
    http_path="/v1/logs",
    rejected_field="rejected_log_records",
    count=count_log_records,  # type: ignore[arg-type]
)
SIGNALS: dict[str, Signal] = {signal.name: signal for signal in (TRACES, METRICS, LOGS)}
"""Every signal by its configuration name, traces first."""
SIGNAL_NAMES = tuple(SIGNALS)
