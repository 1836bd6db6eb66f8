"""Running processor replicas for the end-to-end tests, and what they hand downstream."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from spanledger.processor.config import Config
from spanledger.processor.ledger import LedgerConfig
from spanledger.processor.metrics import MetricsConfig
from spanledger.processor.model import CountedCall
from spanledger.processor.receivers import GrpcReceiverConfig
from spanledger.processor.rollup import RollupConfig
from spanledger.processor.service import Service


def attribute_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [attribute_value(item) for item in value.array_value.values]
    return getattr(value, kind) if kind else None


class ForwardedSpans:
    """A span exporter keeping every span the processor forwards, by span id, with attributes."""

    def __init__(self) -> None:
        self.spans: dict[bytes, tuple[bytes, str, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def export(self, request: ExportTraceServiceRequest) -> None:
        with self._lock:
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        attributes = {a.key: attribute_value(a.value) for a in span.attributes}
                        self.spans[span.span_id] = (span.trace_id, span.name, attributes)

    def shutdown(self, timeout: float) -> None:
        return None


class RecordedCalls:
    """A call sink keeping every counted call."""

    def __init__(self) -> None:
        self.calls: list[CountedCall] = []
        self._lock = threading.Lock()

    def record(self, calls: Sequence[CountedCall]) -> None:
        with self._lock:
            self.calls.extend(calls)

    def shutdown(self, timeout: float) -> None:
        return None


class Replica:
    """One processor on a free gRPC port, recording what it forwards and counts."""

    def __init__(self, config: Config) -> None:
        self.forwarded = ForwardedSpans()
        self.recorded = RecordedCalls()
        self.service = Service(
            config, extra_exporters=[self.forwarded], extra_sinks=[self.recorded]
        )

    @property
    def grpc_endpoint(self) -> str:
        assert self.service.grpc is not None
        return f"127.0.0.1:{self.service.grpc.port}"

    def send(self, requests: Sequence[ExportTraceServiceRequest]) -> None:
        """Send each request over OTLP/gRPC, as a Collector's exporter would."""
        with grpc.insecure_channel(self.grpc_endpoint) as channel:
            stub = TraceServiceStub(channel)
            for request in requests:
                response = stub.Export(request, timeout=10)
                assert not response.partial_success.rejected_spans, response


def replica_config(ledger: Path | LedgerConfig) -> Config:
    """A processor listening on a free port (gRPC only), no Prometheus, writing to ``ledger``
    (an SQLite file of its own, or a ledger configuration such as a shared database)."""
    config = Config()
    config.grpc = GrpcReceiverConfig(endpoint="127.0.0.1:0")
    config.http = None
    config.metrics = MetricsConfig(prometheus_endpoint=None)
    config.ledger = ledger if isinstance(ledger, LedgerConfig) else LedgerConfig(path=str(ledger))
    config.rollup = replace(RollupConfig(), trace_idle=0.3, root_grace=0.2)
    return config


@contextmanager
def running(replicas: Sequence[Replica]) -> Iterator[Sequence[Replica]]:
    """Start the replicas; on the way out stop them, which flushes every waiting trace."""
    started: list[Replica] = []
    try:
        for replica in replicas:
            replica.service.start()
            started.append(replica)
        yield replicas
    finally:
        for replica in started:
            replica.service.stop()
