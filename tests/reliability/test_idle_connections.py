"""Idle connections deny no service: with 300 idle sockets open on each HTTP endpoint, a real
request still gets through within 5 s, and idle or half-sent connections are timed out."""

from __future__ import annotations

import contextlib
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from support.sinks import OtlpHttpBackend

from spanledger.processor.config import Config
from spanledger.processor.exporters import OtlpHttpExporterConfig
from spanledger.processor.receivers import HttpReceiver, HttpReceiverConfig
from spanledger.processor.rollup import RollupConfig
from spanledger.processor.service import Service
from spanledger.processor.sinks.budgets import BudgetsConfig, SpendLimit, StatusConfig
from spanledger.processor.sinks.ledger import LedgerConfig
from spanledger.processor.sinks.metrics import MetricsConfig

IDLE = 300


@contextlib.contextmanager
def idle_sockets(port: int, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connections that never send a byte (those the server refuses are kept too)."""
    opened = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.settimeout(5)
            sock.connect(("127.0.0.1", port))
            opened.append(sock)
        yield opened
    finally:
        for sock in opened:
            sock.close()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[Service, OtlpHttpBackend]]:
    backend = OtlpHttpBackend()
    backend.start()
    config = Config(
        grpc=None,
        http=HttpReceiverConfig("127.0.0.1:0"),  # default limits: 256 connections
        exporters=[OtlpHttpExporterConfig(backend.endpoint)],
        rollup=RollupConfig(trace_idle=0.05, root_grace=0.05),
        ledger=LedgerConfig(path=None),
        metrics=MetricsConfig(prometheus_endpoint="127.0.0.1:0"),
        budgets=BudgetsConfig(
            limits=[SpendLimit(name="all", amount_usd=10)], status=StatusConfig("127.0.0.1:0")
        ),
    )
    running = Service(config)
    running.start()
    try:
        yield running, backend
    finally:
        running.stop()
        backend.stop()


def test_a_real_otlp_request_gets_through_300_idle_connections_within_5_s(
    service: tuple[Service, OtlpHttpBackend],
) -> None:
    running, backend = service
    assert running.http is not None
    recorded = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(recorded))
    with provider.get_tracer("reliability").start_as_current_span("through the crowd"):
        pass
    exporter = OTLPSpanExporter(
        endpoint=f"http://127.0.0.1:{running.http.port}/v1/traces", timeout=10
    )
    try:
        with idle_sockets(running.http.port, IDLE):
            time.sleep(1.2)  # they have been silent for over a second
            started = time.monotonic()
            assert exporter.export(recorded.get_finished_spans()) is SpanExportResult.SUCCESS
            took = time.monotonic() - started
            print(f"OTLP/HTTP export with {IDLE} idle connections open: {took:.3f}s")
            assert took < 5.0
        assert backend.wait_for_distinct(1, timeout=10)
        server = running.http.server
        assert server is not None and server.evicted_connections >= 1
    finally:
        exporter.shutdown()
        provider.shutdown()


@pytest.mark.slow
def test_the_status_and_metrics_endpoints_also_serve_past_300_idle_connections(
    service: tuple[Service, OtlpHttpBackend],
) -> None:
    running, _ = service
    assert running.budgets is not None and running.budgets.server is not None
    assert running.metrics is not None and running.metrics.prometheus_port is not None
    for port, url in (
        (running.budgets.server.port, running.budgets.server.url + "/v1/budget/status"),
        (running.metrics.prometheus_port, f"http://127.0.0.1:{running.metrics.prometheus_port}/"),
    ):
        with idle_sockets(port, IDLE):
            time.sleep(1.2)
            started = time.monotonic()
            with urllib.request.urlopen(url, timeout=5) as response:
                assert response.status == 200
            assert time.monotonic() - started < 5.0


def test_idle_and_half_sent_connections_are_closed_after_the_idle_timeout() -> None:
    class Nothing:
        def consume(self, request: object) -> None:
            return None

    receiver = HttpReceiver(HttpReceiverConfig("127.0.0.1:0", idle_timeout=1.0), Nothing())  # type: ignore[arg-type]
    receiver.start()
    try:
        silent = socket.create_connection(("127.0.0.1", receiver.port), timeout=5)
        partial = socket.create_connection(("127.0.0.1", receiver.port), timeout=5)
        partial.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Ty")  # and no more
        trickle = socket.create_connection(("127.0.0.1", receiver.port), timeout=5)
        trickle.sendall(
            b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
            b"Content-Length: 100\r\n\r\nabc"  # then the body stops
        )
        started = time.monotonic()
        for sock in (silent, partial, trickle):
            answer = b""
            while chunk := sock.recv(4096):
                answer += chunk
            sock.close()
            assert answer == b"" or b" 400 " in answer.split(b"\r\n")[0]
            assert time.monotonic() - started < 3.0  # closed after about a second, not a minute
    finally:
        receiver.stop()
