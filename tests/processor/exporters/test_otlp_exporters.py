"""OTLP exporters against real receiving ends: retries, throttling, batching, queue, drain, TLS."""

from __future__ import annotations

import time

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from support.otlp import spans_in
from support.ports import free_port
from support.waiting import wait_for

from spanledger.processor.components import Backpressure, ConsumeResult, PermanentError
from spanledger.processor.exporters import (
    ExporterStats,
    OtlpGrpcExporter,
    OtlpGrpcExporterConfig,
    OtlpHttpExporter,
    OtlpHttpExporterConfig,
    TlsClientConfig,
)
from spanledger.processor.receivers import (
    GrpcReceiver,
    GrpcReceiverConfig,
    HttpReceiver,
    HttpReceiverConfig,
    TlsServerConfig,
)

FAST = {"initial_backoff": 0.02, "max_backoff": 0.1, "timeout": 5.0}
POLL = 0.01


def span_ids(requests: list[ExportTraceServiceRequest]) -> list[bytes]:
    return [span.span_id for request in requests for span in spans_in(request)]


# -- OTLP/HTTP ---------------------------------------------------------------------------------


def test_http_delivers_gzip_with_custom_headers(scripted_http, make_request) -> None:  # type: ignore[no-untyped-def]
    exporter = OtlpHttpExporter(
        OtlpHttpExporterConfig(
            endpoint=scripted_http.url,
            headers={"authorization": "Basic cGs6c2s=", "x-tenant": "acme"},
        )
    )
    exporter.export(make_request(spans=3))
    exporter.shutdown(5)
    [received] = scripted_http.received
    assert received.headers["authorization"] == "Basic cGs6c2s="
    assert received.headers["x-tenant"] == "acme"
    assert received.headers["content-encoding"] == "gzip"
    assert received.headers["content-type"] == "application/x-protobuf"
    assert received.request() == make_request(spans=3)
    assert exporter.stats == ExporterStats(sent=3)


def test_http_to_the_real_receiver_without_compression(consumer, make_request) -> None:  # type: ignore[no-untyped-def]
    receiver = HttpReceiver(HttpReceiverConfig(endpoint="127.0.0.1:0"), consumer)
    receiver.start()
    try:
        exporter = OtlpHttpExporter(
            OtlpHttpExporterConfig(
                endpoint=f"http://127.0.0.1:{receiver.port}/v1/traces", compression=None
            )
        )
        for seed in range(1, 6):
            exporter.export(make_request(spans=2, seed=seed))
        exporter.shutdown(5)
    finally:
        receiver.stop(0.5)
    assert sorted(span_ids(consumer.requests)) == sorted(
        span_ids([make_request(spans=2, seed=seed) for seed in range(1, 6)])
    )
    assert exporter.stats.sent == 10


def test_http_503_with_retry_after_is_retried_after_that_delay(scripted_http, make_request) -> None:  # type: ignore[no-untyped-def]
    scripted_http.script = [(503, {"Retry-After": "1"})]
    exporter = OtlpHttpExporter(OtlpHttpExporterConfig(endpoint=scripted_http.url, **FAST))
    exporter.export(make_request(spans=2))
    first, second = scripted_http.wait_for(2)
    exporter.shutdown(5)
    assert second.at - first.at >= 0.95
    assert second.request() == first.request() == make_request(spans=2)
    assert exporter.stats == ExporterStats(sent=2, retried=1)


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_http_retryable_statuses_back_off_and_retry(scripted_http, make_request, status) -> None:  # type: ignore[no-untyped-def]
    scripted_http.script = [(status, {}), (status, {})]
    exporter = OtlpHttpExporter(OtlpHttpExporterConfig(endpoint=scripted_http.url, **FAST))
    exporter.export(make_request())
    scripted_http.wait_for(3)
    exporter.shutdown(5)
    assert len(scripted_http.received) == 3
    assert exporter.stats == ExporterStats(sent=3, retried=2)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 500])
def test_http_other_errors_are_not_retried(scripted_http, make_request, status) -> None:  # type: ignore[no-untyped-def]
    scripted_http.script = [(status, {})]
    exporter = OtlpHttpExporter(OtlpHttpExporterConfig(endpoint=scripted_http.url, **FAST))
    exporter.export(make_request(spans=4))
    scripted_http.wait_for(1)
    exporter.shutdown(5)
    assert len(scripted_http.received) == 1
    assert exporter.stats == ExporterStats(failed=4)


def test_http_gives_up_after_max_elapsed(scripted_http, make_request) -> None:  # type: ignore[no-untyped-def]
    scripted_http.script = [(503, {})] * 1000
    exporter = OtlpHttpExporter(
        OtlpHttpExporterConfig(endpoint=scripted_http.url, max_elapsed=0.3, **FAST)
    )
    exporter.export(make_request(spans=2))
    wait_for(lambda: exporter.stats.dropped == 2, "dropped == 2", timeout=5, interval=POLL)
    attempts = len(scripted_http.received)
    exporter.shutdown(1)
    assert 2 <= attempts < 40
    assert exporter.stats.sent == 0
    assert exporter.stats.retried == attempts - 1


def test_http_connection_refused_is_retried_until_the_receiver_is_up(  # type: ignore[no-untyped-def]
    consumer, make_request
) -> None:
    port = free_port()
    exporter = OtlpHttpExporter(
        OtlpHttpExporterConfig(endpoint=f"http://127.0.0.1:{port}/v1/traces", **FAST)
    )
    exporter.export(make_request(spans=2))
    wait_for(lambda: exporter.stats.retried >= 2, "retried >= 2", timeout=5, interval=POLL)
    receiver = HttpReceiver(HttpReceiverConfig(endpoint=f"127.0.0.1:{port}"), consumer)
    receiver.start()
    try:
        consumer.wait_for_spans(2)
        exporter.shutdown(5)
    finally:
        receiver.stop(0.5)
    assert consumer.requests == [make_request(spans=2)]
    assert exporter.stats.sent == 2
    assert exporter.stats.dropped == 0


def test_http_partial_success_is_counted_not_retried(http_receiver, consumer, make_request) -> None:  # type: ignore[no-untyped-def]
    consumer.behaviour = lambda request: ConsumeResult(rejected_spans=1, error_message="no price")
    exporter = OtlpHttpExporter(
        OtlpHttpExporterConfig(endpoint=f"http://127.0.0.1:{http_receiver.port}/v1/traces")
    )
    exporter.export(make_request(spans=3))
    exporter.shutdown(5)
    assert len(consumer.requests) == 1
    assert exporter.stats == ExporterStats(sent=2, failed=1)


def test_http_server_closing_idle_connections_costs_no_retry(  # type: ignore[no-untyped-def]
    http_receiver_factory, consumer, make_request
) -> None:
    receiver = http_receiver_factory(idle_timeout=0.2)
    exporter = OtlpHttpExporter(
        OtlpHttpExporterConfig(endpoint=f"http://127.0.0.1:{receiver.port}/v1/traces", **FAST)
    )
    exporter.export(make_request(seed=1))
    wait_for(lambda: exporter.stats.sent == 3, "sent == 3", interval=POLL)
    time.sleep(0.5)  # the receiver closes the idle keep-alive connection meanwhile
    exporter.export(make_request(seed=2))
    exporter.shutdown(5)
    assert exporter.stats == ExporterStats(sent=6)


def test_http_batches_merge_queued_requests(scripted_http, make_request) -> None:  # type: ignore[no-untyped-def]
    scripted_http.hold.clear()  # the first export waits, so the rest pile up in the queue
    exporter = OtlpHttpExporter(
        OtlpHttpExporterConfig(endpoint=scripted_http.url, max_batch_spans=9, **FAST)
    )
    sent = [make_request(spans=3, seed=seed) for seed in range(1, 12)]
    exporter.export(sent[0])
    wait_for(
        lambda: exporter.stats.queued == 0, "queued == 0", interval=POLL
    )  # the worker took the first one
    for request in sent[1:]:
        exporter.export(request)
    scripted_http.hold.set()
    exporter.shutdown(5)
    counts = [received.span_count() for received in scripted_http.received]
    assert counts == [3, 9, 9, 9, 3]
    delivered = [received.request() for received in scripted_http.received]
    assert span_ids(delivered) == span_ids(sent)
    assert exporter.stats == ExporterStats(sent=33)


def test_http_batches_respect_the_byte_limit(scripted_http, make_request) -> None:  # type: ignore[no-untyped-def]
    sent = [make_request(spans=3, seed=seed) for seed in range(1, 8)]
    size = len(sent[0].SerializeToString())
    scripted_http.hold.clear()
    exporter = OtlpHttpExporter(
        OtlpHttpExporterConfig(
            endpoint=scripted_http.url, max_batch_bytes=2 * size + size // 2, **FAST
        )
    )
    exporter.export(sent[0])
    wait_for(lambda: exporter.stats.queued == 0, "queued == 0", interval=POLL)
    for request in sent[1:]:
        exporter.export(request)
    scripted_http.hold.set()
    exporter.shutdown(5)
    assert [r.span_count() for r in scripted_http.received] == [3, 6, 6, 6]
    assert span_ids([r.request() for r in scripted_http.received]) == span_ids(sent)


def test_http_full_queue_raises_backpressure(scripted_http, make_request) -> None:  # type: ignore[no-untyped-def]
    scripted_http.hold.clear()
    exporter = OtlpHttpExporter(
        OtlpHttpExporterConfig(endpoint=scripted_http.url, queue_size=6, **FAST)
    )
    exporter.export(make_request(spans=3, seed=1))
    wait_for(lambda: exporter.stats.queued == 0, "queued == 0", interval=POLL)
    exporter.export(make_request(spans=3, seed=2))
    exporter.export(make_request(spans=3, seed=3))
    with pytest.raises(Backpressure, match="queue is full"):
        exporter.export(make_request(spans=3, seed=4))
    scripted_http.hold.set()
    exporter.shutdown(5)
    assert exporter.stats == ExporterStats(sent=9)


def test_shutdown_drains_the_queue(http_receiver, consumer, make_request) -> None:  # type: ignore[no-untyped-def]
    exporter = OtlpHttpExporter(
        OtlpHttpExporterConfig(
            endpoint=f"http://127.0.0.1:{http_receiver.port}/v1/traces", max_batch_spans=10
        )
    )
    for seed in range(1, 201):
        if seed % 2:
            exporter.export(make_request(spans=5, seed=seed))
        else:
            exporter.export_serialized(make_request(spans=5, seed=seed).SerializeToString(), 5)
    exporter.shutdown(10)
    assert len(consumer.spans()) == 1000
    assert len({span.span_id for span in consumer.spans()}) == 1000
    assert exporter.stats == ExporterStats(sent=1000)
    exporter.export(make_request(spans=5))  # after shutdown: counted, not sent
    assert exporter.stats.dropped == 5


def test_shutdown_keeps_its_deadline_when_the_destination_is_down(make_request) -> None:  # type: ignore[no-untyped-def]
    exporter = OtlpHttpExporter(
        OtlpHttpExporterConfig(endpoint=f"http://127.0.0.1:{free_port()}/v1/traces", **FAST)
    )
    for seed in range(1, 4):
        exporter.export(make_request(spans=2, seed=seed))
    started = time.monotonic()
    exporter.shutdown(0.5)
    assert time.monotonic() - started < 2.0
    assert exporter.stats.dropped == 6
    assert exporter.stats.sent == 0


def test_http_tls_with_client_certificate(
    http_receiver_factory, consumer, certificates, make_request
) -> None:  # type: ignore[no-untyped-def]
    receiver = http_receiver_factory(
        tls=TlsServerConfig(
            cert_file=str(certificates.server_cert),
            key_file=str(certificates.server_key),
            client_ca_file=str(certificates.ca),
        )
    )
    tls = TlsClientConfig(
        ca_file=str(certificates.ca),
        cert_file=str(certificates.client_cert),
        key_file=str(certificates.client_key),
    )
    exporter = OtlpHttpExporter(
        OtlpHttpExporterConfig(endpoint=f"https://localhost:{receiver.port}/v1/traces", tls=tls)
    )
    exporter.export(make_request(spans=2))
    exporter.shutdown(5)
    assert consumer.requests == [make_request(spans=2)]
    assert exporter.stats.sent == 2


@pytest.mark.parametrize("kind", ["http", "grpc"])
def test_tls_server_name_is_checked(  # type: ignore[no-untyped-def]
    request, consumer, certificates, make_request, kind
) -> None:
    server_tls = TlsServerConfig(
        cert_file=str(certificates.server_cert), key_file=str(certificates.server_key)
    )
    receiver = request.getfixturevalue(f"{kind}_receiver_factory")(tls=server_tls)

    def exporter(server_name: str) -> OtlpHttpExporter | OtlpGrpcExporter:
        tls = TlsClientConfig(ca_file=str(certificates.ca), server_name=server_name)
        settings = {**FAST, "tls": tls, "max_elapsed": 0.3}
        if kind == "http":
            url = f"https://127.0.0.1:{receiver.port}/v1/traces"
            return OtlpHttpExporter(OtlpHttpExporterConfig(url, **settings))  # type: ignore[arg-type]
        return OtlpGrpcExporter(OtlpGrpcExporterConfig(f"127.0.0.1:{receiver.port}", **settings))  # type: ignore[arg-type]

    wrong = exporter("collector.example")  # not a name in the server's certificate
    wrong.export(make_request(spans=2))
    wait_for(lambda: wrong.stats.dropped == 2, "dropped == 2", timeout=5, interval=POLL)
    wrong.shutdown(1)
    assert consumer.requests == []

    right = exporter("localhost")
    right.export(make_request(spans=2))
    right.shutdown(5)
    assert right.stats == ExporterStats(sent=2)
    assert consumer.requests == [make_request(spans=2)]


# -- OTLP/gRPC ---------------------------------------------------------------------------------


def _grpc_exporter(port: int, **settings: object) -> OtlpGrpcExporter:
    options = {**FAST, "tls": TlsClientConfig(insecure=True), **settings}
    return OtlpGrpcExporter(OtlpGrpcExporterConfig(endpoint=f"127.0.0.1:{port}", **options))  # type: ignore[arg-type]


def test_grpc_delivers_with_gzip_and_headers(grpc_receiver_factory, consumer, make_request) -> None:  # type: ignore[no-untyped-def]
    receiver = grpc_receiver_factory(bearer_token="s3cret")
    exporter = _grpc_exporter(receiver.port, headers={"Authorization": "Bearer s3cret"})
    for seed in range(1, 4):
        exporter.export(make_request(spans=2, seed=seed))
    exporter.shutdown(5)
    assert len(consumer.spans()) == 6
    assert exporter.stats == ExporterStats(sent=6)

    refused = _grpc_exporter(receiver.port, headers={"authorization": "Bearer wrong"})
    refused.export(make_request(spans=2))
    refused.shutdown(5)
    assert refused.stats == ExporterStats(failed=2)  # UNAUTHENTICATED is not retried
    assert len(consumer.spans()) == 6


def test_grpc_unavailable_with_retry_info_waits_the_delay(
    grpc_receiver, consumer, make_request
) -> None:  # type: ignore[no-untyped-def]
    arrivals: list[float] = []

    def busy_once(_request: ExportTraceServiceRequest) -> ConsumeResult:
        arrivals.append(time.monotonic())
        if len(arrivals) == 1:
            raise Backpressure("full", retry_after=0.5)
        return ConsumeResult()

    consumer.behaviour = busy_once
    exporter = _grpc_exporter(grpc_receiver.port)
    exporter.export(make_request(spans=2))
    wait_for(lambda: exporter.stats.sent == 2, "sent == 2", interval=POLL)
    exporter.shutdown(5)
    assert arrivals[1] - arrivals[0] >= 0.5
    assert exporter.stats == ExporterStats(sent=2, retried=1)


def test_grpc_permanent_codes_are_not_retried(
    grpc_receiver_factory, consumer, make_request
) -> None:  # type: ignore[no-untyped-def]
    def reject(_request: ExportTraceServiceRequest) -> ConsumeResult:
        raise PermanentError("bad spans")

    receiver = grpc_receiver_factory(max_request_bytes=2000)
    consumer.behaviour = reject
    exporter = _grpc_exporter(receiver.port, compression="none")
    exporter.export(make_request(spans=2))  # INVALID_ARGUMENT
    exporter.export(make_request(spans=40))  # too large: RESOURCE_EXHAUSTED without RetryInfo
    exporter.shutdown(5)
    assert exporter.stats == ExporterStats(failed=42)


@pytest.mark.parametrize(
    ("code", "delay", "retried"),
    [
        (grpc.StatusCode.UNAVAILABLE, None, True),
        (grpc.StatusCode.DEADLINE_EXCEEDED, None, True),
        (grpc.StatusCode.ABORTED, None, True),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, 0.05, True),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, None, False),
        (grpc.StatusCode.INVALID_ARGUMENT, None, False),
        (grpc.StatusCode.INTERNAL, None, False),
        (grpc.StatusCode.UNIMPLEMENTED, None, False),
    ],
)
def test_grpc_retry_classification(scripted_grpc, make_request, code, delay, retried) -> None:  # type: ignore[no-untyped-def]
    scripted_grpc.script = [(code, delay)]
    exporter = _grpc_exporter(scripted_grpc.port)
    exporter.export(make_request(spans=2))
    exporter.shutdown(5)
    assert len(scripted_grpc.received) == (2 if retried else 1)
    expected = ExporterStats(sent=2, retried=1) if retried else ExporterStats(failed=2)
    assert exporter.stats == expected


def test_grpc_delivers_soon_after_the_destination_comes_back(  # type: ignore[no-untyped-def]
    consumer, make_request
) -> None:
    port = free_port()
    exporter = _grpc_exporter(port)
    exporter.export(make_request(spans=2))
    wait_for(lambda: exporter.stats.retried >= 3, "retried >= 3", timeout=5, interval=POLL)
    time.sleep(1.0)  # the destination stays down a while
    receiver = GrpcReceiver(GrpcReceiverConfig(endpoint=f"127.0.0.1:{port}"), consumer)
    receiver.start()
    came_back = time.monotonic()
    try:
        consumer.wait_for_spans(2, timeout=10)
        delivered = time.monotonic()
        exporter.shutdown(5)
    finally:
        receiver.stop(0.5)
    assert delivered - came_back < 5.0  # gRPC's default reconnect backoff would allow 120 s
    assert consumer.requests == [make_request(spans=2)]
    assert exporter.stats.sent == 2


def test_grpc_tls_with_client_certificate(
    grpc_receiver_factory, consumer, certificates, make_request
) -> None:  # type: ignore[no-untyped-def]
    receiver = grpc_receiver_factory(
        tls=TlsServerConfig(
            cert_file=str(certificates.server_cert),
            key_file=str(certificates.server_key),
            client_ca_file=str(certificates.ca),
        )
    )
    tls = TlsClientConfig(
        ca_file=str(certificates.ca),
        cert_file=str(certificates.client_cert),
        key_file=str(certificates.client_key),
    )
    exporter = _grpc_exporter(receiver.port, tls=tls)
    exporter.export(make_request(spans=2))
    exporter.shutdown(5)
    assert consumer.requests == [make_request(spans=2)]


def test_grpc_batches_and_drains(consumer, make_request) -> None:  # type: ignore[no-untyped-def]
    receiver = GrpcReceiver(GrpcReceiverConfig(endpoint="127.0.0.1:0"), consumer)
    receiver.start()
    try:
        exporter = _grpc_exporter(receiver.port, max_batch_spans=50)
        sent = [make_request(spans=5, seed=seed) for seed in range(1, 101)]
        for request in sent:
            exporter.export(request)
        exporter.shutdown(10)
    finally:
        receiver.stop(0.5)
    assert sorted(span_ids(consumer.requests)) == sorted(span_ids(sent))
    assert all(len(span_ids([r])) <= 50 for r in consumer.requests)
    assert len(consumer.requests) < 100
    assert exporter.stats == ExporterStats(sent=500)


# -- configuration -------------------------------------------------------------------------------


def test_grpc_transport_security_follows_the_endpoint_and_tls_settings() -> None:
    assert OtlpGrpcExporterConfig(endpoint="collector:4317").secure()
    assert not OtlpGrpcExporterConfig(
        endpoint="collector:4317", tls=TlsClientConfig(insecure=True)
    ).secure()
    assert not OtlpGrpcExporterConfig(endpoint="http://collector:4317").secure()
    assert OtlpGrpcExporterConfig(endpoint="https://collector:4317").secure()


def test_config_problems_name_the_fields(tmp_path) -> None:  # type: ignore[no-untyped-def]
    problems = OtlpHttpExporterConfig(  # type: ignore[arg-type]
        endpoint="ftp://x/v1/traces",
        timeout=0,
        queue_size=0,
        compression="zstd",
        headers={"bad header": "x"},
        tls=TlsClientConfig(cert_file=str(tmp_path / "missing.pem")),
    ).all_problems()
    assert any(p.startswith("endpoint must be an http") for p in problems)
    assert any(p.startswith("timeout") for p in problems)
    assert any(p.startswith("queue_size") for p in problems)
    assert any(p.startswith("compression") for p in problems)
    assert any(p.startswith("headers") for p in problems)
    assert any("tls.cert_file" in p and "cannot be read" in p for p in problems)
    assert any("go together" in p for p in problems)
    assert any(
        "endpoint must be host:port" in p
        for p in OtlpGrpcExporterConfig(endpoint="collector").problems()
    )
    assert OtlpHttpExporterConfig().problems() == []
    assert OtlpGrpcExporterConfig().problems() == []
    with pytest.raises(ValueError, match="invalid OtlpHttpExporter config"):
        OtlpHttpExporter(OtlpHttpExporterConfig(endpoint="nowhere"))
    secret = OtlpHttpExporterConfig(headers={"authorization": "Basic c2VjcmV0"})
    assert "c2VjcmV0" not in repr(secret)
