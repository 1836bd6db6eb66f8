"""A stopped backend fills the exporter queue and the rollup; clients are told to retry.

The processor runs in this process with both receivers; its exporter's queue and its rollup are
small, and the backend is down. The pipeline's backpressure must reach the senders as the OTLP
retry signals (gRPC UNAVAILABLE with RetryInfo, HTTP 503 with Retry-After) while the spans held
stay within the bounds; once the backend returns, everything that was answered OK is delivered.
"""

from __future__ import annotations

import logging
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from google.rpc.error_details_pb2 import RetryInfo
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from reliability_support import build_request, grpc_export, post, send_until_accepted
from support.sinks import OtlpHttpBackend

from spanledger.processor.config import Config, ServiceConfig
from spanledger.processor.exporters import OtlpHttpExporterConfig
from spanledger.processor.intake.write_ahead import WriteAheadConfig
from spanledger.processor.receivers import GrpcReceiverConfig, HttpReceiverConfig
from spanledger.processor.rollup import RollupConfig
from spanledger.processor.service import Service
from spanledger.processor.sinks.ledger import LedgerConfig
from spanledger.processor.sinks.metrics import MetricsConfig

MAX_SPANS = 60


def test_a_full_pipeline_tells_grpc_and_http_senders_to_retry_and_loses_nothing(
    tmp_path: Path,
) -> None:
    backend = OtlpHttpBackend()
    backend.start()
    backend.stop()  # known port, nobody listening
    config = Config(
        grpc=GrpcReceiverConfig("127.0.0.1:0"),
        http=HttpReceiverConfig("127.0.0.1:0"),
        exporters=[
            OtlpHttpExporterConfig(
                backend.endpoint, queue_size=20, initial_backoff=0.05, max_backoff=0.2
            )
        ],
        rollup=RollupConfig(trace_idle=0.05, root_grace=0.05, max_wait=1.0, max_spans=MAX_SPANS),
        ledger=LedgerConfig(path=str(tmp_path / "ledger.db")),
        metrics=MetricsConfig(prometheus_endpoint=None),
    )
    service = Service(config)
    service.start()
    assert service.grpc is not None and service.http is not None and service.pipeline
    http_url = f"http://127.0.0.1:{service.http.port}/v1/traces"
    bodies = [
        build_request(range(n * 5, n * 5 + 5), calls=1).SerializeToString() for n in range(40)
    ]
    accepted: set[int] = set()
    try:
        # Fill: requests are answered while there is room, then pushed back.
        answers: dict[int, tuple[int, dict[str, str]]] = {}
        held_most = 0
        with ThreadPoolExecutor(8) as pool:
            futures = {n: pool.submit(post, http_url, bodies[n]) for n in range(20)}
            deadline = time.monotonic() + 10
            refusal = False
            while not refusal and time.monotonic() < deadline:
                time.sleep(0.02)
                refusal = any(f.done() and f.result()[0] == 503 for f in futures.values())
                # Sampled after a refusal too: the backend is still away, so what made the
                # pipeline refuse is still held (on a busy machine the refusal can come first).
                stats = service.pipeline.stats
                held_most = max(held_most, stats["spans_held"] + stats["spans_in_flight"])
            # A gRPC sender is refused too while the pipeline stays full (answers are quick, so
            # one may slip in as the exporter takes a batch: send until one is refused).
            refused, grpc_sent = None, 20
            while refused is None and grpc_sent < 30:
                refused = grpc_export(service.grpc.port, bodies[grpc_sent])
                grpc_sent += 1
            backend.start()  # the backend comes back: blocked exports complete
            for n, future in futures.items():
                status, headers, _ = future.result(timeout=30)
                answers[n] = (status, headers)

        statuses = [status for status, _ in answers.values()]
        assert 503 in statuses, statuses
        assert set(statuses) <= {200, 503}
        for status, headers in answers.values():
            if status == 503:
                assert int(headers["Retry-After"]) >= 1
        assert refused is not None and refused.code() is grpc.StatusCode.UNAVAILABLE
        trailers = dict(refused.trailing_metadata())
        delay = RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"]).retry_delay
        assert delay.seconds + delay.nanos / 1e9 > 0
        # Spans flushed early to make room stay in memory until exported: the bound is about
        # twice max_spans (docs/RELIABILITY.md), never growing with the number of requests.
        assert 0 < held_most <= 2 * MAX_SPANS

        # Senders retry what was refused, as OTLP clients do; everything arrives once.
        accepted = {n for n, (status, _) in answers.items() if status == 200}
        for n in range(grpc_sent):
            if n not in accepted:
                send_until_accepted(http_url, bodies[n], timeout=20)
                accepted.add(n)
        assert backend.wait_for_distinct(len(accepted) * 10, timeout=15)
        assert backend.distinct() == grpc_sent * 10
        assert service.pipeline.stats["backpressure"] >= 1
    finally:
        service.stop()
        backend.stop()


def test_the_http_receiver_bounds_the_request_bytes_it_holds_across_connections(
    tmp_path: Path,
) -> None:
    """A slow sender holding a large body makes others wait (503) instead of adding memory."""
    backend = OtlpHttpBackend()
    backend.start()
    config = Config(
        grpc=None,
        http=HttpReceiverConfig(
            "127.0.0.1:0", max_request_bytes=1024 * 1024, max_inflight_bytes=200_000
        ),
        exporters=[OtlpHttpExporterConfig(backend.endpoint)],
        rollup=RollupConfig(trace_idle=0.05, root_grace=0.05),
        ledger=LedgerConfig(path=None),
        metrics=MetricsConfig(prometheus_endpoint=None),
    )
    service = Service(config)
    service.start()
    assert service.http is not None
    url = f"http://127.0.0.1:{service.http.port}/v1/traces"
    slow_body = build_request(range(1000, 1400), calls=1).SerializeToString()
    assert 150_000 < len(slow_body) < 200_000
    small = build_request(range(2000, 2100), calls=1).SerializeToString()
    try:
        with socket.create_connection(("127.0.0.1", service.http.port)) as slow:
            slow.sendall(
                b"POST /v1/traces HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/x-protobuf\r\n"
                + f"Content-Length: {len(slow_body)}\r\n\r\n".encode()
                + slow_body[:1000]
            )
            time.sleep(0.3)  # the receiver has read the headers and holds the reservation
            status, headers, _ = post(url, small)
            assert status == 503 and headers["Retry-After"] == "1"
            slow.sendall(slow_body[1000:])
            answer = slow.recv(1024)
            assert answer.startswith(b"HTTP/1.1 200")
        assert post(url, small)[0] == 200  # the budget was given back
        assert backend.wait_for_distinct(500 * 2, timeout=10)
    finally:
        service.stop()
        backend.stop()


@pytest.mark.slow
def test_the_opentelemetry_sdk_exporter_waits_out_the_retry_after_and_gets_through(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The write-ahead log is full while the first trace waits for its rollup: the SDK's own
    OTLP/HTTP exporter is answered 503, waits the second it is told, and is accepted."""
    backend = OtlpHttpBackend()
    backend.start()
    config = Config(
        grpc=None,
        http=HttpReceiverConfig("127.0.0.1:0"),
        exporters=[OtlpHttpExporterConfig(backend.endpoint)],
        rollup=RollupConfig(trace_idle=0.5, root_grace=0.5),
        ledger=LedgerConfig(path=None),
        metrics=MetricsConfig(prometheus_endpoint=None),
        service=ServiceConfig(write_ahead=WriteAheadConfig(str(tmp_path / "wal"), max_bytes=1)),
    )
    service = Service(config)
    service.start()
    assert service.http is not None
    recorded = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(recorded))
    tracer = provider.get_tracer("reliability")
    for name in ("first", "second"):
        with tracer.start_as_current_span(name), tracer.start_as_current_span(f"{name} child"):
            pass
    first, second = recorded.get_finished_spans()[:2], recorded.get_finished_spans()[2:]
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{service.http.port}/v1/traces")
    try:
        assert exporter.export(first) is SpanExportResult.SUCCESS
        with caplog.at_level(logging.WARNING):
            started = time.monotonic()
            assert exporter.export(second) is SpanExportResult.SUCCESS
            waited = time.monotonic() - started
        assert "retrying in 1.00s" in caplog.text  # the Retry-After the processor sent
        assert 0.9 < waited < 5.0
        assert backend.wait_for_distinct(4, timeout=10)
    finally:
        exporter.shutdown()
        provider.shutdown()
        service.stop()
        backend.stop()
