"""OTLP/HTTP receiver: ``POST /v1/traces``, ``/v1/metrics`` and ``/v1/logs`` with binary protobuf or
OTLP/JSON, optionally gzipped.

Built on the standard library's threading HTTP server speaking HTTP/1.1 with keep-alive: each
client connection gets a thread, which suits OTLP's few long-lived exporter connections and keeps
the pipeline's synchronous ``consume`` call off any event loop (see docs/otlp.md). Responses use
the request's encoding; errors carry a ``google.rpc.Status``. Bodies are bounded before and after
decompression, and connections beyond ``max_connections`` are refused.
"""

from __future__ import annotations

import contextlib
import logging
import math
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import grpc
from google.protobuf.message import Message
from google.rpc.status_pb2 import Status

from spanledger.processor import otlp_json
from spanledger.processor.components import Consumer, TraceConsumer
from spanledger.processor.receivers.config import (
    HttpReceiverConfig,
    all_problems,
    split_endpoint,
)
from spanledger.processor.receivers.handling import (
    Rejection,
    bad_request,
    check_bearer,
    deliver,
    gunzip,
    parse_protobuf,
    signal_consumers,
    too_large,
)
from spanledger.processor.signals import LOGS, METRICS, TRACES, Signal

log = logging.getLogger("spanledger.processor.receivers")

_LINGER_BYTES = 64 * 1024 * 1024
_LINGER_SECONDS = 2.0
_MAX_CHUNK_LINE = 1024
_CHUNKED = -1
_INVALID_LENGTH = -2
_LEFT_UNREAD = -3
"""A body deliberately not read (refused before reading); the connection is closed."""


@dataclass(frozen=True)
class _Codec:
    """One OTLP/HTTP encoding: how to read a request and write a message in it."""

    content_type: str
    decode: Callable[[bytes, Signal], Message]
    encode: Callable[[Message], bytes]


def _decode_json(body: bytes, signal: Signal) -> Message:
    request_type = signal.request_type
    try:
        return otlp_json.decode_request(body, request_type)
    except otlp_json.OtlpJsonError as exc:
        raise bad_request(
            f"body is not a valid OTLP/JSON {request_type.DESCRIPTOR.name}: {exc}"
        ) from None


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


# Answers use the request's Content-Type, as the specification requires.
CODECS = {
    "application/x-protobuf": _Codec("application/x-protobuf", parse_protobuf, _serialize),
    "application/protobuf": _Codec("application/protobuf", parse_protobuf, _serialize),
    "application/json": _Codec("application/json", _decode_json, otlp_json.encode_message),
}
_EMPTY_BODIES = {codec: codec.encode(TRACES.response_type()) for codec in CODECS.values()}
"""The answer to a request accepted whole; every signal's empty response encodes the same."""


class HttpReceiver:
    """Serves OTLP/HTTP exports: traces go to ``consumer``, metrics and logs to their own.

    A signal without a consumer is not served (its path answers 404).
    """

    def __init__(
        self,
        config: HttpReceiverConfig,
        consumer: TraceConsumer,
        *,
        metrics: Consumer | None = None,
        logs: Consumer | None = None,
    ) -> None:
        self.config = config
        self.consumer = consumer
        self.consumers = signal_consumers(consumer, metrics, logs)
        paths = {TRACES: config.path, METRICS: config.metrics_path, LOGS: config.logs_path}
        self.routes = {paths[signal]: signal for signal in self.consumers}
        """The signal POSTed to each path served."""
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port actually bound (useful with an endpoint on port 0)."""
        if self._server is None:
            raise RuntimeError("the HTTP receiver is not started")
        return self._server.server_address[1]

    def start(self) -> None:
        """Bind and serve; raise ``ValueError`` for a bad config, ``OSError`` if it cannot bind."""
        if self._server is not None:
            raise RuntimeError("the HTTP receiver is already started")
        problems = all_problems(self.config)
        if problems:
            raise ValueError("invalid OTLP/HTTP receiver config: " + "; ".join(problems))
        host, port = split_endpoint(self.config.endpoint)
        tls = _server_context(self.config) if self.config.tls is not None else None
        server = _Server((host, port), self, tls)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="otlp-http",
            daemon=True,
        )
        self._thread.start()
        scheme = "https" if tls else "http"
        log.info(
            "OTLP/HTTP receiver listening on %s://%s:%d (%s)",
            scheme,
            host,
            self.port,
            ", ".join(f"{signal.name} {path}" for path, signal in self.routes.items()),
        )

    def stop(self, grace: float = 1.0) -> None:
        """Stop accepting; let in-flight requests finish for up to ``grace`` seconds, then close."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.close_connections(grace)
        if self._thread is not None:
            self._thread.join(grace + 1.0)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], receiver: HttpReceiver, tls: ssl.SSLContext | None
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.receiver = receiver
        self.config = receiver.config
        self._lock = threading.Lock()
        self._connections: dict[socket.socket, _Handler | None] = {}
        self._idle = threading.Condition(self._lock)
        self._inflight_bytes = 0
        super().__init__(address, _Handler)
        if tls is not None:
            self.socket = tls.wrap_socket(
                self.socket, server_side=True, do_handshake_on_connect=False
            )

    def server_bind(self) -> None:
        # Plain bind: HTTPServer.server_bind would look the host name up with getfqdn.
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(self.server_address)
        self.server_address = self.socket.getsockname()[:2]
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]

    def verify_request(self, request: socket.socket, client_address: object) -> bool:  # type: ignore[override]
        with self._lock:
            if len(self._connections) >= self.config.max_connections:
                log.warning(
                    "OTLP/HTTP receiver refused a connection: %d connections already open",
                    len(self._connections),
                )
                return False
            self._connections[request] = None
        return True

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        with self._idle:
            self._connections.pop(request, None)
            self._idle.notify_all()
        super().shutdown_request(request)

    def handle_error(self, request: object, client_address: object) -> None:
        log.debug("OTLP/HTTP connection from %s ended with an error", client_address, exc_info=True)

    def reserve(self, size: int) -> bool:
        """Take ``size`` bytes of the in-flight budget; False when they do not fit."""
        with self._lock:
            used = self._inflight_bytes
            if used and used + size > self.config.max_inflight_bytes:
                return False
            self._inflight_bytes = used + size
            return True

    def release(self, size: int) -> None:
        if size:
            with self._lock:
                self._inflight_bytes -= size

    def mark_busy(self, request: socket.socket, handler: _Handler | None) -> None:
        with self._idle:
            if request in self._connections:
                self._connections[request] = handler
            self._idle.notify_all()

    def close_connections(self, grace: float) -> None:
        """Wait up to ``grace`` seconds for requests in progress, then close every connection."""
        deadline = time.monotonic() + grace
        with self._idle:
            while any(h is not None for h in self._connections.values()):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._idle.wait(left)
            sockets = list(self._connections)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        self.timeout = self.server.config.idle_timeout
        super().setup()
        self._body_pending = 0  # bytes of the current request body not read yet (-1: unknown)

    # -- request dispatch ------------------------------------------------------------------

    def do_POST(self) -> None:
        self.server.mark_busy(self.request, self)
        try:
            self._handle_post()
        finally:
            self.server.mark_busy(self.request, None)

    def _handle_post(self) -> None:
        config = self.server.config
        self._body_pending = self._declared_length()
        if self._body_pending == _INVALID_LENGTH:
            self._reply_text(HTTPStatus.BAD_REQUEST, "invalid Content-Length header")
            return
        routes = self.server.receiver.routes
        signal = routes.get(urlsplit(self.path).path)
        if signal is None:
            where = ", ".join(f"{path} ({s.name})" for path, s in routes.items())
            self._reply_text(HTTPStatus.NOT_FOUND, f"not found: OTLP is POSTed to {where}")
            return
        media_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        codec = CODECS.get(media_type)
        if codec is None:
            self._reply_text(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                f"unsupported Content-Type {media_type or '(none)'!r}: "
                "use application/x-protobuf or application/json",
            )
            return
        encoding = (self.headers.get("Content-Encoding") or "identity").strip().lower()
        if encoding not in ("identity", "gzip"):
            self._reply_text(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                f"unsupported Content-Encoding {encoding!r}: use gzip or none",
            )
            return
        held = 0
        try:
            check_bearer(config.bearer_token, self.headers.get("Authorization"))
            held = self._hold(
                config.max_request_bytes if self._body_pending == _CHUNKED else self._body_pending
            )
            body = self._read_body(config.max_request_bytes)
            if encoding == "gzip":
                body = gunzip(body, config.max_request_bytes)
                held += self._hold(len(body))
            request = codec.decode(body, signal)
            response = deliver(self.server.receiver.consumers[signal], request, signal)
        except Rejection as rejection:
            self._reply_status(codec, rejection)
            return
        finally:
            self.server.release(held)
        payload = _EMPTY_BODIES[codec] if response is None else codec.encode(response)
        self._reply(HTTPStatus.OK, codec.content_type, payload)

    def _hold(self, size: int) -> int:
        """Count ``size`` bytes against the receiver's in-flight budget, or refuse with 503."""
        if size > self.server.config.max_request_bytes:
            return 0  # refused as too large when read
        if not self.server.reserve(size):
            if self._body_pending:
                self._body_pending = _LEFT_UNREAD
            raise Rejection(
                grpc.StatusCode.UNAVAILABLE,
                503,
                "the receiver holds too many request bytes at once, retry later",
                retry_after=1.0,
            )
        return size

    def _method_not_allowed(self) -> None:
        self._body_pending = self._declared_length()
        self._reply_text(
            HTTPStatus.METHOD_NOT_ALLOWED, "only POST is supported", [("Allow", "POST")]
        )

    do_GET = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _method_not_allowed

    # -- request body --------------------------------------------------------------------------

    def _declared_length(self) -> int:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return _CHUNKED
        text = (self.headers.get("Content-Length") or "0").strip()
        if not text.isdigit():
            self.close_connection = True
            return _INVALID_LENGTH
        return int(text)

    def _read_body(self, limit: int) -> bytes:
        if self._body_pending == _CHUNKED:
            return self._read_chunked(limit)
        length = self._body_pending
        if length > limit:
            raise too_large(f"body of {length} bytes is larger than the {limit}-byte limit")
        body = self.rfile.read(length)
        self._body_pending = 0
        if len(body) != length:
            self.close_connection = True
            raise bad_request(f"body ended after {len(body)} of {length} bytes")
        return body

    def _read_chunked(self, limit: int) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:  # every pass reads a chunk or fails; the size limit bounds the passes
            line = self.rfile.readline(_MAX_CHUNK_LINE)
            size_text = line.split(b";")[0].strip()
            if not size_text or size_text.strip(b"0123456789abcdefABCDEF"):
                self.close_connection = True
                raise bad_request("malformed chunked transfer encoding")
            size = int(size_text, 16)
            if size == 0:
                break
            total += size
            if total > limit:
                raise too_large(f"body is larger than the {limit}-byte limit")
            chunk = self.rfile.read(size)
            if len(chunk) != size or self.rfile.readline(_MAX_CHUNK_LINE).strip():
                self.close_connection = True
                raise bad_request("malformed chunked transfer encoding")
            chunks.append(chunk)
        for _ in range(64):  # trailer fields, up to the empty line
            if not self.rfile.readline(_MAX_CHUNK_LINE).strip():
                break
        self._body_pending = 0
        return b"".join(chunks)

    def _discard_body(self) -> None:
        """Read an unread body the request still carries, so the connection can be reused."""
        pending = self._body_pending
        if pending == 0:
            return
        if 0 < pending <= self.server.config.max_request_bytes:
            self.rfile.read(pending)
            self._body_pending = 0
            return
        self.close_connection = True

    # -- responses -------------------------------------------------------------------------------

    def _reply_status(self, codec: _Codec, rejection: Rejection) -> None:
        status = Status(code=rejection.grpc_code.value[0], message=rejection.message)
        headers = []
        if rejection.retry_after is not None:
            headers.append(("Retry-After", str(max(1, math.ceil(rejection.retry_after)))))
        if rejection.grpc_code is grpc.StatusCode.UNAUTHENTICATED:
            headers.append(("WWW-Authenticate", "Bearer"))
        self._reply(rejection.http_status, codec.content_type, codec.encode(status), headers)

    def _reply_text(
        self, status: int, message: str, headers: list[tuple[str, str]] | None = None
    ) -> None:
        body = (message + "\n").encode("utf-8")
        self._reply(status, "text/plain; charset=utf-8", body, headers)

    def _reply(
        self,
        status: int,
        content_type: str,
        body: bytes,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        self._discard_body()
        lines = [
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(body)}",
        ]
        lines += [f"{name}: {value}" for name, value in headers or ()]
        if self.close_connection:
            lines.append("Connection: close")
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        self.log_request(status, len(body))
        if self.close_connection and self._body_pending != 0:
            self._linger()

    def _linger(self) -> None:
        """Read what the client is still sending before closing, so it sees our response."""
        sock = self.connection
        if isinstance(sock, ssl.SSLSocket):
            return
        try:
            self.wfile.flush()
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(0.2)
            deadline = time.monotonic() + _LINGER_SECONDS
            drained = 0
            while drained < _LINGER_BYTES and time.monotonic() < deadline:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                drained += len(chunk)
        except OSError:
            pass

    def log_message(self, format: str, *args: object) -> None:
        log.debug("OTLP/HTTP %s - %s", self.address_string(), format % args)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.debug("OTLP/HTTP %s %s -> %s (%s bytes)", self.command, self.path, code, size)


def _server_context(config: HttpReceiverConfig) -> ssl.SSLContext:
    tls = config.tls
    assert tls is not None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(tls.cert_file, tls.key_file)
    if tls.client_ca_file:
        context.load_verify_locations(tls.client_ca_file)
        context.verify_mode = ssl.CERT_REQUIRED
    return context
