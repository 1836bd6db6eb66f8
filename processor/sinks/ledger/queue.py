"""Rows on their way to a database ledger: in memory up to a bound, then in files on disk.

``RowQueue.put`` takes the rows of one ``record`` call as a batch. Batches stay in memory
while they hold at most ``memory_rows`` rows in all; beyond that, and while the database cannot
be written (``spill_all``), they are appended to an on-disk queue (the exporters' segment
files), where they also survive a restart. Without a directory, batches beyond the memory bound
push out the oldest ones, which are logged and counted as dropped.

Each batch gets a sequence number when it arrives. ``durable_mark`` is the highest number up to
which every batch is written, on disk, or given up on: the write-ahead log may forget a
request once the calls of its spans are past that mark.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from spanledger.processor.components import Backpressure
from spanledger.processor.exporters import DiskQueue, DiskQueueConfig, QueuedRequest
from spanledger.processor.sinks.ledger.config import LedgerQueueConfig
from spanledger.processor.sinks.ledger.rows import Row

log = logging.getLogger("spanledger.processor.sinks.ledger")

DROP_LOG_EVERY = 10.0
"""Seconds between two log lines about dropped rows."""


@dataclass(slots=True)
class RowBatch:
    """Rows handed over together. ``seq`` 0 and a ``position``: read back from disk."""

    seq: int
    rows: list[Row]
    received: float
    """Wall-clock seconds when the rows arrived (for the lag metric)."""
    position: QueuedRequest | None = None


def _encode(batch: RowBatch) -> bytes:
    return json.dumps({"t": batch.received, "rows": batch.rows}, separators=(",", ":")).encode()


def _decode(item: QueuedRequest) -> RowBatch:
    data = json.loads(item.payload)
    return RowBatch(0, [tuple(row) for row in data["rows"]], float(data["t"]), item)


class RowQueue:
    """Bounded FIFO of row batches, spilling to ``config.directory`` when one is set."""

    def __init__(
        self,
        config: LedgerQueueConfig,
        location: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.location = location
        self._clock = clock
        self._ready = threading.Condition()
        self._memory: deque[RowBatch] = deque()
        self._memory_rows = 0
        self._taken: list[RowBatch] = []
        self._received = 0
        self._spill_all = False
        self._closed = False
        self.dropped_rows = 0
        self.spilled_rows = 0
        self._reported_drops = 0
        self._lost_from: int | None = None
        """The first batch ``release`` could not keep: never durable, so the write-ahead log
        keeps its request for the next start."""
        self._next_drop_log = 0.0
        self._disk: DiskQueue | None = None
        self._disk_times: deque[tuple[float, int]] = deque()
        """(received, rows) of batches on disk not taken yet, oldest first."""
        if config.directory:
            self._disk = DiskQueue(
                DiskQueueConfig(
                    directory=config.directory, max_bytes=config.max_bytes, sync=config.sync
                )
            )
            if self._disk.spans:
                log.info(
                    "ledger %s: %d rows left on disk by an earlier run will be written",
                    location,
                    self._disk.spans,
                )
                self._disk_times.append((clock(), self._disk.spans))

    # Putting.

    def put(self, rows: list[Row]) -> None:
        """Queue ``rows`` as one batch; never blocks, never raises for lack of room."""
        if not rows:
            return
        with self._ready:
            self._received += 1
            batch = RowBatch(self._received, rows, self._clock())
            over = self._memory_rows + len(rows) > self.config.memory_rows
            if (self._spill_all or over) and self._spill(batch):
                self._ready.notify()
                return
            self._memory.append(batch)
            self._memory_rows += len(rows)
            self._shed()
            self._ready.notify()

    def _spill(self, batch: RowBatch) -> bool:
        """Append ``batch`` to the disk queue; False when there is none or it is full."""
        if self._disk is None:
            return False
        try:
            self._disk.put(QueuedRequest(_encode(batch), len(batch.rows)))
        except Backpressure as exc:
            log.error("ledger %s: cannot spill %d rows: %s", self.location, len(batch.rows), exc)
            return False
        self._disk_times.append((batch.received, len(batch.rows)))
        self.spilled_rows += len(batch.rows)
        return True

    def _shed(self) -> None:
        """Drop the oldest batches in memory while they hold more than the bound (one log line
        at first, then one every ``DROP_LOG_EVERY`` seconds while it goes on)."""
        while self._memory_rows > self.config.memory_rows and len(self._memory) > 1:
            oldest = self._memory.popleft()
            self._memory_rows -= len(oldest.rows)
            self.dropped_rows += len(oldest.rows)
        now = time.monotonic()
        unreported = self.dropped_rows - self._reported_drops
        if unreported and now >= self._next_drop_log:
            self._reported_drops = self.dropped_rows
            self._next_drop_log = now + DROP_LOG_EVERY
            log.error(
                "ledger %s: dropped %d unwritten rows (%d in all): more than queue.memory_rows "
                "(%d) wait and %s",
                self.location,
                unreported,
                self.dropped_rows,
                self.config.memory_rows,
                "the spill directory is full" if self._disk else "no queue.directory is set",
            )

    def spill_all(self, on: bool) -> None:
        """While ``on`` (the database cannot be written), put new batches and those waiting in
        memory on disk, so that they survive the process and free the memory."""
        with self._ready:
            self._spill_all = on
            if not on or self._disk is None:
                return
            while self._memory and self._spill(self._memory[0]):
                self._memory_rows -= len(self._memory.popleft().rows)

    # Taking.

    def take(self, max_rows: int, timeout: float) -> list[RowBatch]:
        """The oldest batches, whole, up to ``max_rows`` rows (at least one batch): memory first,
        then disk. Empty when nothing came within ``timeout`` or the queue is closed and empty.
        Taken batches count as waiting until ``done``."""
        deadline = time.monotonic() + timeout
        with self._ready:
            while True:
                taken = self._take_memory(max_rows) or self._take_disk(max_rows)
                if taken:
                    self._taken += taken
                    return taken
                left = deadline - time.monotonic()
                if self._closed or left <= 0:
                    return []
                self._ready.wait(left)

    def _take_memory(self, max_rows: int) -> list[RowBatch]:
        taken: list[RowBatch] = []
        rows = 0
        while self._memory and (not taken or rows + len(self._memory[0].rows) <= max_rows):
            batch = self._memory.popleft()
            taken.append(batch)
            rows += len(batch.rows)
        self._memory_rows -= rows
        return taken

    def _take_disk(self, max_rows: int) -> list[RowBatch]:
        if self._disk is None or not self._disk.spans:
            return []
        batches = [_decode(item) for item in self._disk.take(max_rows, 1 << 62, 0)]
        rows = sum(len(batch.rows) for batch in batches)
        while rows and self._disk_times:
            received, count = self._disk_times[0]
            if count > rows:
                self._disk_times[0] = (received, count - rows)
                break
            self._disk_times.popleft()
            rows -= count
        return batches

    def spill_taken(self, batches: list[RowBatch]) -> list[RowBatch]:
        """Move taken, unwritten batches from memory to disk, where they wait their turn again
        and survive the process; returns the batches that stay the writer's."""
        if self._disk is None:
            return batches
        kept = []
        with self._ready:
            for batch in batches:
                if batch.position is None and self._spill(batch):
                    self._taken.remove(batch)
                else:
                    kept.append(batch)
        return kept

    def done(self, batches: list[RowBatch]) -> None:
        """The ``batches`` are written (or given up on): forget them, on disk too."""
        with self._ready:
            for batch in batches:
                self._taken.remove(batch)
                if batch.position is not None and self._disk is not None:
                    self._disk.settle([batch.position], True)

    # Reading the state.

    @property
    def pending_rows(self) -> int:
        """Rows not written yet: in memory, on disk, and being written."""
        with self._ready:
            disk = self._disk.spans if self._disk is not None else 0
            return self._memory_rows + disk + sum(len(b.rows) for b in self._taken)

    def oldest(self) -> float | None:
        """When the oldest row not written yet arrived (wall-clock seconds), or None."""
        with self._ready:
            times = [b.received for b in self._taken]
            if self._memory:
                times.append(self._memory[0].received)
            if self._disk_times:
                times.append(self._disk_times[0][0])
            return min(times, default=None)

    def received_mark(self) -> int:
        """The sequence number of the latest batch put."""
        with self._ready:
            return self._received

    def durable_mark(self) -> int:
        """Every batch up to this sequence number is written, on disk, or given up on."""
        with self._ready:
            waiting = [b.seq for b in self._taken if b.position is None]
            if self._memory:
                waiting.append(self._memory[0].seq)
            if self._lost_from is not None:
                waiting.append(self._lost_from)
            return min(waiting) - 1 if waiting else self._received

    # Ending.

    def close(self) -> None:
        """Refuse nothing, but wake the writer: ``take`` returns at once when empty."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()

    def release(self) -> int:
        """At the end: put what is left in memory (taken or not) on disk; release the files.

        Returns how many rows could not be kept (no directory, or it is full); a write-ahead
        log keeps the requests they came from (``durable_mark`` stays below them).
        """
        with self._ready:
            left = [b for b in self._taken if b.position is None] + list(self._memory)
            self._taken.clear()
            self._memory.clear()
            self._memory_rows = 0
            unkept = [b for b in left if not self._spill(b)]
            lost = sum(len(b.rows) for b in unkept)
            if unkept:
                self._lost_from = min(b.seq for b in unkept)
            if self._disk is not None:
                self._disk.drain()
            self.dropped_rows += lost
            return lost
