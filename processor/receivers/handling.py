"""What both receivers share: handing a request to the consumer and turning failures into statuses.

A ``Rejection`` carries the gRPC code and the HTTP status the OTLP specification asks for, so each
edge translates errors the same way: bad data is not retryable (INVALID_ARGUMENT / 400),
backpressure is (UNAVAILABLE / 503 with a retry delay), and a fault in the processor itself is
reported as INTERNAL / 500 after being logged with its traceback.
"""

from __future__ import annotations

import logging
import math
import zlib

import grpc
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.rpc.error_details_pb2 import RetryInfo

from spanledger.processor.components import Backpressure, Consumer, PermanentError
from spanledger.processor.httpserver import bearer_matches
from spanledger.processor.intake import EXPANSION, MIB, MemoryLimiter
from spanledger.processor.otlp.signals import LOGS, METRICS, TRACES, Signal

log = logging.getLogger("spanledger.processor.receivers")


class Rejection(Exception):
    """A request the receiver refuses, with the status to answer in either protocol."""

    def __init__(
        self,
        grpc_code: grpc.StatusCode,
        http_status: int,
        message: str,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.grpc_code = grpc_code
        self.http_status = http_status
        self.message = message
        self.retry_after = retry_after
        self.close = False
        """Over HTTP: close the connection after answering (the request was not read whole)."""

    def retry_info(self) -> RetryInfo | None:
        """``google.rpc.RetryInfo`` for throttling responses, else None."""
        if self.retry_after is None:
            return None
        seconds = max(0.0, self.retry_after)
        whole = math.floor(seconds)
        return RetryInfo(retry_delay=Duration(seconds=whole, nanos=round((seconds - whole) * 1e9)))


def bad_request(message: str) -> Rejection:
    return Rejection(grpc.StatusCode.INVALID_ARGUMENT, 400, message)


def too_large(message: str) -> Rejection:
    return Rejection(grpc.StatusCode.RESOURCE_EXHAUSTED, 413, message)


def unauthenticated() -> Rejection:
    return Rejection(grpc.StatusCode.UNAUTHENTICATED, 401, "missing or invalid bearer token")


def check_bearer(expected: str | None, authorization: str | None) -> None:
    """Raise a ``Rejection`` unless ``authorization`` is ``Bearer <expected>`` (if one is set)."""
    if not bearer_matches(expected, authorization):
        raise unauthenticated()


def check_memory(limiter: MemoryLimiter | None) -> None:
    """Refuse (retryable) while memory is above the memory limiter's soft limit."""
    if limiter is not None and limiter.refusing:
        limiter.refused()
        raise Rejection(
            grpc.StatusCode.UNAVAILABLE,
            503,
            "the processor's memory use is above its memory_limiter soft limit, retry later",
            retry_after=limiter.retry_after,
        )


def reserve_decoding(limiter: MemoryLimiter | None, size: int, encoding: str) -> int:
    """Reserve the memory decoding ``size`` bytes of ``encoding`` needs; the bytes to release.

    ``encoding`` is ``protobuf`` or ``json``. A request that does not fit now is refused as
    retryable; one that could never fit as too large.
    """
    if limiter is None or size <= 0:
        return 0
    need = size * EXPANSION[encoding]
    if not limiter.can_ever_fit(need):
        raise too_large(
            f"a {size}-byte {encoding} request needs about {need // MIB} MiB to decode, more "
            "than the memory_limiter allows; send smaller requests"
        )
    if not limiter.reserve(need):
        raise busy_decoding(limiter)
    return need


def busy_decoding(limiter: MemoryLimiter) -> Rejection:
    """The retryable refusal of a request that does not fit the limiter's decoding budget now."""
    return Rejection(
        grpc.StatusCode.UNAVAILABLE,
        503,
        "the processor is decoding as much as its memory_limiter allows, retry later",
        retry_after=limiter.retry_after,
    )


def parse_protobuf(body: bytes, signal: Signal = TRACES) -> Message:
    """Decode the signal's binary export request or raise a 400 / INVALID_ARGUMENT rejection."""
    request_type = signal.request_type
    try:
        return request_type.FromString(body)
    except Exception as exc:  # protobuf raises DecodeError, or ValueError on some malformed input
        raise bad_request(
            f"body is not a valid protobuf {request_type.DESCRIPTOR.name}: {exc}"
        ) from None


def gunzip(body: bytes, limit: int) -> bytes:
    """Decompress a gzip body, refusing to produce more than ``limit`` bytes (gzip bombs)."""
    parts: list[bytes] = []
    produced = 0
    remaining = body
    while True:  # one pass per gzip member; each pass consumes input, so this ends
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            data = inflater.decompress(remaining, limit - produced + 1)
        except zlib.error as exc:
            raise bad_request(f"body is not valid gzip: {exc}") from None
        produced += len(data)
        if produced > limit or inflater.unconsumed_tail:
            raise too_large(f"decompressed body is larger than the {limit}-byte limit")
        if not inflater.eof:
            raise bad_request("body is not valid gzip: the compressed stream is truncated")
        parts.append(data)
        remaining = inflater.unused_data
        if not remaining:
            return b"".join(parts)


def deliver(consumer: Consumer, request: Message, signal: Signal = TRACES) -> Message | None:
    """Hand ``request`` to the consumer; map its outcome to a response or a ``Rejection``.

    None means accepted whole: the answer is the signal's empty response.
    """
    try:
        result = consumer.consume(request)
    except Backpressure as exc:
        raise Rejection(
            grpc.StatusCode.UNAVAILABLE,
            503,
            f"processor is busy, retry later: {exc}",
            retry_after=exc.retry_after,
        ) from None
    except PermanentError as exc:
        raise bad_request(f"data rejected: {exc}") from None
    except Exception:
        log.exception("the pipeline failed on an OTLP request; it was not accepted")
        raise Rejection(
            grpc.StatusCode.INTERNAL,
            500,
            "internal error in the processor while handling the request (see its log)",
        ) from None
    if result is None or (not result.rejected_spans and not result.error_message):
        return None
    response = signal.response_type()
    partial = response.partial_success  # type: ignore[attr-defined]
    setattr(partial, signal.rejected_field, result.rejected_spans)
    partial.error_message = result.error_message
    return response


def signal_consumers(
    traces: Consumer, metrics: Consumer | None, logs: Consumer | None
) -> dict[Signal, Consumer]:
    """The consumer of each signal a receiver serves, traces first; None: not served."""
    found = {TRACES: traces, METRICS: metrics, LOGS: logs}
    return {signal: consumer for signal, consumer in found.items() if consumer is not None}
