"""Fixtures shared by the processor's tests: receivers on free ports feeding a recorder, scripted
endpoints for the exporters, test certificates; a pipeline on a hand-moved clock with recording
exporter and sink."""

from __future__ import annotations

import functools
import gzip
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import pytest
from google.protobuf.any_pb2 import Any as AnyMessage
from google.protobuf.message import Message
from google.rpc.error_details_pb2 import RetryInfo
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from support.otlp import make_logs_request, make_metrics_request, make_request
from support.pipelines import TAG_KEYS, FakeClock
from support.ports import free_port as pick_free_port
from support.sinks import RecordingSink, TraceRecorder

from spanledger.processor.otlp.signals import LOGS, METRICS, SIGNALS, TRACES, Signal
from spanledger.processor.pipeline.core import Pipeline
from spanledger.processor.pipeline.fanout import FanOut
from spanledger.processor.pricing import PriceBook, PriceTable, PricingConfig
from spanledger.processor.receivers import (
    GrpcReceiver,
    GrpcReceiverConfig,
    HttpReceiver,
    HttpReceiverConfig,
)
from spanledger.processor.rollup import RollupConfig
from spanledger.processor.usage import extract_usage


@pytest.fixture
def consumer() -> TraceRecorder:
    return TraceRecorder()


@pytest.fixture
def recorders(consumer: TraceRecorder) -> dict[Signal, TraceRecorder]:
    """A recording consumer per signal; the traces one is ``consumer``."""
    return {TRACES: consumer, METRICS: TraceRecorder(), LOGS: TraceRecorder()}


def _receivers(receiver_class: type, config_class: type, consumer: TraceRecorder) -> Iterator:
    """A factory starting receivers on free ports; every one started is stopped afterwards."""
    started: list = []

    def start(**settings: object) -> object:
        receiver = receiver_class(config_class(endpoint="127.0.0.1:0", **settings), consumer)
        receiver.start()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.stop(0.5)


@pytest.fixture
def grpc_receiver_factory(
    consumer: TraceRecorder,
) -> Iterator[Callable[..., GrpcReceiver]]:
    yield from _receivers(GrpcReceiver, GrpcReceiverConfig, consumer)


@pytest.fixture
def http_receiver_factory(
    consumer: TraceRecorder,
) -> Iterator[Callable[..., HttpReceiver]]:
    yield from _receivers(HttpReceiver, HttpReceiverConfig, consumer)


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


@pytest.fixture(name="make_metrics_request")
def make_metrics_request_fixture() -> Callable[..., ExportMetricsServiceRequest]:
    return make_metrics_request


def merge_requests(requests: list[Message]) -> Message:
    """One request holding the resources of all ``requests`` in order, as exporters merge them."""
    whole = type(requests[0])()
    for request in requests:
        whole.MergeFrom(request)
    return whole


@pytest.fixture(name="merge_requests")
def merge_requests_fixture() -> Callable[[list[Message]], Message]:
    return merge_requests


@pytest.fixture(name="make_logs_request")
def make_logs_request_fixture() -> Callable[..., ExportLogsServiceRequest]:
    return make_logs_request


@dataclass
class Received:
    """One request as a scripted server saw it."""

    at: float
    headers: dict[str, str]
    body: bytes
    signal: Signal = TRACES
    path: str = ""
    """The HTTP path it was POSTed to (gRPC: empty)."""

    def request(self) -> Message:
        """The export request of the signal it was sent as (by HTTP path or gRPC service)."""
        body = self.body
        if self.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        return self.signal.request_type.FromString(body)

    def span_count(self) -> int:
        return self.signal.count(self.request())


class ScriptedHttpServer:
    """An OTLP/HTTP endpoint answering from a script of (status, headers); then 200."""

    def __init__(self) -> None:
        self.script: list[tuple[int, dict[str, str]]] = []
        self.received: list[Received] = []
        self.hold = threading.Event()  # while cleared, requests wait (bounded) before answering
        self.hold.set()
        self.changed = threading.Condition()
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                scripted.hold.wait(10)
                signal = next(
                    (s for s in SIGNALS.values() if self.path.endswith(s.http_path)), TRACES
                )
                with scripted.changed:
                    scripted.received.append(
                        Received(
                            time.monotonic(),
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                            signal,
                            self.path,
                        )
                    )
                    status, headers = scripted.script.pop(0) if scripted.script else (200, {})
                    scripted.changed.notify_all()
                if status == 200:
                    payload = signal.response_type().SerializeToString()
                else:
                    payload = Status(code=14, message=f"scripted {status}").SerializeToString()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"{self.base_url}/v1/traces"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def paths(self) -> set[str]:
        """The paths requests were POSTed to."""
        with self.changed:
            return {received.path for received in self.received}

    def wait_for(self, requests: int, timeout: float = 10.0) -> list[Received]:
        with self.changed:
            self.changed.wait_for(lambda: len(self.received) >= requests, timeout)
            return list(self.received)

    def close(self) -> None:
        self.hold.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted_http() -> Iterator[ScriptedHttpServer]:
    server = ScriptedHttpServer()
    yield server
    server.close()


class ScriptedGrpcServer:
    """An OTLP/gRPC endpoint failing with a script of (code, retry delay or None); then OK.

    It serves the Export method of each of ``signals`` (traces, metrics and logs by default).
    """

    def __init__(self, signals: tuple[Signal, ...] = tuple(SIGNALS.values())) -> None:
        self.script: list[tuple[grpc.StatusCode, float | None]] = []
        self.received: list[Received] = []

        def export(signal: Signal, body: bytes, context: grpc.ServicerContext) -> bytes:
            metadata = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
            self.received.append(Received(time.monotonic(), metadata, body, signal))
            if self.script:
                code, delay = self.script.pop(0)
                if delay is not None:
                    info = RetryInfo()
                    info.retry_delay.FromTimedelta(timedelta(seconds=delay))
                    detail = AnyMessage()
                    detail.Pack(info)
                    status = Status(code=code.value[0], message="scripted", details=[detail])
                    context.set_trailing_metadata(
                        (("grpc-status-details-bin", status.SerializeToString()),)
                    )
                context.abort(code, f"scripted {code.name}")
            return b""

        handlers = [
            grpc.method_handlers_generic_handler(
                signal.service,
                {"Export": grpc.unary_unary_rpc_method_handler(functools.partial(export, signal))},
            )
            for signal in signals
        ]
        self.server = grpc.server(ThreadPoolExecutor(2), handlers=handlers)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def close(self) -> None:
        self.server.stop(0).wait(5)


@pytest.fixture
def scripted_grpc() -> Iterator[ScriptedGrpcServer]:
    server = ScriptedGrpcServer()
    yield server
    server.close()


@pytest.fixture
def tracing_backend_grpc() -> Iterator[ScriptedGrpcServer]:
    """A scripted gRPC endpoint serving traces only, like a tracing backend."""
    server = ScriptedGrpcServer(signals=(TRACES,))
    yield server
    server.close()


@pytest.fixture
def free_port() -> int:
    """A port nothing listens on (the OS picked it and it was closed at once)."""
    return pick_free_port()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def exporter() -> TraceRecorder:
    return TraceRecorder()


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def make_pipeline(
    clock: FakeClock, exporter: TraceRecorder, sink: RecordingSink
) -> Iterator[Callable[..., Pipeline]]:
    """Build a pipeline on the fake clock with the real usage reader and price book.

    Keyword arguments other than ``markup_percent`` go to ``RollupConfig``.
    """
    built: list[Pipeline] = []

    def make(markup_percent: float = 0, **rollup: object) -> Pipeline:
        pipeline = Pipeline(
            RollupConfig(**rollup),  # type: ignore[arg-type]
            TAG_KEYS,
            PriceBook(PricingConfig(markup_percent=markup_percent)),
            FanOut([exporter], [sink]),
            clock=clock,
            extract_usage=extract_usage,
        )
        built.append(pipeline)
        return pipeline

    yield make
    for pipeline in built:
        pipeline.shutdown(1.0)
        pipeline.output.shutdown(1.0)


@pytest.fixture(scope="session")
def table() -> PriceTable:
    return PriceTable()


@pytest.fixture(scope="session")
def book(table: PriceTable) -> PriceBook:
    return PriceBook(table=table)
