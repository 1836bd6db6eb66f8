"""OTLP/gRPC receiver: ``TraceService/Export``, and ``MetricsService`` and ``LogsService``.

Each ``Export`` method is served through a generic handler that receives the raw message bytes,
so each request is parsed exactly once and a malformed one is answered with INVALID_ARGUMENT and
a clear message. gzip-compressed messages are decompressed by gRPC itself, which enforces
``max_request_bytes`` on the decompressed size (RESOURCE_EXHAUSTED beyond it).

At most ``max_concurrent_rpcs`` calls are taken at once (gRPC refuses further ones with
RESOURCE_EXHAUSTED before reading them) and ``max_workers`` decode at once. Before a message is
decoded it is refused with UNAVAILABLE and ``RetryInfo`` while the memory limiter is above its
soft limit or when its decoding does not fit the limiter's budget; calls waiting for a worker
hold no more of their message than a fixed flow-control window (``stream_window``).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import NoReturn

import grpc
from google.protobuf.any_pb2 import Any as AnyMessage
from google.rpc.status_pb2 import Status

from spanledger.processor.components import Consumer, TraceConsumer
from spanledger.processor.intake import MemoryLimiter
from spanledger.processor.otlp.signals import Signal
from spanledger.processor.receivers.config import (
    GrpcReceiverConfig,
    all_problems,
    split_endpoint,
)
from spanledger.processor.receivers.handling import (
    Rejection,
    busy_decoding,
    check_bearer,
    check_memory,
    deliver,
    parse_protobuf,
    reserve_decoding,
    signal_consumers,
)

log = logging.getLogger("spanledger.processor.receivers")

_EMPTY_RESPONSE_BYTES = b""
"""Every signal's empty (fully accepted) response serializes to no bytes."""
_MIN_WINDOW = 64 * 1024
_MAX_WINDOW = 1024 * 1024
_STATUS_DETAILS_KEY = "grpc-status-details-bin"
_RETRY_INFO_KEY = "google.rpc.retryinfo-bin"


class GrpcReceiver:
    """Serves OTLP/gRPC exports: traces go to ``consumer``, metrics and logs to their own.

    A signal without a consumer is not served (``UNIMPLEMENTED``). With a ``limiter``, requests
    are refused while memory is above its soft limit and reserve their decoding memory.
    """

    def __init__(
        self,
        config: GrpcReceiverConfig,
        consumer: TraceConsumer,
        *,
        metrics: Consumer | None = None,
        logs: Consumer | None = None,
        limiter: MemoryLimiter | None = None,
    ) -> None:
        self.config = config
        self.consumer = consumer
        self.limiter = limiter
        self.consumers = signal_consumers(consumer, metrics, logs)
        self._server: grpc.Server | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The port actually bound (useful with an endpoint on port 0)."""
        if self._port is None:
            raise RuntimeError("the gRPC receiver is not started")
        return self._port

    def start(self) -> None:
        """Bind and serve; raise ``ValueError`` for a bad config, ``OSError`` if it cannot bind."""
        if self._server is not None:
            raise RuntimeError("the gRPC receiver is already started")
        problems = all_problems(self.config)
        if problems:
            raise ValueError("invalid OTLP/gRPC receiver config: " + "; ".join(problems))
        host, port = split_endpoint(self.config.endpoint)
        handlers = [
            grpc.method_handlers_generic_handler(
                signal.service,
                {"Export": grpc.unary_unary_rpc_method_handler(partial(self._export, signal))},
            )
            for signal in self.consumers
        ]
        limit = self.config.max_request_bytes
        interceptors = [_MemoryGate(self.limiter)] if self.limiter is not None else []
        server = grpc.server(
            ThreadPoolExecutor(self.config.max_workers, thread_name_prefix="otlp-grpc"),
            handlers=handlers,
            interceptors=interceptors,
            maximum_concurrent_rpcs=self.config.max_concurrent_rpcs,
            options=[
                ("grpc.max_receive_message_length", limit),
                ("grpc.so_reuseport", 0),
                ("grpc.http2.bdp_probe", 0),
                ("grpc.http2.lookahead_bytes", stream_window(self.limiter, self.config)),
            ],
        )
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            if self.config.tls is None:
                bound = server.add_insecure_port(address)
            else:
                bound = server.add_secure_port(address, _server_credentials(self.config))
        except RuntimeError as exc:
            raise OSError(
                f"OTLP/gRPC receiver cannot listen on {self.config.endpoint}: {exc}"
            ) from None
        if not bound:
            raise OSError(f"OTLP/gRPC receiver cannot listen on {self.config.endpoint}")
        server.start()
        self._server, self._port = server, bound
        log.info("OTLP/gRPC receiver listening on %s:%d", host, bound)

    def stop(self, grace: float = 1.0) -> None:
        """Stop accepting; let in-flight requests finish for up to ``grace`` seconds."""
        if self._server is not None:
            self._server.stop(grace).wait(grace + 1.0)
            self._server = None

    def _export(self, signal: Signal, body: bytes, context: grpc.ServicerContext) -> bytes:
        held = 0
        try:
            if self.config.bearer_token is not None:
                check_bearer(self.config.bearer_token, _metadata(context, "authorization"))
            check_memory(self.limiter)
            held = reserve_decoding(self.limiter, len(body), "protobuf")
            request = parse_protobuf(body, signal)
            del body
            response = deliver(self.consumers[signal], request, signal)
        except Rejection as rejection:
            _abort(context, rejection)
        finally:
            if self.limiter is not None:
                self.limiter.release(held)
        if response is None:
            return _EMPTY_RESPONSE_BYTES
        return response.SerializeToString()


def stream_window(limiter: MemoryLimiter | None, config: GrpcReceiverConfig) -> int:
    """Bytes of its message a call may send before the receiver reads it (HTTP/2 flow control).

    gRPC's probing would grow the window to whole messages, so that calls waiting for a worker
    would hold them all; a fixed window bounds what they hold. It is a quarter of the memory
    limiter's decoding budget shared by ``max_concurrent_rpcs`` calls, between 64 KiB and 1 MiB
    (1 MiB with the default limits: 64 calls hold at most 64 MiB). A window that takes the
    OpenTelemetry SDK's 512-span requests (about 130 kB) of a few calls at once spares the
    round trips of gRPC's initial 64 KiB: the processor under ``bench/processor_throughput.py``'s
    load made 11% fewer context switches per span with 1 MiB (``perf stat``, 10% and 100% GenAI
    spans, 2026-12-07; throughput figures in bench/RESULTS.md).
    """
    if limiter is None:
        return _MAX_WINDOW
    share = limiter.budget // (4 * config.max_concurrent_rpcs)
    return max(_MIN_WINDOW, min(_MAX_WINDOW, share))


class _MemoryGate(grpc.ServerInterceptor):
    """Refuses calls before their message is read while memory is above the limiter's soft
    limit, or while half its decoding budget is taken (large requests are being decoded: the
    size of this one is not known before it is read).

    gRPC reads a unary call's message before its handler runs; a refused call gets a handler
    that takes its request as a stream it never reads, so the message is dropped unread.
    """

    def __init__(self, limiter: MemoryLimiter) -> None:
        self.limiter = limiter

    def intercept_service(self, continuation, handler_call_details):  # type: ignore[no-untyped-def]
        limiter = self.limiter
        if limiter.refusing:
            try:
                check_memory(limiter)
            except Rejection as rejection:
                refusal = rejection
        elif limiter.reserved * 2 > limiter.budget:
            limiter.refused()
            refusal = busy_decoding(limiter)
        else:
            return continuation(handler_call_details)

        def refuse(_requests: object, context: grpc.ServicerContext) -> bytes:
            _abort(context, refusal)

        return grpc.stream_unary_rpc_method_handler(refuse)


def _abort(context: grpc.ServicerContext, rejection: Rejection) -> NoReturn:
    retry_info = rejection.retry_info()
    if retry_info is not None:
        detail = AnyMessage()
        detail.Pack(retry_info)
        status = Status(code=rejection.grpc_code.value[0], message=rejection.message)
        status.details.append(detail)
        context.set_trailing_metadata(
            (
                (_STATUS_DETAILS_KEY, status.SerializeToString()),
                (_RETRY_INFO_KEY, retry_info.SerializeToString()),
            )
        )
    context.abort(rejection.grpc_code, rejection.message)
    raise AssertionError("grpc's abort always raises")  # pragma: no cover


def _metadata(context: grpc.ServicerContext, key: str) -> str | None:
    for name, value in context.invocation_metadata() or ():
        if name == key:
            return value if isinstance(value, str) else value.decode("utf-8", "replace")
    return None


def _server_credentials(config: GrpcReceiverConfig) -> grpc.ServerCredentials:
    tls = config.tls
    assert tls is not None
    pair = (Path(tls.key_file).read_bytes(), Path(tls.cert_file).read_bytes())
    client_ca = Path(tls.client_ca_file).read_bytes() if tls.client_ca_file else None
    return grpc.ssl_server_credentials(
        [pair], root_certificates=client_ca, require_client_auth=client_ca is not None
    )
