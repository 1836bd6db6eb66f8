"""OTLP/gRPC receiver over real gRPC: the SDK's exporter, raw calls, status mapping, auth, TLS."""

from __future__ import annotations

import gzip
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import grpc
import pytest
from google.rpc.error_details_pb2 import RetryInfo
from google.rpc.status_pb2 import Status
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from spanledger.processor.components import Backpressure, ConsumeResult, PermanentError
from spanledger.processor.receivers import (
    GrpcReceiver,
    GrpcReceiverConfig,
    TlsServerConfig,
)

METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@contextmanager
def export_call(
    port: int, credentials: grpc.ChannelCredentials | None = None, **channel_args: object
) -> Iterator[grpc.UnaryUnaryMultiCallable]:
    target = f"127.0.0.1:{port}"
    channel = (
        grpc.secure_channel(target, credentials, **channel_args)  # type: ignore[arg-type]
        if credentials is not None
        else grpc.insecure_channel(target, **channel_args)  # type: ignore[arg-type]
    )
    try:
        yield channel.unary_unary(
            METHOD,
            request_serializer=None,
            response_deserializer=ExportTraceServiceResponse.FromString,
        )
    finally:
        channel.close()


def test_sdk_grpc_exporter_with_gzip_delivers_spans(grpc_receiver, consumer) -> None:  # type: ignore[no-untyped-def]
    exporter = OTLPSpanExporter(
        endpoint=f"http://127.0.0.1:{grpc_receiver.port}",
        insecure=True,
        compression=grpc.Compression.Gzip,
    )
    provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests")
    with (
        tracer.start_as_current_span("agent run"),
        tracer.start_as_current_span("chat gpt-4o-mini") as span,
    ):
        span.set_attribute("gen_ai.usage.input_tokens", 120)
        span.set_attribute("customer", "acme")
    provider.shutdown()

    spans = consumer.wait_for_spans(2)
    assert sorted(s.name for s in spans) == ["agent run", "chat gpt-4o-mini"]
    chat = next(s for s in spans if s.name == "chat gpt-4o-mini")
    attributes = {a.key: a.value for a in chat.attributes}
    assert attributes["gen_ai.usage.input_tokens"].int_value == 120
    assert attributes["customer"].string_value == "acme"
    resource = consumer.requests[0].resource_spans[0].resource
    assert any(
        a.key == "service.name" and a.value.string_value == "shop" for a in resource.attributes
    )


def test_malformed_message_is_invalid_argument_and_the_receiver_keeps_serving(
    grpc_receiver,
    consumer,
    make_request,  # type: ignore[no-untyped-def]
) -> None:
    with export_call(grpc_receiver.port) as call:
        with pytest.raises(grpc.RpcError) as caught:
            call(b"\x0a\xff\xff\xff\xff\x0f garbage", timeout=5)
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "not a valid protobuf ExportTraceServiceRequest" in caught.value.details()

        response = call(make_request(spans=2).SerializeToString(), timeout=5)
    assert not response.HasField("partial_success")
    assert len(consumer.spans()) == 2


def test_empty_request_succeeds(grpc_receiver, consumer) -> None:  # type: ignore[no-untyped-def]
    with export_call(grpc_receiver.port) as call:
        response = call(b"", timeout=5)
    assert response == ExportTraceServiceResponse()
    assert consumer.requests == [ExportTraceServiceRequest()]


def _big_request(size: int) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add(name="big")
    span.attributes.append(KeyValue(key="blob", value=AnyValue(string_value="a" * size)))
    return request


def test_oversized_and_gzip_bomb_messages_are_resource_exhausted(
    grpc_receiver_factory,
    consumer,
    make_request,  # type: ignore[no-untyped-def]
) -> None:
    receiver = grpc_receiver_factory(max_request_bytes=64 * 1024)
    payload = _big_request(1024 * 1024).SerializeToString()
    assert len(gzip.compress(payload)) < 64 * 1024  # small on the wire, large once inflated
    for compression in (grpc.Compression.NoCompression, grpc.Compression.Gzip):
        with export_call(receiver.port, compression=compression) as call:
            with pytest.raises(grpc.RpcError) as caught:
                call(payload, timeout=5)
            assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            call(make_request().SerializeToString(), timeout=5)
    assert consumer.requests == [make_request(), make_request()]


def _retry_delay(error: grpc.RpcError) -> tuple[float, float]:
    trailers = dict(error.trailing_metadata())
    status = Status.FromString(trailers["grpc-status-details-bin"])
    info = RetryInfo()
    assert status.details[0].Unpack(info)
    bare = RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"])
    as_seconds = lambda i: i.retry_delay.seconds + i.retry_delay.nanos / 1e9  # noqa: E731
    return as_seconds(info), as_seconds(bare)


@pytest.mark.parametrize(
    ("failure", "code"),
    [
        (PermanentError("span has no trace id"), grpc.StatusCode.INVALID_ARGUMENT),
        (RuntimeError("bug"), grpc.StatusCode.INTERNAL),
    ],
)
def test_consumer_failures_map_to_grpc_codes(
    grpc_receiver,
    consumer,
    make_request,
    failure,
    code,  # type: ignore[no-untyped-def]
) -> None:
    def fail(_request: ExportTraceServiceRequest) -> ConsumeResult:
        raise failure

    consumer.behaviour = fail
    with export_call(grpc_receiver.port) as call, pytest.raises(grpc.RpcError) as caught:
        call(make_request().SerializeToString(), timeout=5)
    assert caught.value.code() is code
    if code is grpc.StatusCode.INVALID_ARGUMENT:
        assert "span has no trace id" in caught.value.details()
    else:
        assert "bug" not in caught.value.details()


def test_backpressure_is_unavailable_with_retry_info(grpc_receiver, consumer, make_request) -> None:  # type: ignore[no-untyped-def]
    def busy(_request: ExportTraceServiceRequest) -> ConsumeResult:
        raise Backpressure("rollup is full", retry_after=2.5)

    consumer.behaviour = busy
    with export_call(grpc_receiver.port) as call, pytest.raises(grpc.RpcError) as caught:
        call(make_request().SerializeToString(), timeout=5)
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    assert "rollup is full" in caught.value.details()
    assert _retry_delay(caught.value) == (2.5, 2.5)


def test_sdk_exporter_retries_after_the_delay_the_receiver_asks_for(
    grpc_receiver,
    consumer,  # type: ignore[no-untyped-def]
) -> None:
    arrivals: list[float] = []

    def busy_once(_request: ExportTraceServiceRequest) -> ConsumeResult:
        arrivals.append(time.monotonic())
        if len(arrivals) == 1:
            raise Backpressure("warming up", retry_after=0.3)
        return ConsumeResult()

    consumer.behaviour = busy_once
    finished = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(finished))
    provider.get_tracer("tests").start_span("retried").end()
    exporter = OTLPSpanExporter(
        endpoint=f"127.0.0.1:{grpc_receiver.port}", insecure=True, timeout=10
    )
    try:
        assert exporter.export(finished.get_finished_spans()) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert len(arrivals) == 2
    assert arrivals[1] - arrivals[0] >= 0.3
    assert [s.name for s in consumer.spans()] == ["retried"]  # only the accepted delivery


def test_partial_success_is_returned(grpc_receiver, consumer, make_request) -> None:  # type: ignore[no-untyped-def]
    consumer.behaviour = lambda request: ConsumeResult(
        rejected_spans=2, error_message="unknown model"
    )
    with export_call(grpc_receiver.port) as call:
        response = call(make_request(spans=3).SerializeToString(), timeout=5)
    assert response.partial_success.rejected_spans == 2
    assert response.partial_success.error_message == "unknown model"


@pytest.mark.parametrize(
    ("metadata", "accepted"),
    [
        ((), False),
        ((("authorization", "Bearer wrong"),), False),
        ((("authorization", "Basic s3cret"),), False),
        ((("authorization", "Bearer s3cret"),), True),
        ((("authorization", "bearer s3cret"),), True),
    ],
)
def test_bearer_token(grpc_receiver_factory, consumer, make_request, metadata, accepted) -> None:  # type: ignore[no-untyped-def]
    receiver = grpc_receiver_factory(bearer_token="s3cret")
    with export_call(receiver.port) as call:
        if accepted:
            call(make_request().SerializeToString(), timeout=5, metadata=metadata)
            assert len(consumer.requests) == 1
        else:
            with pytest.raises(grpc.RpcError) as caught:
                call(make_request().SerializeToString(), timeout=5, metadata=metadata)
            assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
            assert "s3cret" not in caught.value.details()
            assert consumer.requests == []


def test_tls_and_client_certificates(
    grpc_receiver_factory, consumer, certificates, make_request
) -> None:  # type: ignore[no-untyped-def]
    receiver = grpc_receiver_factory(
        tls=TlsServerConfig(
            cert_file=str(certificates.server_cert),
            key_file=str(certificates.server_key),
            client_ca_file=str(certificates.ca),
        )
    )
    ca = certificates.ca.read_bytes()
    with_client_cert = grpc.ssl_channel_credentials(
        root_certificates=ca,
        private_key=certificates.client_key.read_bytes(),
        certificate_chain=certificates.client_cert.read_bytes(),
    )
    with export_call(receiver.port, with_client_cert) as call:
        call(make_request().SerializeToString(), timeout=5)
    assert len(consumer.requests) == 1

    without_client_cert = grpc.ssl_channel_credentials(root_certificates=ca)
    with (
        export_call(receiver.port, without_client_cert) as call,
        pytest.raises(grpc.RpcError) as caught,
    ):
        call(make_request().SerializeToString(), timeout=5)
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    with export_call(receiver.port) as call, pytest.raises(grpc.RpcError):  # plain text to TLS
        call(make_request().SerializeToString(), timeout=5)
    assert len(consumer.requests) == 1


def test_stop_releases_the_port(consumer: object) -> None:
    receiver = GrpcReceiver(GrpcReceiverConfig(endpoint="127.0.0.1:0"), consumer)  # type: ignore[arg-type]
    receiver.start()
    port = receiver.port
    receiver.stop(0.1)
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_bad_config_and_busy_port_are_reported(grpc_receiver, consumer) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="endpoint must be host:port"):
        GrpcReceiver(GrpcReceiverConfig(endpoint="nowhere"), consumer).start()
    taken = GrpcReceiver(GrpcReceiverConfig(endpoint=f"127.0.0.1:{grpc_receiver.port}"), consumer)
    with pytest.raises(OSError, match="cannot listen"):
        taken.start()


def test_config_problems_name_the_fields(tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = GrpcReceiverConfig(
        endpoint="::1:4317",
        max_request_bytes=0,
        bearer_token=" ",
        max_workers=0,
        tls=TlsServerConfig(cert_file=str(tmp_path / "missing.pem")),
    )
    problems = config.all_problems()
    assert any("brackets" in p for p in problems)
    assert any(p.startswith("max_request_bytes") for p in problems)
    assert any(p.startswith("bearer_token") for p in problems)
    assert any(p.startswith("max_workers") for p in problems)
    assert any("tls.cert_file" in p and "cannot be read" in p for p in problems)
    assert any("tls.key_file is required" in p for p in problems)
    assert not any("tls" in p for p in config.problems())  # nested sections report their own
    assert "s3cret" not in repr(GrpcReceiverConfig(bearer_token="s3cret"))
    assert GrpcReceiverConfig(endpoint="[::1]:0").problems() == []
