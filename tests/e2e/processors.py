"""Running processor replicas for the end-to-end tests, and what they hand downstream."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
from support.sinks import RecordingSink, TraceRecorder

from spanledger.processor.config import Config
from spanledger.processor.receivers import GrpcReceiverConfig
from spanledger.processor.rollup import RollupConfig
from spanledger.processor.service import Service
from spanledger.processor.sinks.ledger import LedgerConfig
from spanledger.processor.sinks.metrics import MetricsConfig


class Replica:
    """One processor on a free gRPC port, recording what it forwards and counts."""

    def __init__(self, config: Config) -> None:
        self.forwarded = TraceRecorder()
        self.recorded = RecordingSink()
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
