"""The exporters' queue: requests waiting for delivery, bounded by their span count.

A queue holds the requests of one signal. For metrics and logs the ``spans`` counts are the
requests' data points or log records: the bound and the batch limits apply to those alike.

Exporters only use the ``ExportQueue`` protocol, so a persistent (on-disk) queue can replace the
in-memory one without touching delivery, batching or retries.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

from spanledger.processor.components import Backpressure


@dataclass(frozen=True, slots=True)
class QueuedRequest:
    """One serialized export request (``ExportTraceServiceRequest`` for traces) and how many
    spans (data points, log records) it carries."""

    payload: bytes
    spans: int
    position: object = field(default=None, compare=False)
    """Where a persistent queue keeps the item (None in memory)."""


class ExportQueue(Protocol):
    """What an exporter needs from its queue."""

    def put(self, item: QueuedRequest) -> None:
        """Add ``item``; raise ``Backpressure`` when there is no room for it."""
        ...

    def take(self, max_spans: int, max_bytes: int, timeout: float) -> list[QueuedRequest]:
        """Remove the oldest items up to the limits (at least one), waiting up to ``timeout``.

        Returns an empty list when nothing arrived in time or the queue is closed and empty.
        """
        ...

    def settle(self, batch: list[QueuedRequest], done: bool) -> None:
        """Report the end of a batch ``take`` returned.

        ``done``: delivered, refused or given up on for good. Not done: interrupted by shutdown;
        a persistent queue keeps it for the next start.
        """
        ...

    def close(self) -> None:
        """Refuse new items; ``take`` keeps returning what is left, then empty lists at once."""
        ...

    def drain(self) -> list[QueuedRequest]:
        """Remove and return everything left that would not survive the process.

        A persistent queue keeps its items for the next start and returns none.
        """
        ...

    @property
    def spans(self) -> int:
        """Spans currently queued."""
        ...


class MemoryQueue:
    """An in-memory FIFO holding at most ``capacity`` spans."""

    def __init__(self, capacity: int, retry_after: float = 1.0) -> None:
        self.capacity = capacity
        self.retry_after = retry_after
        self._items: deque[QueuedRequest] = deque()
        self._spans = 0
        self._closed = False
        self._ready = threading.Condition()

    @property
    def spans(self) -> int:
        return self._spans

    def put(self, item: QueuedRequest) -> None:
        with self._ready:
            if self._closed:
                raise Backpressure("exporter queue is closed", self.retry_after)
            # A request larger than the whole queue is still taken when the queue is empty.
            if self._items and self._spans + item.spans > self.capacity:
                raise Backpressure(
                    f"exporter queue is full ({self._spans} of {self.capacity} spans)",
                    self.retry_after,
                )
            self._items.append(item)
            self._spans += item.spans
            self._ready.notify()

    def take(self, max_spans: int, max_bytes: int, timeout: float) -> list[QueuedRequest]:
        deadline = time.monotonic() + timeout
        with self._ready:
            while not self._items:
                left = deadline - time.monotonic()
                if self._closed or left <= 0:
                    return []
                self._ready.wait(left)
            batch = [self._items.popleft()]
            spans, size = batch[0].spans, len(batch[0].payload)
            while self._items:
                head = self._items[0]
                if spans + head.spans > max_spans or size + len(head.payload) > max_bytes:
                    break
                batch.append(self._items.popleft())
                spans += head.spans
                size += len(head.payload)
            self._spans -= spans
            return batch

    def settle(self, batch: list[QueuedRequest], done: bool) -> None:
        """Nothing to do: a taken item is already gone from memory."""

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify_all()

    def drain(self) -> list[QueuedRequest]:
        with self._ready:
            items = list(self._items)
            self._items.clear()
            self._spans = 0
            return items
