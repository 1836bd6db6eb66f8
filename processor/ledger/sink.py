"""``LedgerSink``: writes every counted call to the ledger and applies the retention period."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from spanledger.processor.ledger.store import Ledger
from spanledger.processor.model import CountedCall

log = logging.getLogger(__name__)

NANOS_PER_DAY = 86_400 * 10**9
RETENTION_EVERY = 3600.0
"""Seconds between two retention passes while the processor runs."""
MAX_PENDING = 1_000_000
"""Calls kept in memory while the ledger cannot be written, before the oldest are dropped."""


@dataclass
class LedgerConfig:
    """Where the ledger lives and how long it keeps calls.

    ``path`` is the SQLite file (None or empty: no ledger). ``retention_days`` deletes calls
    that started longer ago than that (None: keep everything).
    """

    path: str | None = "spanledger.db"
    retention_days: int | None = None

    def problems(self) -> list[str]:
        """Every reason this configuration cannot be used, as readable text (empty when fine)."""
        found = []
        if self.retention_days is not None and (
            isinstance(self.retention_days, bool) or self.retention_days < 1
        ):
            found.append(
                f"retention_days must be a whole number of days >= 1, got {self.retention_days!r}"
            )
        return found


class LedgerSink:
    """A ``CallSink`` that stores one row per counted call, once per (trace_id, span_id).

    A failed write (disk full, file locked too long) is logged and the calls are kept and
    written with the next batch or at shutdown, so a passing problem loses nothing.
    """

    def __init__(self, config: LedgerConfig, tag_keys: Sequence[str]) -> None:
        problems = config.problems()
        if problems or not config.path:
            raise ValueError("invalid ledger configuration: " + ("; ".join(problems) or "no path"))
        self.config = config
        self.tag_keys = tuple(tag_keys)
        self.ledger = Ledger(config.path, create=True)
        self._pending: list[CountedCall] = []
        self._lock = threading.Lock()
        self._next_retention = 0.0
        self._apply_retention()

    def record(self, calls: Sequence[CountedCall]) -> None:
        """Write ``calls`` (and any left from a failed write); never raises."""
        with self._lock:
            self._pending.extend(calls)
            self._flush()
            if time.monotonic() >= self._next_retention:
                self._apply_retention()

    def shutdown(self, timeout: float) -> None:
        """Write what is still pending, retrying until ``timeout`` seconds have passed."""
        deadline = time.monotonic() + max(timeout, 0.0)
        with self._lock:
            while self._pending and not self._flush() and time.monotonic() < deadline:
                time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
            if self._pending:
                log.error(
                    "ledger %s: %d calls could not be written", self.config.path, len(self._pending)
                )
            self.ledger.close()

    def _flush(self) -> bool:
        try:
            self.ledger.write(self._pending)
        except Exception as exc:
            log.error("ledger %s: write failed, will retry: %s", self.config.path, exc)
            overflow = len(self._pending) - MAX_PENDING
            if overflow > 0:
                log.error(
                    "ledger %s: dropping %d oldest unwritten calls", self.config.path, overflow
                )
                del self._pending[:overflow]
            return False
        self._pending.clear()
        return True

    def _apply_retention(self) -> None:
        self._next_retention = time.monotonic() + RETENTION_EVERY
        if self.config.retention_days is None:
            return
        cutoff = time.time_ns() - self.config.retention_days * NANOS_PER_DAY
        try:
            deleted = self.ledger.delete_before(cutoff)
        except Exception as exc:
            log.error("ledger %s: retention pass failed: %s", self.config.path, exc)
            return
        if deleted:
            log.info(
                "ledger %s: removed %d calls older than %d days",
                self.config.path,
                deleted,
                self.config.retention_days,
            )
