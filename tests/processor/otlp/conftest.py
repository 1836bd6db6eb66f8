"""Fixtures for the OTLP edges: recording consumers, receivers on free ports, test certificates."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from spanledger.processor.components import ConsumeResult
from spanledger.processor.receivers import (
    GrpcReceiver,
    GrpcReceiverConfig,
    HttpReceiver,
    HttpReceiverConfig,
)


class RecordingConsumer:
    """A TraceConsumer that keeps every request; ``behaviour`` can make it fail or reject."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.behaviour: Callable[[ExportTraceServiceRequest], ConsumeResult] | None = None
        self.arrived = threading.Condition()

    def consume(self, request: ExportTraceServiceRequest) -> ConsumeResult:
        result = self.behaviour(request) if self.behaviour is not None else ConsumeResult()
        with self.arrived:
            self.requests.append(request)
            self.arrived.notify_all()
        return result

    @property
    def spans(self) -> list[Span]:
        return [
            span
            for request in self.requests
            for rs in request.resource_spans
            for ss in rs.scope_spans
            for span in ss.spans
        ]

    def wait_for_spans(self, count: int, timeout: float = 10.0) -> list[Span]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.spans) >= count, timeout)
        return self.spans


def make_request(
    spans: int = 3, service: str = "checkout", seed: int = 1
) -> ExportTraceServiceRequest:
    """A request with one resource and ``spans`` spans carrying GenAI-looking attributes."""
    trace_id = seed.to_bytes(16, "big")
    scope = ScopeSpans(scope=InstrumentationScope(name="tests", version="1.0"))
    for index in range(spans):
        scope.spans.append(
            Span(
                trace_id=trace_id,
                span_id=(seed * 1000 + index + 1).to_bytes(8, "big"),
                parent_span_id=b"" if index == 0 else (seed * 1000 + 1).to_bytes(8, "big"),
                name=f"chat gpt-4o-mini #{index}",
                kind=Span.SPAN_KIND_CLIENT,
                start_time_unix_nano=1_700_000_000_000_000_000 + index,
                end_time_unix_nano=1_700_000_000_500_000_000 + index,
                attributes=[
                    KeyValue(
                        key="gen_ai.request.model", value=AnyValue(string_value="gpt-4o-mini")
                    ),
                    KeyValue(
                        key="gen_ai.usage.input_tokens", value=AnyValue(int_value=100 + index)
                    ),
                    KeyValue(key="customer", value=AnyValue(string_value="acme")),
                ],
            )
        )
    resource = Resource(
        attributes=[KeyValue(key="service.name", value=AnyValue(string_value=service))]
    )
    return ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=resource, scope_spans=[scope])]
    )


@pytest.fixture
def consumer() -> RecordingConsumer:
    return RecordingConsumer()


@pytest.fixture
def grpc_receiver_factory(
    consumer: RecordingConsumer,
) -> Iterator[Callable[..., GrpcReceiver]]:
    started: list[GrpcReceiver] = []

    def start(**settings: object) -> GrpcReceiver:
        receiver = GrpcReceiver(GrpcReceiverConfig(endpoint="127.0.0.1:0", **settings), consumer)
        receiver.start()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.stop(0.5)


@pytest.fixture
def http_receiver_factory(
    consumer: RecordingConsumer,
) -> Iterator[Callable[..., HttpReceiver]]:
    started: list[HttpReceiver] = []

    def start(**settings: object) -> HttpReceiver:
        receiver = HttpReceiver(HttpReceiverConfig(endpoint="127.0.0.1:0", **settings), consumer)
        receiver.start()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.stop(0.5)


@pytest.fixture
def grpc_receiver(grpc_receiver_factory: Callable[..., GrpcReceiver]) -> GrpcReceiver:
    return grpc_receiver_factory()


@pytest.fixture
def http_receiver(http_receiver_factory: Callable[..., HttpReceiver]) -> HttpReceiver:
    return http_receiver_factory()


@dataclass(frozen=True)
class Certificates:
    """A test CA, a server certificate for 127.0.0.1/localhost and a client certificate."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    folder = tmp_path_factory.mktemp("tls")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True, timeout=60)

    openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=test-ca",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=keyCertSign",
    )  # fmt: skip
    for name, extension in (
        ("server", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
        ("client", "extendedKeyUsage=clientAuth"),
    ):
        openssl(
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}",
        )  # fmt: skip
        (folder / f"{name}.ext").write_text(extension + "\n")
        openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext",
        )  # fmt: skip
    for key in folder.glob("*.key"):
        os.chmod(key, 0o600)
    return Certificates(
        ca=folder / "ca.pem",
        server_cert=folder / "server.pem",
        server_key=folder / "server.key",
        client_cert=folder / "client.pem",
        client_key=folder / "client.key",
    )


@pytest.fixture(name="make_request")
def make_request_fixture() -> Callable[..., ExportTraceServiceRequest]:
    return make_request
