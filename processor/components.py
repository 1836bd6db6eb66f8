"""The seams between the processor's components, in the spirit of the Collector's consumer API.

Receivers decode OTLP and hand an ``ExportTraceServiceRequest`` to a ``TraceConsumer``. The
pipeline prices and rolls up, then hands finished spans and their counted calls to one
``TraceOutput``: in the service, the fan-out, which forwards the spans to ``SpanExporter``s and
the calls to ``CallSink``s (metrics, ledger, budgets). OTLP metrics and logs go to a
``Consumer`` of their own, which forwards them unchanged. Errors say whether the sender may
retry; each edge (gRPC status, HTTP status) translates them once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from google.protobuf.message import Message
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from spanledger.processor.model import CountedCall

if TYPE_CHECKING:
    from spanledger.processor.rollup.buffer import HeldSpan


class Backpressure(Exception):
    """The pipeline is full; the sender should retry after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(Exception):
    """The data can never be accepted; retrying the same request will fail the same way."""


@dataclass(slots=True)
class ConsumeResult:
    """OTLP partial success: how many items were rejected and why (empty when all accepted).

    ``rejected_spans`` counts the request's items: spans, or data points or log records when the
    request carries metrics or logs.
    """

    rejected_spans: int = 0
    error_message: str = ""


class Consumer(Protocol):
    """Takes a decoded OTLP export request of one signal; raises like ``TraceConsumer``."""

    def consume(self, request: Message) -> ConsumeResult: ...


class TraceConsumer(Protocol):
    """Takes a decoded OTLP trace request; raises ``Backpressure`` or ``PermanentError``."""

    def consume(self, request: ExportTraceServiceRequest) -> ConsumeResult: ...


class TraceOutput(Protocol):
    """Takes the spans of flushed traces, annotated and encoded, with the calls counted in them.

    The pipeline calls ``deliver`` from one thread at a time; a full output may block it (the
    pipeline's receivers push back meanwhile).
    """

    def deliver(self, spans: list[HeldSpan], calls: list[CountedCall]) -> None: ...


class SpanExporter(Protocol):
    """Forwards finished spans downstream. ``export`` must not block for long: it enqueues."""

    def export(self, request: ExportTraceServiceRequest) -> None: ...

    def shutdown(self, timeout: float) -> None:
        """Deliver what is queued within ``timeout`` seconds, then stop."""
        ...


class CallSink(Protocol):
    """Receives counted calls once their trace is complete (metrics, ledger, budgets)."""

    def record(self, calls: Sequence[CountedCall]) -> None: ...

    def shutdown(self, timeout: float) -> None: ...


class SettlingConsumer(TraceConsumer, Protocol):
    """A consumer that can say up to when everything it accepted has left it."""

    def settled_before(self) -> float | None: ...
