"""Reliability test kit: traffic, a stoppable OTLP/HTTP backend, ``spanledger serve`` processes."""

from __future__ import annotations

import contextlib
import gzip
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from spanledger.processor.model import Usage
from spanledger.processor.otlp_attrs import attributes_to_dict, to_any_value
from spanledger.processor.pricing import PriceBook, PricingConfig

T0 = 1_767_225_600 * 1_000_000_000
"""2026-01-01T00:00:00Z."""
MODEL = "gpt-4o-mini"
SPANLEDGER = (sys.executable, "-m", "spanledger.processor.cli")


def trace_id(number: int) -> bytes:
    return (0x7E57_0000_0000_0000_0000_0000_0000_0000 + number).to_bytes(16, "big")


def span_id(trace: int, index: int) -> bytes:
    return ((trace << 16) + index + 1).to_bytes(8, "big")


def tokens(trace: int, index: int) -> tuple[int, int]:
    """The input and output tokens of call ``index`` of trace ``trace`` (varied, deterministic)."""
    return 100 + (trace * 7 + index * 13) % 900, 10 + (trace * 3 + index * 5) % 300


def add_trace(request: ExportTraceServiceRequest, trace: int, calls: int) -> None:
    """Append trace ``trace``: a root span and ``calls`` chat spans under it."""
    scope = request.resource_spans.add()
    to_any_value("reliability", scope.resource.attributes.add(key="service.name").value)
    spans = scope.scope_spans.add().spans
    root = spans.add(
        trace_id=trace_id(trace),
        span_id=span_id(trace, 0),
        name="agent run",
        kind=Span.SPAN_KIND_INTERNAL,
        start_time_unix_nano=T0,
        end_time_unix_nano=T0 + 10**9,
    )
    to_any_value(f"customer-{trace % 5}", root.attributes.add(key="customer").value)
    for index in range(1, calls + 1):
        chat = spans.add(
            trace_id=trace_id(trace),
            span_id=span_id(trace, index),
            parent_span_id=span_id(trace, 0),
            name=f"chat {MODEL}",
            kind=Span.SPAN_KIND_CLIENT,
            start_time_unix_nano=T0 + index * 1000,
            end_time_unix_nano=T0 + index * 1000 + 500,
        )
        input_tokens, output_tokens = tokens(trace, index)
        for key, value in (
            ("gen_ai.operation.name", "chat"),
            ("gen_ai.provider.name", "openai"),
            ("gen_ai.request.model", MODEL),
            ("gen_ai.response.model", MODEL),
            ("gen_ai.usage.input_tokens", input_tokens),
            ("gen_ai.usage.output_tokens", output_tokens),
            ("customer", f"customer-{trace % 5}"),
        ):
            to_any_value(value, chat.attributes.add(key=key).value)


def build_request(traces: range, calls: int) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    for trace in traces:
        add_trace(request, trace, calls)
    return request


def expected_cost(traces: range, calls: int) -> Decimal:
    """What the price table says the calls of ``traces`` cost, each as the float a span carries."""
    book = PriceBook(PricingConfig())
    total = Decimal(0)
    for trace in traces:
        for index in range(1, calls + 1):
            input_tokens, output_tokens = tokens(trace, index)
            usage = Usage(
                operation="chat",
                provider="openai",
                request_model=MODEL,
                response_model=MODEL,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
            )
            cost = book.price(usage, T0 + index * 1000)
            assert cost.status == "priced", cost
            total += Decimal(repr(float(cost.total)))
    return total


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Backend:
    """An OTLP/HTTP trace receiver that records every span it gets; can stop and come back, and
    stall: while ``stalled`` is set it holds every request without answering."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.stalled = threading.Event()
        self.lock = threading.Lock()
        self.spans: dict[tuple[bytes, bytes], dict[str, object]] = {}
        self.deliveries = 0
        self.requests = 0
        self.connections: set[socket.socket] = set()
        self._server: ThreadingHTTPServer | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/traces"

    def start(self) -> None:
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with backend.lock:
                    backend.connections.add(self.request)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                while backend.stalled.is_set():
                    time.sleep(0.02)
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                backend.record(ExportTraceServiceRequest.FromString(body))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}).start()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        with self.lock:
            connections, self.connections = self.connections, set()
        for connection in connections:  # a stopped backend keeps no keep-alive connection
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def record(self, request: ExportTraceServiceRequest) -> None:
        with self.lock:
            self.requests += 1
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.deliveries += 1
                        self.spans[(span.trace_id, span.span_id)] = attributes_to_dict(
                            span.attributes
                        )

    def distinct(self) -> int:
        with self.lock:
            return len(self.spans)

    def cost(self) -> Decimal:
        """The sum of ``gen_ai.usage.cost`` over distinct spans, as exact decimals."""
        with self.lock:
            costs = [a.get("gen_ai.usage.cost") for a in self.spans.values()]
        return sum((Decimal(repr(c)) for c in costs if c is not None), Decimal(0))

    def wait_for_span(self, trace: bytes, span: bytes, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if (trace, span) in self.spans:
                    return True
            time.sleep(0.02)
        return False

    def wait_for(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.distinct() >= count:
                return True
            time.sleep(0.05)
        return self.distinct() >= count


def post(
    url: str, body: bytes, content_type: str = "application/x-protobuf", **headers: str
) -> tuple[int, dict[str, str], bytes]:
    """POST once; the status, headers and body (connection failures raise ``OSError``)."""
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": content_type, **headers}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def send_until_accepted(url: str, body: bytes, timeout: float = 30.0) -> int:
    """POST like an OTLP client: retry refused connections and retryable answers; the attempts."""
    deadline = time.monotonic() + timeout
    attempts = 0
    while True:
        attempts += 1
        try:
            status, headers, _ = post(url, body)
        except OSError:
            status, headers = 0, {}
        if status == 200:
            return attempts
        assert status in (0, 429, 502, 503, 504), f"not retryable: HTTP {status}"
        if time.monotonic() > deadline:
            raise TimeoutError(f"not accepted within {timeout}s (last status {status})")
        time.sleep(min(float(headers.get("Retry-After", 0.1)), 0.5))


class Processor:
    """``spanledger serve`` in a subprocess, from a config written to ``directory``."""

    def __init__(self, directory: Path, config: dict[str, object]) -> None:
        self.directory = directory
        self.config_path = directory / "spanledger.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.log_path = directory / "processor.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, http_port: int, timeout: float = 20.0, *options: str) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [*SPANLEDGER, "serve", "--config", str(self.config_path), *options],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.directory,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log()
            try:
                with socket.create_connection(("127.0.0.1", http_port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"processor did not start:\n{self.log()}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self, timeout: float = 30.0) -> tuple[int, float]:
        """SIGTERM; the exit code and the seconds it took to exit."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout)
        return code, time.monotonic() - started

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def ensure_stopped(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def chunks(items: range, size: int) -> Iterator[range]:
    for start in range(items.start, items.stop, size):
        yield range(start, min(start + size, items.stop))
