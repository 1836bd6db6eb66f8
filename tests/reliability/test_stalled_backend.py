"""A backend that stops answering never makes a sender wait: every request is answered within
5 s (accepted, or refused as retryable at once), and every span answered OK reaches the backend
once it answers again."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc
import pytest
from reliability_support import build_request, post
from support.sinks import OtlpHttpBackend

from spanledger.processor.config import Config
from spanledger.processor.exporters import OtlpHttpExporterConfig
from spanledger.processor.receivers import GrpcReceiverConfig, HttpReceiverConfig
from spanledger.processor.rollup import RollupConfig
from spanledger.processor.service import Service
from spanledger.processor.sinks.ledger import LedgerConfig
from spanledger.processor.sinks.metrics import MetricsConfig

EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
SENDING = 6.0
STALL = (1.0, 5.0)
"""The backend holds every export from 1 s to 5 s after sending starts."""


@pytest.mark.slow
def test_a_stalled_backend_never_holds_a_sender_and_loses_nothing(tmp_path: Path) -> None:
    backend = OtlpHttpBackend()
    backend.start()
    config = Config(
        grpc=GrpcReceiverConfig("127.0.0.1:0"),
        http=HttpReceiverConfig("127.0.0.1:0"),
        exporters=[OtlpHttpExporterConfig(backend.endpoint, timeout=2.0, queue_size=2000)],
        rollup=RollupConfig(trace_idle=0.1, root_grace=0.1, max_spans=6000),
        ledger=LedgerConfig(path=str(tmp_path / "ledger.db")),
        metrics=MetricsConfig(prometheus_endpoint=None),
    )
    service = Service(config)
    service.start()
    assert service.http is not None and service.grpc is not None
    http_url = f"http://127.0.0.1:{service.http.port}/v1/traces"
    lock = threading.Lock()
    accepted: list[int] = []
    refused = [0]
    longest = [0.0]
    started = time.monotonic()

    def answered(seconds: float) -> None:
        with lock:
            longest[0] = max(longest[0], seconds)

    def http_sender(first: int) -> None:
        number = first
        while time.monotonic() - started < SENDING:
            body = build_request(range(number * 20, number * 20 + 20), calls=2).SerializeToString()
            sent = time.monotonic()
            status, headers, _ = post(http_url, body)
            answered(time.monotonic() - sent)
            if status == 200:
                with lock:
                    accepted.append(number)
                number += 1
            else:
                assert status == 503, status
                with lock:
                    refused[0] += 1
                time.sleep(min(float(headers.get("Retry-After", "1")), 1.0))

    def grpc_sender(first: int) -> None:
        number = first
        with grpc.insecure_channel(f"127.0.0.1:{service.grpc.port}") as channel:
            call = channel.unary_unary(EXPORT_METHOD, request_serializer=None)
            while time.monotonic() - started < SENDING:
                body = build_request(range(number * 20, number * 20 + 20), calls=2)
                sent = time.monotonic()
                try:
                    call(body.SerializeToString(), timeout=30)
                except grpc.RpcError as error:
                    answered(time.monotonic() - sent)
                    assert error.code() is grpc.StatusCode.UNAVAILABLE, error
                    with lock:
                        refused[0] += 1
                    time.sleep(1.0)
                    continue
                answered(time.monotonic() - sent)
                with lock:
                    accepted.append(number)
                number += 1

    senders = [
        threading.Thread(target=http_sender, args=(0,)),
        threading.Thread(target=http_sender, args=(100_000,)),
        threading.Thread(target=grpc_sender, args=(200_000,)),
    ]
    try:
        for sender in senders:
            sender.start()
        while time.monotonic() - started < SENDING:
            elapsed = time.monotonic() - started
            if STALL[0] <= elapsed < STALL[1]:
                backend.stalled.set()
            else:
                backend.stalled.clear()
            time.sleep(0.05)
        backend.stalled.clear()
        for sender in senders:
            sender.join(30)
        print(f"accepted {len(accepted)}, refused {refused[0]}, longest answer {longest[0]:.2f}s")
        assert longest[0] < 5.0
        assert refused[0] > 0  # the stall filled the pipeline and senders were pushed back
        expected = len(accepted) * 20 * 3
        assert backend.wait_for_distinct(expected, timeout=30), (backend.distinct(), expected)
        assert backend.distinct() == expected  # every acknowledged span, nothing else
    finally:
        backend.stalled.clear()
        service.stop()
        backend.stop()
