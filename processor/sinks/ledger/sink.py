"""``LedgerSink``: writes every counted call to the ledger and applies the retention period.

With an SQLite file the calls are written as they arrive, on the pipeline's thread (a local
file takes them in microseconds). With a PostgreSQL database they are queued (``RowQueue``) and
written in batches by a thread of their own (``LedgerWriter``), so a slow or absent database
never holds the pipeline up; the queue's length and age are reported as metrics.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from spanledger.processor.model import CountedCall
from spanledger.processor.sinks.ledger.backends import open_ledger
from spanledger.processor.sinks.ledger.base import NANOS_PER_DAY
from spanledger.processor.sinks.ledger.config import LedgerConfig, LedgerQueueConfig
from spanledger.processor.sinks.ledger.queue import RowQueue
from spanledger.processor.sinks.ledger.rows import call_rows
from spanledger.processor.sinks.ledger.writer import LedgerWriter

log = logging.getLogger(__name__)

RETENTION_EVERY = 3600.0
"""Seconds between two retention passes while the processor runs."""
MAX_PENDING = 1_000_000
"""Calls kept in memory while an SQLite ledger cannot be written, before the oldest are dropped."""
PENDING = "spanledger.ledger.pending"
LAG = "spanledger.ledger.lag"
REJECTED = "spanledger.ledger.rejected"
DROPPED = "spanledger.ledger.dropped"

__all__ = ["LedgerConfig", "LedgerQueueConfig", "LedgerSink"]


class LedgerSink:
    """A ``CallSink`` that stores one row per counted call, once per (trace_id, span_id).

    A failed write (disk full, file locked too long, database down) is logged and the calls are
    kept and written later, so a passing problem loses nothing. A call the database refuses
    (a value no column holds) is set aside with one log line and counted; it never holds up
    the calls after it.
    """

    def __init__(self, config: LedgerConfig, tag_keys: Sequence[str]) -> None:
        problems = config.problems()
        if problems or not config.enabled:
            raise ValueError(
                "invalid ledger configuration: " + ("; ".join(problems) or "no path or url")
            )
        self.config = config
        self.tag_keys = tuple(tag_keys)
        self.location = config.location()
        self.ledger = open_ledger(config, create=True, wait_for_server=True)
        self._lock = threading.Lock()
        self._next_retention = 0.0
        self._received = 0
        self._pending: list[CountedCall] = []
        self._pending_since: tuple[int, float] | None = None
        """(sequence number, wall time) of the first call batch an SQLite write left waiting."""
        self.dropped_rows = 0
        self.queue: RowQueue | None = None
        self.writer: LedgerWriter | None = None
        if config.shared:
            self.queue = RowQueue(config.queue, self.location)
            self.writer = LedgerWriter(
                self.ledger,
                self.queue,
                config.queue.batch_rows,
                scrub=getattr(self.ledger, "scrub", str),
                every_pass=self._retention_due,
            )
        else:
            self._apply_retention()

    # The CallSink protocol.

    def record(self, calls: Sequence[CountedCall]) -> None:
        """Write (SQLite) or queue (PostgreSQL) ``calls``; never raises."""
        if self.queue is not None:
            self.queue.put(call_rows(calls))
            return
        with self._lock:
            self._received += 1
            if not self._pending:
                self._pending_since = (self._received, time.time())
            self._pending.extend(calls)
            self._flush()
            self._retention_due()

    def shutdown(self, timeout: float) -> None:
        """Write what is still waiting, retrying until ``timeout`` seconds have passed.

        A PostgreSQL ledger keeps what it could not write in its queue directory (when one is
        set) for the next start.
        """
        if self.writer is not None and self.queue is not None:
            self.writer.stop(timeout)
            lost = self.queue.release()
            if lost:
                log.error(
                    "ledger %s: %d calls could not be written or kept on disk (a write-ahead "
                    "log keeps their requests for the next start)",
                    self.location,
                    lost,
                )
            elif self.queue.pending_rows:
                log.warning(
                    "ledger %s: %d calls stay queued on disk for the next start",
                    self.location,
                    self.queue.pending_rows,
                )
            self.ledger.close()
            return
        deadline = time.monotonic() + max(timeout, 0.0)
        with self._lock:
            while self._pending and not self._flush() and time.monotonic() < deadline:
                time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
            if self._pending:
                log.error(
                    "ledger %s: %d calls could not be written", self.location, len(self._pending)
                )
            self.ledger.close()

    # What the write-ahead log and the metrics ask.

    def received_mark(self) -> int:
        """A number that grows with every ``record`` call (see ``durable_mark``)."""
        if self.queue is not None:
            return self.queue.received_mark()
        with self._lock:
            return self._received

    def durable_mark(self) -> int:
        """Every ``record`` call up to this number is written, on disk, or given up on."""
        if self.queue is not None:
            return self.queue.durable_mark()
        with self._lock:
            if self._pending_since is not None:
                return self._pending_since[0] - 1
            return self._received

    @property
    def pending_rows(self) -> int:
        """Calls handed to the ledger and not written yet."""
        if self.queue is not None:
            return self.queue.pending_rows
        return len(self._pending)

    def lag_seconds(self) -> float:
        """How long the oldest call not written yet has waited (0 when none waits)."""
        if self.queue is not None:
            oldest = self.queue.oldest()
        else:
            oldest = self._pending_since[1] if self._pending_since is not None else None
        return 0.0 if oldest is None else max(0.0, time.time() - oldest)

    @property
    def rejected_rows(self) -> int:
        """Calls the database refused, set aside."""
        return int(getattr(self.ledger, "rejected_rows", 0))

    @property
    def dropped(self) -> int:
        """Calls given up on for lack of room."""
        return self.dropped_rows + (self.queue.dropped_rows if self.queue is not None else 0)

    def register_gauges(self, meter: Meter) -> None:
        """Report the ledger's lag on ``meter``: rows waiting, the oldest one's age, and rows
        set aside or dropped."""
        meter.create_observable_gauge(
            PENDING,
            [lambda _o: [Observation(self.pending_rows)]],
            unit="{row}",
            description="Counted calls handed to the ledger and not written yet",
        )
        meter.create_observable_gauge(
            LAG,
            [self._lag_points],
            unit="s",
            description="Age of the oldest counted call not written to the ledger yet",
        )
        meter.create_observable_counter(
            REJECTED,
            [lambda _o: [Observation(self.rejected_rows)]],
            unit="{row}",
            description="Counted calls the ledger database refused (each logged once)",
        )
        meter.create_observable_counter(
            DROPPED,
            [lambda _o: [Observation(self.dropped)]],
            unit="{row}",
            description="Counted calls dropped because too many waited for the ledger",
        )

    def _lag_points(self, _options: CallbackOptions | None = None) -> list[Observation]:
        return [Observation(self.lag_seconds())]

    # SQLite writes and retention.

    def _flush(self) -> bool:
        try:
            self.ledger.write(self._pending)
        except Exception as exc:
            log.error("ledger %s: write failed, will retry: %s", self.location, exc)
            overflow = len(self._pending) - MAX_PENDING
            if overflow > 0:
                log.error("ledger %s: dropping %d oldest unwritten calls", self.location, overflow)
                del self._pending[:overflow]
                self.dropped_rows += overflow
            return False
        self._pending.clear()
        self._pending_since = None
        return True

    def _retention_due(self) -> None:
        if time.monotonic() >= self._next_retention:
            self._apply_retention()

    def _apply_retention(self) -> None:
        self._next_retention = time.monotonic() + RETENTION_EVERY
        if self.config.retention_days is None:
            return
        cutoff = time.time_ns() - self.config.retention_days * NANOS_PER_DAY
        try:
            deleted = self.ledger.delete_before(cutoff)
        except Exception as exc:
            scrub = getattr(self.ledger, "scrub", str)
            log.error("ledger %s: retention pass failed: %s", self.location, scrub(exc))
            return
        if deleted:
            log.info(
                "ledger %s: removed %d calls older than %d days",
                self.location,
                deleted,
                self.config.retention_days,
            )
