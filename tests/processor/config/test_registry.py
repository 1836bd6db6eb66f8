"""A new exporter kind takes one class and one registration: the YAML, check-config and the
running service all take it from the registry."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from support.otlp import Service as App
from support.otlp import attributes_of, chat, request, span, spans_in
from support.waiting import wait_for

from spanledger import semconv
from spanledger.processor.cli import main
from spanledger.processor.config import check_config, load_config
from spanledger.processor.otlp.signals import TRACES, Signal
from spanledger.processor.registry import EXPORTER, ComponentKind, registry
from spanledger.processor.service import Service

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@dataclass
class ListExporterConfig:
    """Keep the spans in memory under ``name``."""

    name: str = ""
    signals: list[str] = field(default_factory=lambda: ["traces"])

    def problems(self) -> list[str]:
        return [] if self.name else ["name is required"]


class ListExporter:
    """Records what it is given, and when it is shut down, in ``BUILT``."""

    BUILT: dict[str, ListExporter] = {}

    def __init__(self, config: ListExporterConfig, signal: Signal = TRACES) -> None:
        self.signal = signal
        self.requests: list[ExportTraceServiceRequest] = []
        self.shutdowns: list[float] = []
        ListExporter.BUILT[config.name] = self

    def export(self, request: ExportTraceServiceRequest) -> None:
        self.requests.append(request)

    def shutdown(self, timeout: float) -> None:
        self.shutdowns.append(timeout)


@pytest.fixture
def in_memory_kind() -> Iterator[ComponentKind]:
    kind = registry().register(
        ComponentKind(EXPORTER, "in_memory", ListExporterConfig, ListExporter)
    )
    ListExporter.BUILT.clear()
    try:
        yield kind
    finally:
        registry().unregister(EXPORTER, "in_memory")


def write(tmp_path: Path, exporters: str) -> Path:
    path = tmp_path / "spanledger.yaml"
    text = f"""
        receivers: {{otlp: {{grpc: {{endpoint: 127.0.0.1:0}}, http: null}}}}
        exporters: {exporters}
        rollup: {{trace_idle: 100ms, root_grace: 50ms}}
        metrics: {{prometheus: null}}
        ledger: {{path: ledger.db}}
        memory_limiter: null
    """
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_check_config_validates_a_registered_exporter(in_memory_kind, tmp_path, capsys):
    good = write(tmp_path, "[{in_memory: {name: kept}}, {otlp_grpc: {endpoint: 127.0.0.1:1}}]")
    assert main(["check-config", str(good)]) == 0
    assert "OK (exporters: ListExporter, OtlpGrpcExporter;" in capsys.readouterr().out

    nameless = write(tmp_path, "[{in_memory: {}}]")
    assert main(["check-config", str(nameless)]) == 1
    assert "exporters[0].in_memory (line 3): name is required" in capsys.readouterr().err

    _, problems = check_config(write(tmp_path, "[{in_memory: {name: a, colour: blue}}]"))
    assert any("in_memory.colour" in p and "unknown key" in p for p in problems), problems


def test_an_unregistered_kind_is_refused_with_the_registered_ones_listed(tmp_path):
    _, problems = check_config(write(tmp_path, "[{in_memory: {name: kept}}]"))
    assert problems == [
        f"{tmp_path / 'spanledger.yaml'}: exporters[0].in_memory (line 3): unknown exporter "
        "(known: otlp_http, otlp_grpc)"
    ]


def test_a_kind_is_registered_once():
    with pytest.raises(ValueError, match="already registered"):
        registry().register(ComponentKind(EXPORTER, "otlp_http", ListExporterConfig, ListExporter))


def test_the_service_builds_uses_and_shuts_down_a_registered_exporter(in_memory_kind, tmp_path):
    service = Service(load_config(write(tmp_path, "[{in_memory: {name: kept}}]")))
    service.start()
    try:
        exporter = ListExporter.BUILT["kept"]
        assert exporter.signal == TRACES
        body = request(
            (App("app"), [span(1, 1, None, "run"), chat(1, 2, 1, "gpt-4o-mini", 1000, 200)])
        ).SerializeToString()
        with grpc.insecure_channel(f"127.0.0.1:{service.grpc.port}") as channel:
            export = channel.unary_unary(
                EXPORT, response_deserializer=ExportTraceServiceResponse.FromString
            )
            export(body, timeout=10)
        wait_for(lambda: exporter.requests, "the spans at the registered exporter")
        forwarded = [s for r in exporter.requests for s in spans_in(r)]
        call = next(s for s in forwarded if s.name.startswith("chat"))
        assert attributes_of(call.attributes)[semconv.COST_STATUS] == semconv.STATUS_PRICED
        assert exporter.shutdowns == []
    finally:
        service.stop()
    assert len(exporter.shutdowns) == 1
