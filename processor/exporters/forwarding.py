"""OTLP metrics and logs: forwarded unchanged to the exporters that take them, or dropped.

The processor prices traces only. Metrics and logs an application sends to it are handed as they
arrived to every exporter whose ``signals`` name them, so the processor can stand in for the
application's OTLP endpoint without losing anything; with no such exporter they are accepted and
dropped, so the application sees no error.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Protocol

from google.protobuf.message import Message

from spanledger.processor.components import Backpressure, ConsumeResult
from spanledger.processor.otlp.signals import Signal

log = logging.getLogger("spanledger.processor.exporters.forwarding")


class SerializedExporter(Protocol):
    """What the forwarder needs of an exporter: take serialized requests, drain on shutdown."""

    def export_serialized(self, payload: bytes, spans: int) -> None: ...

    def shutdown(self, timeout: float) -> None: ...


class Forwarder:
    """A ``Consumer`` of one signal that queues each request on every exporter given.

    A request is serialized once for all exporters. When an exporter's queue is full the request
    is answered with backpressure so the sender retries it; exporters that had room then queue
    it again (at-least-once rather than lost).
    """

    def __init__(self, signal: Signal, exporters: Sequence[SerializedExporter]) -> None:
        self.signal = signal
        self.exporters = list(exporters)
        self._lock = threading.Lock()
        self._dropped = 0

    @property
    def dropped(self) -> int:
        """Items (data points, log records) accepted and dropped because no exporter takes them."""
        return self._dropped

    def consume(self, request: Message) -> ConsumeResult:
        items = self.signal.count(request)
        if not self.exporters:
            with self._lock:
                self._dropped += items
            return ConsumeResult()
        payload = request.SerializeToString()
        refusal: Backpressure | None = None
        for exporter in self.exporters:
            try:
                exporter.export_serialized(payload, items)
            except Backpressure as exc:
                refusal = exc
        if refusal is not None:
            raise refusal
        return ConsumeResult()

    def shutdown(self, timeout: float) -> None:
        """Let every exporter deliver its queue, sharing ``timeout`` seconds between them."""
        deadline = time.monotonic() + timeout
        for index, exporter in enumerate(self.exporters):
            share = max(0.0, deadline - time.monotonic()) / (len(self.exporters) - index)
            try:
                exporter.shutdown(share)
            except Exception:
                log.exception("shutting down %s failed", type(exporter).__name__)
