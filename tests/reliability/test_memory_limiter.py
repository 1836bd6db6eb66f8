"""The memory limiter: above the soft limit both receivers refuse at once, retryably; below it they
accept again; the decoding budget refuses what does not fit before it is decoded.

The receivers, the pipeline and the backend are real and talk over loopback; only the memory
reading is scripted, so that "above the soft limit" happens on cue.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import grpc
import pytest
from google.rpc.error_details_pb2 import RetryInfo
from google.rpc.status_pb2 import Status
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from reliability_support import build_request, post
from support.sinks import OtlpHttpBackend

from spanledger.processor.config import Config, check_config
from spanledger.processor.exporters import OtlpHttpExporterConfig
from spanledger.processor.intake.memory_limiter import MIB, MemoryLimiter, MemoryLimiterConfig
from spanledger.processor.otlp.json import encode_request
from spanledger.processor.receivers import (
    GrpcReceiver,
    GrpcReceiverConfig,
    HttpReceiver,
    HttpReceiverConfig,
)
from spanledger.processor.receivers.grpc import stream_window
from spanledger.processor.rollup import RollupConfig
from spanledger.processor.service import Service
from spanledger.processor.sinks.ledger import LedgerConfig
from spanledger.processor.sinks.metrics import MetricsConfig

EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


class Gauge:
    """A memory reading the test sets: the limiter reads whatever ``mib`` says."""

    def __init__(self, mib: int) -> None:
        self.mib = mib

    def __call__(self) -> int:
        return self.mib * MIB


@pytest.fixture
def running() -> Iterator[tuple[Service, OtlpHttpBackend, Gauge]]:
    """A service on free ports whose limiter (100 MiB, spike 20) reads a scripted gauge."""
    backend = OtlpHttpBackend()
    backend.start()
    config = Config(
        grpc=GrpcReceiverConfig("127.0.0.1:0"),
        http=HttpReceiverConfig("127.0.0.1:0"),
        exporters=[OtlpHttpExporterConfig(backend.endpoint)],
        rollup=RollupConfig(trace_idle=0.05, root_grace=0.05),
        ledger=LedgerConfig(path=None),
        metrics=MetricsConfig(prometheus_endpoint=None),
        memory_limiter=None,
    )
    service = Service(config)
    gauge = Gauge(50)
    service.limiter = MemoryLimiter(
        MemoryLimiterConfig(limit_mib=100, spike_limit_mib=20, check_interval=0.05), read=gauge
    )
    service.start()
    # Service.start builds receivers with its own limiter (off here); hand them the scripted one.
    assert service.http is not None and service.grpc is not None
    service.http.limiter = service.grpc.limiter = service.limiter
    service.limiter.start()
    try:
        yield service, backend, gauge
    finally:
        service.stop()
        service.limiter.stop()
        backend.stop()


def _grpc_call(port: int, body: bytes) -> grpc.RpcError | None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(EXPORT_METHOD, request_serializer=None)
        try:
            call(body, timeout=5)
        except grpc.RpcError as error:
            return error
    return None


def _wait(predicate, timeout: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_above_the_soft_limit_both_receivers_refuse_at_once_and_accept_again_below(
    running: tuple[Service, OtlpHttpBackend, Gauge],
) -> None:
    service, backend, gauge = running
    assert service.http is not None and service.grpc is not None and service.limiter is not None
    url = f"http://127.0.0.1:{service.http.port}/v1/traces"
    body = build_request(range(0, 5), calls=1).SerializeToString()
    assert post(url, body)[0] == 200

    gauge.mib = 85  # soft limit: 100 - 20 = 80
    assert _wait(lambda: service.limiter.refusing)
    started = time.monotonic()
    status, headers, answer = post(url, build_request(range(5, 10), calls=1).SerializeToString())
    assert status == 503 and int(headers["Retry-After"]) >= 1
    assert "memory_limiter" in Status.FromString(answer).message
    grpc_body = build_request(range(10, 15), calls=1).SerializeToString()
    refused = _grpc_call(service.grpc.port, grpc_body)
    assert time.monotonic() - started < 2.0  # refused at once, nothing waits
    assert refused is not None and refused.code() is grpc.StatusCode.UNAVAILABLE
    delay = RetryInfo.FromString(dict(refused.trailing_metadata())["google.rpc.retryinfo-bin"])
    assert delay.retry_delay.seconds >= 1
    assert service.limiter.refusals >= 2

    gauge.mib = 60
    assert _wait(lambda: not service.limiter.refusing)
    assert post(url, build_request(range(5, 10), calls=1).SerializeToString())[0] == 200
    assert _grpc_call(service.grpc.port, grpc_body) is None
    assert backend.wait_for_distinct(
        3 * 5 * 2, timeout=10
    )  # the three accepted requests, 10 spans each


@pytest.mark.slow
def test_sdk_exporters_retry_the_refusal_and_get_through(
    running: tuple[Service, OtlpHttpBackend, Gauge],
) -> None:
    """The SDK's own HTTP and gRPC exporters treat the refusal as retryable."""
    service, backend, gauge = running
    assert service.http is not None and service.grpc is not None and service.limiter is not None
    recorded = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(recorded))
    tracer = provider.get_tracer("reliability")
    for name in ("over http", "over grpc"):
        with tracer.start_as_current_span(name):
            pass
    over_http, over_grpc = recorded.get_finished_spans()
    http_exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{service.http.port}/v1/traces")
    grpc_exporter = GrpcSpanExporter(endpoint=f"127.0.0.1:{service.grpc.port}", insecure=True)
    gauge.mib = 90
    assert _wait(lambda: service.limiter.refusing)
    try:

        def relieve() -> None:
            time.sleep(1.5)
            gauge.mib = 40

        threading.Thread(target=relieve).start()
        started = time.monotonic()
        assert http_exporter.export([over_http]) is SpanExportResult.SUCCESS
        assert grpc_exporter.export([over_grpc]) is SpanExportResult.SUCCESS
        assert time.monotonic() - started >= 1.0  # they were refused first and waited
        assert backend.wait_for_distinct(2, timeout=10)
    finally:
        http_exporter.shutdown()
        grpc_exporter.shutdown()
        provider.shutdown()


def test_the_decoding_budget_refuses_what_does_not_fit_before_decoding_it() -> None:
    """Requests reserve their decoding memory (size times the encoding's expansion) first: one
    that does not fit beside another being decoded is refused (503); one that never could, 413."""
    gauge = Gauge(30)
    limiter = MemoryLimiter(MemoryLimiterConfig(limit_mib=64, spike_limit_mib=8), read=gauge)

    class Recorder:
        def __init__(self) -> None:
            self.requests = 0

        def consume(self, request: object) -> None:
            self.requests += 1

    recorder = Recorder()
    http = HttpReceiver(HttpReceiverConfig("127.0.0.1:0"), recorder, limiter=limiter)  # type: ignore[arg-type]
    http.start()
    url = f"http://127.0.0.1:{http.port}/v1/traces"
    try:
        small = build_request(range(0, 10), calls=1)
        assert post(url, encode_request(small), "application/json")[0] == 200

        # Hold 7 of the 8 MiB budget, as a request being decoded would: a 100 kB JSON body
        # (1.4 MB to decode) no longer fits, and nothing decodes it.
        assert limiter.reserve(7 * MIB)
        body = encode_request(build_request(range(0, 100), calls=1))
        assert 80_000 < len(body) < 2 * MIB // 14
        status, headers, answer = post(url, body, "application/json")
        assert status == 503 and headers["Retry-After"] == "1"
        assert "memory_limiter allows" in json.loads(answer)["message"]
        limiter.release(7 * MIB)
        assert post(url, body, "application/json")[0] == 200

        # Alone, a body may take up to half the hard limit if memory in use leaves room for it.
        big = encode_request(build_request(range(0, 1500), calls=1))
        assert 8 * MIB < len(big) * 14 <= 32 * MIB
        assert post(url, big, "application/json")[0] == 200
        gauge.mib = 45  # 45 MiB in use + what it needs is over the 64 MiB limit: retry later
        assert post(url, big, "application/json")[0] == 503
        # Never: more than half the limit to decode.
        huge = encode_request(build_request(range(0, 2500), calls=1))
        assert len(huge) * 14 > 32 * MIB
        status, _, answer = post(url, huge, "application/json")
        assert status == 413
        assert "send smaller requests" in json.loads(answer)["message"]
        assert recorder.requests == 3
    finally:
        http.stop()


def test_grpc_limits_concurrent_calls_and_reserves_before_decoding() -> None:
    gauge = Gauge(30)
    limiter = MemoryLimiter(MemoryLimiterConfig(limit_mib=64, spike_limit_mib=8), read=gauge)

    class Recorder:
        requests = 0

        def consume(self, request: object) -> None:
            Recorder.requests += 1

    receiver = GrpcReceiver(
        GrpcReceiverConfig("127.0.0.1:0", max_workers=2, max_concurrent_rpcs=4),
        Recorder(),  # type: ignore[arg-type]
        limiter=limiter,
    )
    receiver.start()
    try:
        body = build_request(range(0, 300), calls=1).SerializeToString()
        assert _grpc_call(receiver.port, body) is None
        assert limiter.reserve(8 * MIB - 1000)
        refused = _grpc_call(receiver.port, body)
        assert refused is not None and refused.code() is grpc.StatusCode.UNAVAILABLE
        limiter.release(8 * MIB - 1000)
        assert _grpc_call(receiver.port, body) is None
        assert Recorder.requests == 2
        assert limiter.reserved == 0
    finally:
        receiver.stop()


def test_memory_limiter_config_has_the_collectors_meaning(tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = MemoryLimiterConfig(limit_mib=1000)
    assert config.spike_mib == 250  # 25% when unsaid
    limiter = MemoryLimiter(config, read=Gauge(0))
    assert (limiter.limit, limiter.soft_limit) == (1000 * MIB, 750 * MIB)
    path = tmp_path / "spanledger.yaml"
    path.write_text("memory_limiter: {limit_mib: 256, spike_limit_mib: 300, check_interval: 2s}\n")
    _, problems = check_config(path)
    assert any("spike_limit_mib must be above 0 and below limit_mib (256)" in p for p in problems)
    path.write_text("memory_limiter: {limit_mib: 256, spike_limit_mib: 64, check_interval: 2s}\n")
    loaded, problems = check_config(path)
    assert problems == [] and loaded is not None and loaded.memory_limiter is not None
    assert (loaded.memory_limiter.limit_mib, loaded.memory_limiter.check_interval) == (256, 2.0)
    path.write_text("memory_limiter: null\n")
    loaded, _ = check_config(path)
    assert loaded is not None and loaded.memory_limiter is None
    assert Config().memory_limiter == MemoryLimiterConfig(limit_mib=1024)  # on by default


@pytest.mark.slow
def test_memory_that_stays_high_makes_the_pipeline_forget_remembered_span_ids() -> None:
    """After a burst, a fragmented heap can keep memory above the soft limit with little data
    held: the limiter then has the pipeline forget the older half of the span ids it keeps for
    recognising late duplicates, rather than refusing data for good; it does so already when
    memory comes near the soft limit."""
    from spanledger.processor.pipeline.core import Pipeline
    from spanledger.processor.pipeline.fanout import FanOut
    from spanledger.processor.pricing import PriceBook, PricingConfig

    gauge = Gauge(90)
    clock = [0.0]
    limiter = MemoryLimiter(
        MemoryLimiterConfig(limit_mib=100, spike_limit_mib=20), read=gauge, clock=lambda: clock[0]
    )
    pipeline = Pipeline(
        RollupConfig(trace_idle=0, root_grace=0),
        ["customer"],
        PriceBook(PricingConfig()),
        FanOut([], []),
    )
    pipeline.consume(build_request(range(0, 10), calls=1))
    pipeline.flush_all()
    assert pipeline.stats["remembered_spans"] == 20
    limiter.add_relief(pipeline.relieve_memory)
    clock[0] = 100.0
    assert limiter.check() is True  # the gauge stays high: still refusing
    assert pipeline.stats["remembered_spans"] == 10
    clock[0] = 105.0
    assert limiter.check() is True
    assert pipeline.stats["remembered_spans"] == 10  # at most every 10 seconds
    gauge.mib = 50
    clock[0] = 120.0
    assert limiter.check() is False  # below the soft limit: accepting again
    assert pipeline.stats["remembered_spans"] == 10
    # Near the soft limit (within half the spike limit) the ids are given up before data is.
    gauge.mib = 75  # soft limit 80, relief from 70
    clock[0] = 140.0
    assert limiter.check() is False
    assert pipeline.stats["remembered_spans"] == 6  # the older 2 of the 5 traces forgotten
    pipeline.shutdown(1.0)


def test_grpc_stream_window_bounds_what_waiting_calls_hold() -> None:
    default = MemoryLimiter(MemoryLimiterConfig(limit_mib=1024), read=Gauge(0))
    assert stream_window(default, GrpcReceiverConfig()) == MIB  # 64 calls hold at most 64 MiB
    small = MemoryLimiter(MemoryLimiterConfig(limit_mib=128), read=Gauge(0))
    assert stream_window(small, GrpcReceiverConfig()) == 128 * 1024  # 32 MiB budget / (4 x 64)
    tiny = MemoryLimiter(MemoryLimiterConfig(limit_mib=32), read=Gauge(0))
    assert stream_window(tiny, GrpcReceiverConfig(max_concurrent_rpcs=1000)) == 64 * 1024
    assert stream_window(None, GrpcReceiverConfig()) == MIB
