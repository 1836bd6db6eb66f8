"""The fan-out behind the pipeline, and who shuts exporters and sinks down: their builder."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from support.otlp import Service as App
from support.otlp import chat, request, span
from support.sinks import TraceRecorder

from spanledger.processor.components import Backpressure
from spanledger.processor.config import load_config
from spanledger.processor.otlp.wire import Origin
from spanledger.processor.pipeline.fanout import FanOut
from spanledger.processor.rollup.buffer import HeldSpan
from spanledger.processor.service import Service

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


class Journaling:
    """An exporter or a sink that notes each thing done to it in a shared ``events`` list."""

    def __init__(self, events: list[str], name: str) -> None:
        self.events = events
        self.name = name

    def export(self, request) -> None:
        self.events.append(f"{self.name} export")

    def record(self, calls) -> None:
        self.events.append(f"{self.name} record")

    def shutdown(self, timeout: float) -> None:
        self.events.append(f"{self.name} shutdown")


def test_the_service_flushes_then_shuts_exporters_then_sinks_down(tmp_path: Path) -> None:
    path = tmp_path / "spanledger.yaml"
    path.write_text(
        "receivers: {otlp: {grpc: {endpoint: 127.0.0.1:0}, http: null}}\n"
        "rollup: {trace_idle: 60s, root_grace: 60s}\n"  # held until the service stops
        "metrics: {prometheus: null}\n"
        "ledger: {path: ledger.db}\n"
        "memory_limiter: null\n",
        encoding="utf-8",
    )
    events: list[str] = []
    service = Service(
        load_config(path),
        extra_exporters=[Journaling(events, "exporter")],
        extra_sinks=[Journaling(events, "sink")],
    )
    service.start()
    try:
        body = request(
            (App("app"), [span(1, 1, None, "run"), chat(1, 2, 1, "gpt-4o-mini", 1000, 200)])
        ).SerializeToString()
        with grpc.insecure_channel(f"127.0.0.1:{service.grpc.port}") as channel:
            channel.unary_unary(
                EXPORT, response_deserializer=ExportTraceServiceResponse.FromString
            )(body, timeout=10)
        assert events == []
    finally:
        service.stop()
    assert events == ["exporter export", "sink record", "exporter shutdown", "sink shutdown"]


class AlwaysFull(TraceRecorder):
    def export(self, request) -> None:
        raise Backpressure("queue full", retry_after=0.05)


def test_a_full_exporter_is_given_up_on_at_the_shutdown_deadline() -> None:
    full, healthy = AlwaysFull(), TraceRecorder()
    fanout = FanOut([full, healthy], [])
    assert fanout.export_patience == 300.0
    fanout.give_up_by(time.monotonic() + 0.3)
    held = HeldSpan(
        Origin(b"", "", b"", ""), span(2, 1, None, "run").SerializeToString(), b"", False
    )
    started = time.monotonic()
    fanout.deliver([held], [])
    assert time.monotonic() - started < 2.0
    assert fanout.stats["export_errors"] == 1
    assert fanout.stats["export_waits"] >= 1
    assert len(healthy.spans()) == 1
