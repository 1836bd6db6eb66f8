"""Receiving ends that keep what they are sent.

In the processor's own process: ``TraceRecorder`` (an exporter of the pipeline, or the consumer
behind a receiver) and ``RecordingSink`` (a sink of counted calls). Over the network:
``OtlpHttpBackend`` and ``OtlpGrpcBackend``, real OTLP trace endpoints on 127.0.0.1 that any
exporter (the SDK's, the processor's, another process's) can send to.
"""

from __future__ import annotations

import contextlib
import gzip
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from spanledger.processor.components import ConsumeResult
from spanledger.processor.model import CountedCall

from .otlp import attributes_of, placed_spans, span_number, spans_in

# -- in the processor's process ----------------------------------------------------------------


@dataclass
class Forwarded:
    """One span as it was handed on, with the resource and scope it was filed under."""

    span: Span
    service: str
    resource: dict[str, object]
    scope: str
    resource_schema_url: str
    scope_schema_url: str

    @property
    def attributes(self) -> dict[str, object]:
        return attributes_of(self.span.attributes)


class TraceRecorder:
    """Keeps every trace request handed to it, as a pipeline's exporter (``export``) or as the
    consumer behind a receiver (``consume``, which answers with ``behaviour`` when it is set)."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.behaviour: Callable[[ExportTraceServiceRequest], ConsumeResult] | None = None
        self.shutdown_timeouts: list[float] = []
        self.arrived = threading.Condition()

    def export(self, request: ExportTraceServiceRequest) -> None:
        with self.arrived:
            self.requests.append(request)
            self.arrived.notify_all()

    def consume(self, request: ExportTraceServiceRequest) -> ConsumeResult:
        result = self.behaviour(request) if self.behaviour is not None else ConsumeResult()
        self.export(request)
        return result

    def shutdown(self, timeout: float) -> None:
        self.shutdown_timeouts.append(timeout)

    def spans(self) -> list[Span]:
        """Every span received so far, in order."""
        with self.arrived:
            requests = list(self.requests)
        return [span for request in requests for span in spans_in(request)]

    def wait_for_spans(self, count: int, timeout: float = 10.0) -> list[Span]:
        """The spans once there are ``count`` of them, or all there are after ``timeout``."""
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.spans()) >= count, timeout)
        return self.spans()

    def forwarded(self) -> list[Forwarded]:
        """Every span received so far with its resource and scope."""
        with self.arrived:
            requests = list(self.requests)
        found = []
        for request in requests:
            for resource_spans, scope_spans, span in placed_spans(request):
                resource = attributes_of(resource_spans.resource.attributes)
                found.append(
                    Forwarded(
                        span,
                        str(resource.get("service.name")),
                        resource,
                        scope_spans.scope.name,
                        resource_spans.schema_url,
                        scope_spans.schema_url,
                    )
                )
        return found

    def by_span(self) -> dict[int, Forwarded]:
        """Spans built by ``support.otlp.span``, keyed by their number; fails on a repeat."""
        found: dict[int, Forwarded] = {}
        for item in self.forwarded():
            number = span_number(item.span.span_id)
            assert number not in found, f"span {number} forwarded twice"
            found[number] = item
        return found


class RecordingSink:
    """A ``CallSink`` that keeps every counted call."""

    def __init__(self) -> None:
        self.calls: list[CountedCall] = []
        self.batches = 0
        self.shutdown_timeouts: list[float] = []
        self._lock = threading.Lock()

    def record(self, calls: Sequence[CountedCall]) -> None:
        with self._lock:
            self.batches += 1
            self.calls.extend(calls)

    def shutdown(self, timeout: float) -> None:
        self.shutdown_timeouts.append(timeout)


# -- over the network --------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as it arrived: ids in hex, attributes decoded to Python values."""

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    service: str
    attributes: dict[str, Any] = field(default_factory=dict)


class _Received:
    """The spans an endpoint has received, in arrival order, repeats included."""

    def __init__(self) -> None:
        self._spans: list[ReceivedSpan] = []
        self._latest: dict[tuple[str, str], ReceivedSpan] = {}
        self._lock = threading.Lock()
        self.errors: list[BaseException | None] = []
        """What broke while a request was being served (nothing, in a passing test)."""

    def _receive(self, request: ExportTraceServiceRequest) -> None:
        received = []
        for resource_spans, _scope, span in placed_spans(request):
            resource = attributes_of(resource_spans.resource.attributes)
            received.append(
                ReceivedSpan(
                    name=span.name,
                    trace_id=span.trace_id.hex(),
                    span_id=span.span_id.hex(),
                    parent_span_id=span.parent_span_id.hex(),
                    kind=span.kind,
                    service=str(resource.get("service.name", "")),
                    attributes=attributes_of(span.attributes),
                )
            )
        with self._lock:
            self._spans.extend(received)
            self._latest.update(((s.trace_id, s.span_id), s) for s in received)

    def spans(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self._spans)

    @property
    def deliveries(self) -> int:
        """Spans received, a span delivered twice counted twice."""
        with self._lock:
            return len(self._spans)

    def distinct_spans(self) -> list[ReceivedSpan]:
        """Each distinct (trace id, span id) once, as it was last delivered."""
        with self._lock:
            return list(self._latest.values())

    def distinct(self) -> int:
        with self._lock:
            return len(self._latest)

    def get(self, trace_id: bytes, span_id: bytes) -> ReceivedSpan:
        """The span with these ids as last delivered (``KeyError`` if it never arrived)."""
        with self._lock:
            return self._latest[(trace_id.hex(), span_id.hex())]

    def cost(self) -> Decimal:
        """The sum of ``gen_ai.usage.cost`` over distinct spans, as exact decimals."""
        costs = [s.attributes.get("gen_ai.usage.cost") for s in self.distinct_spans()]
        return sum((Decimal(repr(c)) for c in costs if c is not None), Decimal(0))

    def wait_for(
        self, predicate: Callable[[list[ReceivedSpan]], bool], timeout: float = 20.0
    ) -> list[ReceivedSpan]:
        """The spans once ``predicate`` holds for them; fails after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            spans = self.spans()
            if predicate(spans):
                return spans
            time.sleep(0.05)
        raise AssertionError(
            f"spans never matched within {timeout}s; got {self.spans()!r}, errors {self.errors!r}"
        )

    def wait_for_distinct(self, count: int, timeout: float) -> bool:
        """Whether ``count`` distinct spans arrived within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.distinct() >= count:
                return True
            time.sleep(0.05)
        return self.distinct() >= count

    def wait_for_span(self, trace_id: bytes, span_id: bytes, timeout: float) -> ReceivedSpan:
        """The span with these ids as last delivered, once it arrived; fails after ``timeout``."""
        key = (trace_id.hex(), span_id.hex())
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                found = self._latest.get(key)
            if found is not None:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"span {key} did not arrive within {timeout}s")
            time.sleep(0.02)


class OtlpHttpBackend(_Received):
    """An OTLP/HTTP trace endpoint (protobuf, gzip or not) that keeps every span it gets.

    It serves from ``start()`` to ``stop()`` and can start again on the same port; a stopped
    backend also drops the keep-alive connections it held, as a server going away does. While
    ``stalled`` is set it holds every request it has read without answering.
    """

    def __init__(self, port: int = 0) -> None:
        super().__init__()
        self.port = port
        self.stalled = threading.Event()
        self._connections: set[socket.socket] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL, as for ``OTEL_EXPORTER_OTLP_ENDPOINT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def endpoint(self) -> str:
        """The full URL of the traces endpoint."""
        return f"{self.url}/v1/traces"

    def start(self) -> OtlpHttpBackend:
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with backend._lock:
                    backend._connections.add(self.request)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                while backend.stalled.is_set():
                    time.sleep(0.02)
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                backend._receive(ExportTraceServiceRequest.FromString(body))
                payload = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                backend.errors.append(sys.exc_info()[1])

        server = Server(("127.0.0.1", self.port), Handler)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            connections, self._connections = self._connections, set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, backend: OtlpGrpcBackend) -> None:
        self.backend = backend

    def Export(self, request: ExportTraceServiceRequest, context: Any) -> Any:
        self.backend._receive(request)
        return ExportTraceServiceResponse()


class OtlpGrpcBackend(_Received):
    """An OTLP/gRPC trace endpoint (no TLS) that keeps every span it gets."""

    def __init__(self) -> None:
        super().__init__()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceService(self), self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")

    @property
    def url(self) -> str:
        """The endpoint, as for ``OTEL_EXPORTER_OTLP_ENDPOINT``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> OtlpGrpcBackend:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(grace=None)
