"""OTLP metrics and logs at both edges: the receivers' services and paths, exporters' signals."""

from __future__ import annotations

import gzip
import logging
import time
from collections.abc import Callable, Iterator

import grpc
import pytest
import requests
from google.rpc.status_pb2 import Status

from spanledger.processor.components import ConsumeResult
from spanledger.processor.exporters import (
    DiskQueueConfig,
    OtlpGrpcExporter,
    OtlpGrpcExporterConfig,
    OtlpHttpExporter,
    OtlpHttpExporterConfig,
    TlsClientConfig,
)
from spanledger.processor.otlp.json import encode_request
from spanledger.processor.otlp.signals import LOGS, METRICS, TRACES, Signal
from spanledger.processor.receivers import (
    GrpcReceiver,
    GrpcReceiverConfig,
    HttpReceiver,
    HttpReceiverConfig,
)

PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}
OTHERS = pytest.mark.parametrize("signal", [METRICS, LOGS], ids=["metrics", "logs"])


@pytest.fixture
def receivers(recorders) -> Iterator[tuple[GrpcReceiver, HttpReceiver]]:  # type: ignore[no-untyped-def]
    others = {"metrics": recorders[METRICS], "logs": recorders[LOGS]}
    grpc_receiver = GrpcReceiver(GrpcReceiverConfig("127.0.0.1:0"), recorders[TRACES], **others)
    http_receiver = HttpReceiver(HttpReceiverConfig("127.0.0.1:0"), recorders[TRACES], **others)
    grpc_receiver.start()
    http_receiver.start()
    yield grpc_receiver, http_receiver
    grpc_receiver.stop(0.5)
    http_receiver.stop(0.5)


@pytest.fixture
def build(make_metrics_request, make_logs_request) -> Callable[..., object]:  # type: ignore[no-untyped-def]
    """The request builder of a signal: ``build(METRICS, seed=2)``."""
    builders = {METRICS: make_metrics_request, LOGS: make_logs_request}
    return lambda signal, **kwargs: builders[signal](**kwargs)


def grpc_call(port: int, signal: Signal, body: bytes, **options: object) -> object:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(
            signal.grpc_method,
            request_serializer=None,
            response_deserializer=signal.response_type.FromString,
        )
        return call(body, timeout=10, **options)


# -- receivers ---------------------------------------------------------------------------------


@OTHERS
def test_grpc_receiver_serves_the_signal_and_hands_it_to_its_own_consumer(
    receivers, recorders, build, signal
) -> None:  # type: ignore[no-untyped-def]
    grpc_receiver, _ = receivers
    request = build(signal, seed=3)
    plain = grpc_call(grpc_receiver.port, signal, request.SerializeToString())
    zipped = grpc_call(
        grpc_receiver.port,
        signal,
        request.SerializeToString(),
        compression=grpc.Compression.Gzip,
    )
    assert plain == zipped == signal.response_type()
    assert recorders[signal].requests == [request, request]
    assert recorders[TRACES].requests == []


@OTHERS
def test_grpc_malformed_signal_body_is_invalid_argument(receivers, recorders, signal) -> None:  # type: ignore[no-untyped-def]
    grpc_receiver, _ = receivers
    with pytest.raises(grpc.RpcError) as raised:
        grpc_call(grpc_receiver.port, signal, b"\x0a\xff\xff\xff\xff\x0f")
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert f"not a valid protobuf {signal.request_type.DESCRIPTOR.name}" in raised.value.details()
    assert recorders[signal].requests == []


@OTHERS
def test_partial_success_is_reported_in_the_signals_own_field(
    receivers, recorders, build, signal
) -> None:  # type: ignore[no-untyped-def]
    grpc_receiver, http_receiver = receivers
    recorders[signal].behaviour = lambda request: ConsumeResult(1, "one was odd")
    body = build(signal).SerializeToString()
    response = grpc_call(grpc_receiver.port, signal, body)
    assert getattr(response.partial_success, signal.rejected_field) == 1
    assert response.partial_success.error_message == "one was odd"

    answer = requests.post(
        f"http://127.0.0.1:{http_receiver.port}{signal.http_path}",
        data=encode_request(build(signal)),
        headers=JSON,
    )
    assert answer.status_code == 200
    field = {METRICS: "rejectedDataPoints", LOGS: "rejectedLogRecords"}[signal]
    assert answer.json() == {"partialSuccess": {field: "1", "errorMessage": "one was odd"}}


def test_a_signal_without_a_consumer_is_not_served(consumer, make_metrics_request) -> None:  # type: ignore[no-untyped-def]
    grpc_receiver = GrpcReceiver(GrpcReceiverConfig("127.0.0.1:0"), consumer)
    http_receiver = HttpReceiver(HttpReceiverConfig("127.0.0.1:0"), consumer)
    grpc_receiver.start()
    http_receiver.start()
    try:
        with pytest.raises(grpc.RpcError) as raised:
            grpc_call(grpc_receiver.port, METRICS, make_metrics_request().SerializeToString())
        assert raised.value.code() is grpc.StatusCode.UNIMPLEMENTED
        answer = requests.post(
            f"http://127.0.0.1:{http_receiver.port}/v1/metrics",
            data=make_metrics_request().SerializeToString(),
            headers=PROTOBUF,
        )
        assert answer.status_code == 404
        assert "/v1/traces (traces)" in answer.text and "/v1/metrics" not in answer.text
    finally:
        grpc_receiver.stop(0.5)
        http_receiver.stop(0.5)


@OTHERS
def test_http_receiver_takes_the_signal_as_protobuf_and_json_plain_or_gzipped(
    receivers, recorders, build, signal
) -> None:  # type: ignore[no-untyped-def]
    _, http_receiver = receivers
    request = build(signal, seed=7)
    url = f"http://127.0.0.1:{http_receiver.port}{signal.http_path}"
    bodies = [(PROTOBUF, request.SerializeToString()), (JSON, encode_request(request))]
    with requests.Session() as session:
        for headers, body in bodies:
            for gzipped in (False, True):
                extra = {"Content-Encoding": "gzip"} if gzipped else {}
                answer = session.post(
                    url, data=gzip.compress(body) if gzipped else body, headers={**headers, **extra}
                )
                assert answer.status_code == 200, answer.text
                assert answer.headers["Content-Type"] == headers["Content-Type"]
                expected = b"{}" if headers is JSON else b""
                assert answer.content == expected
    assert recorders[signal].requests == [request] * 4
    assert recorders[TRACES].requests == []


@OTHERS
def test_http_malformed_signal_bodies_are_400_with_the_reason(receivers, recorders, signal) -> None:  # type: ignore[no-untyped-def]
    _, http_receiver = receivers
    url = f"http://127.0.0.1:{http_receiver.port}{signal.http_path}"
    name = signal.request_type.DESCRIPTOR.name
    top = signal.request_type.DESCRIPTOR.fields[0].json_name
    bad_id = {
        METRICS: '{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"sum":{"dataPoints":'
        '[{"exemplars":[{"traceId":"xyz"}]}]}}]}]}]}',
        LOGS: '{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"xyz"}]}]}]}',
    }[signal]
    cases = [
        (PROTOBUF, b"\x0a\xff\xff\xff\xff\x0f", f"not a valid protobuf {name}"),
        (JSON, b'{"' + top.encode() + b'": [', "not JSON"),
        (JSON, bad_id.encode(), "traceId: 'xyz' is not a hex string"),
        ({**PROTOBUF, "Content-Encoding": "gzip"}, b"not gzip", "not valid gzip"),
    ]
    with requests.Session() as session:
        for headers, body, reason in cases:
            answer = session.post(url, data=body, headers=headers)
            assert answer.status_code == 400, (reason, answer.text)
            content_type = headers["Content-Type"]
            status = (
                Status.FromString(answer.content)
                if content_type == PROTOBUF["Content-Type"]
                else Status(message=answer.json()["message"], code=answer.json()["code"])
            )
            assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
            assert reason in status.message, status.message
    assert recorders[signal].requests == []


def test_http_paths_are_configurable_and_must_differ(recorders) -> None:  # type: ignore[no-untyped-def]
    config = HttpReceiverConfig("127.0.0.1:0", metrics_path="/otlp/metrics", logs_path="/v1/traces")
    assert "path, metrics_path and logs_path must differ from each other" in config.problems()
    assert (
        "logs_path must start with '/', got 'logs'"
        in HttpReceiverConfig(logs_path="logs").problems()
    )

    config.logs_path = "/otlp/logs"
    receiver = HttpReceiver(
        config, recorders[TRACES], metrics=recorders[METRICS], logs=recorders[LOGS]
    )
    assert receiver.routes == {"/v1/traces": TRACES, "/otlp/metrics": METRICS, "/otlp/logs": LOGS}


# -- exporters ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "overrides", "expected"),
    [
        (
            "http://collector:4318",
            {},
            ("/v1/traces", "/v1/metrics", "/v1/logs"),
        ),
        (
            "https://collector:4318/",
            {},
            ("/v1/traces", "/v1/metrics", "/v1/logs"),
        ),
        (
            "http://127.0.0.1:6006/v1/traces",
            {},
            ("/v1/traces", "/v1/metrics", "/v1/logs"),
        ),
        (
            "https://cloud.example/api/public/otel/v1/traces?tenant=a",
            {},
            (
                "/api/public/otel/v1/traces?tenant=a",
                "/api/public/otel/v1/metrics?tenant=a",
                "/api/public/otel/v1/logs?tenant=a",
            ),
        ),
        (
            "http://host:9000/ingest/spans",
            {"metrics_endpoint": "http://host:9000/ingest/points"},
            ("/ingest/spans", "/ingest/points", None),
        ),
        (
            "http://host:4318/v1/traces",
            {"logs_endpoint": "http://logs-host:3100/otlp/v1/logs"},
            ("/v1/traces", "/v1/metrics", "http://logs-host:3100/otlp/v1/logs"),
        ),
    ],
)
def test_http_exporter_urls_follow_the_sdk_endpoint_rules(endpoint, overrides, expected) -> None:  # type: ignore[no-untyped-def]
    config = OtlpHttpExporterConfig(endpoint, **overrides)
    base = endpoint.split("/", 3)[:3]
    for signal, path in zip(("traces", "metrics", "logs"), expected, strict=True):
        want = "/".join(base) + path if path is not None and path.startswith("/") else path
        assert config.url(signal) == want


def test_http_exporter_config_asks_for_a_url_it_cannot_derive() -> None:
    config = OtlpHttpExporterConfig("http://host:9000/ingest/spans")
    assert config.problems() == [
        "cannot derive the metrics URL from endpoint 'http://host:9000/ingest/spans' (its path "
        "does not end in /v1/traces): set metrics_endpoint, or leave metrics out of signals",
        "cannot derive the logs URL from endpoint 'http://host:9000/ingest/spans' (its path "
        "does not end in /v1/traces): set logs_endpoint, or leave logs out of signals",
    ]
    assert (
        OtlpHttpExporterConfig("http://host:9000/ingest/spans", signals=["traces"]).problems() == []
    )
    assert OtlpGrpcExporterConfig(signals=[]).problems() == [
        "signals is empty: list at least one of traces, metrics, logs"
    ]
    assert (
        "signals lists a signal twice"
        in OtlpGrpcExporterConfig(signals=["logs", "logs"]).problems()
    )


@OTHERS
def test_http_exporter_posts_the_signal_to_its_own_path(
    scripted_http, build, merge_requests, signal
) -> None:  # type: ignore[no-untyped-def]
    exporter = OtlpHttpExporter(OtlpHttpExporterConfig(scripted_http.url), signal=signal)
    first, second = build(signal, seed=1), build(signal, seed=2)
    exporter.export(first)
    exporter.export_serialized(second.SerializeToString(), signal.count(second))
    exporter.shutdown(5)

    received = scripted_http.wait_for(1)
    assert {r.path for r in received} == {signal.http_path}
    assert merge_requests([r.request() for r in received]) == merge_requests([first, second])
    assert exporter.stats.sent == signal.count(first) + signal.count(second)


@OTHERS
def test_grpc_exporter_calls_the_signals_service(scripted_grpc, build, signal) -> None:  # type: ignore[no-untyped-def]
    config = OtlpGrpcExporterConfig(f"127.0.0.1:{scripted_grpc.port}", tls=TlsClientConfig(True))
    exporter = OtlpGrpcExporter(config, signal=signal)
    request = build(signal, seed=4)
    exporter.export(request)
    exporter.shutdown(5)

    [received] = scripted_grpc.received
    assert received.signal is signal
    assert received.request() == request
    assert exporter.stats.sent == signal.count(request) > 0
    assert exporter.name == f"OtlpGrpcExporter(127.0.0.1:{scripted_grpc.port}, {signal.name})"


def test_a_destination_without_the_signal_is_reported_once(
    scripted_http, make_logs_request, caplog
) -> None:  # type: ignore[no-untyped-def]
    scripted_http.script = [(404, {})] * 3
    exporter = OtlpHttpExporter(OtlpHttpExporterConfig(scripted_http.url), signal=LOGS)
    caplog.set_level(logging.DEBUG, logger="spanledger.processor.exporters")
    for seed in range(3):
        exporter.export(make_logs_request(records=2, seed=seed))
        scripted_http.wait_for(seed + 1)  # one batch each
    exporter.shutdown(5)

    refusals = [r for r in caplog.records if "refused 2 log records" in r.getMessage()]
    assert [r.levelno for r in refusals] == [logging.ERROR, logging.DEBUG, logging.DEBUG]
    assert "leave logs out of this exporter's signals" in refusals[0].getMessage()
    assert exporter.stats.failed == 6 and exporter.stats.retried == 0


def test_grpc_unimplemented_signal_is_reported_once(
    tracing_backend_grpc, make_metrics_request, caplog
) -> None:  # type: ignore[no-untyped-def]
    config = OtlpGrpcExporterConfig(
        f"127.0.0.1:{tracing_backend_grpc.port}", tls=TlsClientConfig(True)
    )
    exporter = OtlpGrpcExporter(config, signal=METRICS)
    for batch in (1, 2):  # two batches, each refused
        exporter.export(make_metrics_request(points=2, seed=batch))
        deadline = time.monotonic() + 10
        while exporter.stats.failed < 3 * batch and time.monotonic() < deadline:
            time.sleep(0.02)
    exporter.shutdown(5)

    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "UNIMPLEMENTED" in errors[0].getMessage()
    assert "leave metrics out of this exporter's signals" in errors[0].getMessage()
    assert exporter.stats.failed == 6 and exporter.stats.sent == 0


def test_each_signal_has_its_own_disk_queue_that_survives_a_restart(
    tmp_path, scripted_http, free_port, make_request, make_logs_request
) -> None:  # type: ignore[no-untyped-def]
    directory = tmp_path / "queue"
    down = OtlpHttpExporterConfig(
        f"http://127.0.0.1:{free_port}/v1/traces",
        queue=DiskQueueConfig(str(directory)),
        initial_backoff=0.05,
        max_backoff=0.05,
    )
    exporters = [OtlpHttpExporter(down, signal=s) for s in (TRACES, LOGS)]
    exporters[0].export(make_request(spans=2))
    exporters[1].export(make_logs_request(records=3))
    for exporter in exporters:
        exporter.shutdown(0.3)
    assert list(directory.glob("*.seg")) and list((directory / "logs").glob("*.seg"))

    up = OtlpHttpExporterConfig(scripted_http.url, queue=DiskQueueConfig(str(directory)))
    restarted = [OtlpHttpExporter(up, signal=s) for s in (TRACES, LOGS)]
    received = scripted_http.wait_for(2)
    for exporter in restarted:
        exporter.shutdown(5)
    by_signal = {r.signal: r.request() for r in received}
    assert by_signal == {TRACES: make_request(spans=2), LOGS: make_logs_request(records=3)}
