"""OTLP/HTTP receiver: ``POST /v1/traces``, ``/v1/metrics`` and ``/v1/logs`` with binary protobuf or
OTLP/JSON, optionally gzipped.

Served by aiohttp (``spanledger.processor.httpserver``: connection limit, idle and header timeouts).
The event loop only reads requests and writes answers; decoding and handing a request to the
pipeline run on a pool of ``max_workers`` threads, so the loop keeps accepting, timing idle
connections out and refusing at once while requests are decoded. Responses use the request's
encoding; errors carry a ``google.rpc.Status``. Before a body is read, the request is refused
with 503 and ``Retry-After`` while the memory limiter is above its soft limit, or when its
declared length does not fit the memory limiter's decoding budget or ``max_inflight_bytes``;
bodies are bounded before and after decompression.
"""

from __future__ import annotations

import asyncio
import logging
import math
import ssl
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http import HTTPStatus

import grpc
from aiohttp import web
from google.protobuf.message import Message
from google.rpc.status_pb2 import Status

from spanledger.processor.components import Consumer, TraceConsumer
from spanledger.processor.httpserver import BackgroundServer, read_body
from spanledger.processor.intake import MemoryLimiter
from spanledger.processor.otlp import json as otlp_json
from spanledger.processor.otlp.signals import LOGS, METRICS, TRACES, Signal
from spanledger.processor.receivers.config import (
    HttpReceiverConfig,
    all_problems,
    split_endpoint,
)
from spanledger.processor.receivers.handling import (
    Rejection,
    bad_request,
    check_bearer,
    check_memory,
    deliver,
    gunzip,
    parse_protobuf,
    reserve_decoding,
    signal_consumers,
    too_large,
)

log = logging.getLogger("spanledger.processor.receivers")


@dataclass(frozen=True)
class _Codec:
    """One OTLP/HTTP encoding: how to read a request and write a message in it."""

    content_type: str
    kind: str
    """``protobuf`` or ``json``, as the memory limiter's expansion table names them."""
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
    "application/x-protobuf": _Codec(
        "application/x-protobuf", "protobuf", parse_protobuf, _serialize
    ),
    "application/protobuf": _Codec("application/protobuf", "protobuf", parse_protobuf, _serialize),
    "application/json": _Codec("application/json", "json", _decode_json, otlp_json.encode_message),
}
_EMPTY_BODIES = {codec: codec.encode(TRACES.response_type()) for codec in CODECS.values()}
"""The answer to a request accepted whole; every signal's empty response encodes the same."""


class _Budget:
    """Request bytes held at once across connections (``max_inflight_bytes``); one request is
    always let in. Used from the event loop only."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.used = 0

    def reserve(self, size: int) -> bool:
        if self.used and self.used + size > self.capacity:
            return False
        self.used += size
        return True

    def release(self, size: int) -> None:
        self.used -= size


class HttpReceiver:
    """Serves OTLP/HTTP exports: traces go to ``consumer``, metrics and logs to their own.

    A signal without a consumer is not served (its path answers 404). With a ``limiter``,
    requests are refused while memory is above its soft limit and reserve their decoding memory.
    """

    def __init__(
        self,
        config: HttpReceiverConfig,
        consumer: TraceConsumer,
        *,
        metrics: Consumer | None = None,
        logs: Consumer | None = None,
        limiter: MemoryLimiter | None = None,
    ) -> None:
        self.config = config
        self.consumer = consumer
        self.consumers = signal_consumers(consumer, metrics, logs)
        self.limiter = limiter
        paths = {TRACES: config.path, METRICS: config.metrics_path, LOGS: config.logs_path}
        self.routes = {paths[signal]: signal for signal in self.consumers}
        """The signal POSTed to each path served."""
        self._server: BackgroundServer | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._budget = _Budget(config.max_inflight_bytes)

    @property
    def port(self) -> int:
        """The port actually bound (useful with an endpoint on port 0)."""
        if self._server is None:
            raise RuntimeError("the HTTP receiver is not started")
        return self._server.port

    @property
    def server(self) -> BackgroundServer | None:
        """The HTTP server, once started (its connection counters)."""
        return self._server

    def start(self) -> None:
        """Bind and serve; raise ``ValueError`` for a bad config, ``OSError`` if it cannot bind."""
        if self._server is not None:
            raise RuntimeError("the HTTP receiver is already started")
        problems = all_problems(self.config)
        if problems:
            raise ValueError("invalid OTLP/HTTP receiver config: " + "; ".join(problems))
        host, port = split_endpoint(self.config.endpoint)
        tls = _server_context(self.config) if self.config.tls is not None else None
        app = web.Application(handler_args={"max_field_size": 16 * 1024, "auto_decompress": False})
        app.router.add_route("*", "/{path:.*}", self._handle)
        server = BackgroundServer(
            "OTLP/HTTP receiver",
            app,
            host,
            port,
            max_connections=self.config.max_connections,
            idle_timeout=self.config.idle_timeout,
            ssl_context=tls,
        )
        self._pool = ThreadPoolExecutor(self.config.max_workers, thread_name_prefix="otlp-http")
        try:
            server.start()
        except OSError:
            self._pool.shutdown(wait=False)
            raise
        self._server = server
        log.info(
            "OTLP/HTTP receiver listening on %s://%s:%d (%s)",
            "https" if tls else "http",
            host,
            self.port,
            ", ".join(f"{signal.name} {path}" for path, signal in self.routes.items()),
        )

    def stop(self, grace: float = 1.0) -> None:
        """Stop accepting; let in-flight requests finish for up to ``grace`` seconds, then close."""
        server, self._server = self._server, None
        if server is None:
            return
        server.stop(grace)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    # -- one request ----------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            return _text(HTTPStatus.METHOD_NOT_ALLOWED, "only POST is supported", Allow="POST")
        signal = self.routes.get(request.path)
        if signal is None:
            where = ", ".join(f"{path} ({s.name})" for path, s in self.routes.items())
            return _text(HTTPStatus.NOT_FOUND, f"not found: OTLP is POSTed to {where}")
        media_type = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        codec = CODECS.get(media_type)
        if codec is None:
            return _text(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                f"unsupported Content-Type {media_type or '(none)'!r}: "
                "use application/x-protobuf or application/json",
            )
        encoding = (request.headers.get("Content-Encoding") or "identity").strip().lower()
        if encoding not in ("identity", "gzip"):
            return _text(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                f"unsupported Content-Encoding {encoding!r}: use gzip or none",
            )
        held: list[int] = [0, 0]  # bytes of max_inflight_bytes, bytes of the limiter's budget
        try:
            check_bearer(self.config.bearer_token, request.headers.get("Authorization"))
            check_memory(self.limiter)
            body = await self._read(request, codec, held)
            assert self._pool is not None
            loop = asyncio.get_running_loop()
            response = await loop.run_in_executor(
                self._pool, self._decode_and_deliver, body, encoding == "gzip", codec, signal, held
            )
        except Rejection as rejection:
            if rejection.close:  # the body stopped: answer, then drop the connection at once
                response = _status(codec, rejection, close=True)
                await response.prepare(request)
                await response.write_eof()
                request.protocol.force_close()
                return response
            # Too large: answered before the body is read; aiohttp reads and drops the rest
            # for a while before closing, so that the sender sees the answer.
            return _status(codec, rejection, close=rejection.http_status == 413)
        finally:
            self._budget.release(held[0])
            if self.limiter is not None:
                self.limiter.release(held[1])
        payload = _EMPTY_BODIES[codec] if response is None else codec.encode(response)
        return web.Response(body=payload, content_type=codec.content_type)

    async def _read(self, request: web.Request, codec: _Codec, held: list[int]) -> bytes:
        """Reserve what the declared body needs, then read it; refuse before reading if it
        cannot be taken now."""
        limit = self.config.max_request_bytes
        declared = request.content_length
        if declared is not None and declared > limit:
            raise too_large(f"body of {declared} bytes is larger than the {limit}-byte limit")
        size = limit if declared is None else declared
        if not self._budget.reserve(size):
            raise Rejection(
                grpc.StatusCode.UNAVAILABLE,
                503,
                "the receiver holds too many request bytes at once, retry later",
                retry_after=1.0,
            )
        held[0] = size
        held[1] = reserve_decoding(self.limiter, declared or 0, codec.kind)
        try:
            body = await read_body(request, limit, self.config.idle_timeout)
        except TimeoutError:
            stalled = bad_request(f"the body stopped arriving for {self.config.idle_timeout:g}s")
            stalled.close = True
            raise stalled from None
        if body is None:
            raise too_large(f"body is larger than the {limit}-byte limit")
        if declared is None:  # chunked: reserve now that the size is known
            held[1] = reserve_decoding(self.limiter, len(body), codec.kind)
        return body

    def _decode_and_deliver(
        self, body: bytes, gzipped: bool, codec: _Codec, signal: Signal, held: list[int]
    ) -> Message | None:
        """On a worker thread: inflate, decode and hand to the consumer."""
        if gzipped:
            compressed = len(body)
            body = gunzip(body, self.config.max_request_bytes)
            more = reserve_decoding(self.limiter, len(body) - compressed, codec.kind)
            held[1] += more
        request = codec.decode(body, signal)
        del body
        return deliver(self.consumers[signal], request, signal)


def _text(status: int, message: str, **headers: str) -> web.Response:
    return web.Response(
        status=status, text=message + "\n", content_type="text/plain", headers=headers
    )


def _status(codec: _Codec, rejection: Rejection, close: bool = False) -> web.Response:
    status = Status(code=rejection.grpc_code.value[0], message=rejection.message)
    headers = {}
    if rejection.retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(rejection.retry_after)))
    if rejection.grpc_code is grpc.StatusCode.UNAUTHENTICATED:
        headers["WWW-Authenticate"] = "Bearer"
    response = web.Response(
        status=rejection.http_status,
        body=codec.encode(status),
        content_type=codec.content_type,
        headers=headers,
    )
    if close:
        response.force_close()
    return response


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
