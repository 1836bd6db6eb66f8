"""The write-ahead log's view of "settled": a span has left the pipeline *and* its call is in the
ledger (written, or safe on disk).

The pipeline counts a span as settled once it handed the span to the exporters and the call to
the sinks. A database ledger writes its calls a little later, from its own thread; a request
whose calls are still in the ledger's memory queue must stay in the write-ahead log, or a
SIGKILL at that moment would lose them. ``LedgerSettling`` wraps the pipeline for the
write-ahead log: each time it is asked, it notes the pipeline's answer with the ledger's latest
batch number, and hands an answer on only once the ledger has made every batch up to that
number durable.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Protocol

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from spanledger.processor.components import ConsumeResult, SettlingConsumer

_REMEMBERED = 64
"""Answers kept while the ledger catches up; older ones are superseded by newer ones anyway."""


class Marks(Protocol):
    def received_mark(self) -> int: ...

    def durable_mark(self) -> int: ...


class LedgerSettling:
    """``pipeline`` as a ``SettlingConsumer`` that also waits for ``ledger``'s writes."""

    def __init__(self, pipeline: SettlingConsumer, ledger: Marks) -> None:
        self.pipeline = pipeline
        self.ledger = ledger
        self._lock = threading.Lock()
        self._waiting: deque[tuple[float, int]] = deque(maxlen=_REMEMBERED)
        self._settled: float | None = None

    def consume(self, request: ExportTraceServiceRequest) -> ConsumeResult:
        return self.pipeline.consume(request)

    def settled_before(self) -> float | None:
        """A time before which every accepted span left the pipeline and its call is durable."""
        answer = self.pipeline.settled_before()
        with self._lock:
            if answer is not None:
                # Read after the pipeline's answer: every batch of calls handed over before it.
                self._waiting.append((answer, self.ledger.received_mark()))
            durable = self.ledger.durable_mark()
            while self._waiting and self._waiting[0][1] <= durable:
                self._settled = self._waiting.popleft()[0]
            return self._settled
