"""The thread that writes queued rows to a database ledger, riding out outages.

Batches are taken from the ``RowQueue`` and written in one transaction each. When the database
cannot be written (down, restarting, unreachable, too slow to answer), the batch is retried with
a growing pause (up to ``MAX_BACKOFF``), the queue puts new rows on disk instead of memory, and
one line says so; one more line says when writing works again and how many rows wait.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from spanledger.processor.sinks.ledger.base import LedgerStore
from spanledger.processor.sinks.ledger.queue import RowBatch, RowQueue

log = logging.getLogger("spanledger.processor.sinks.ledger")

MIN_BACKOFF = 0.1
MAX_BACKOFF = 5.0


class LedgerWriter:
    """Writes what ``queue`` holds to ``store`` until ``stop``; ``every_pass`` runs between
    batches (the retention pass)."""

    def __init__(
        self,
        store: LedgerStore,
        queue: RowQueue,
        batch_rows: int,
        *,
        scrub: Callable[[object], str] = str,
        every_pass: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.queue = queue
        self.batch_rows = batch_rows
        self._scrub = scrub
        self._every_pass = every_pass
        self._stopping = threading.Event()
        self._give_up = threading.Event()
        self._backoff = MIN_BACKOFF
        self.down_since: float | None = None
        """Monotonic time of the first failed write of the current outage (None: writing)."""
        self.written_rows = 0
        self.new_rows = 0
        self.failures = 0
        self._thread = threading.Thread(target=self._run, name="spanledger-ledger", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            batches = self.queue.take(self.batch_rows, timeout=0.5)
            if not batches:
                if self._stopping.is_set():
                    return
                self._pass()
                continue
            if not self._write(batches):
                return

    def _pass(self) -> None:
        try:
            self._every_pass()
        except Exception:
            log.exception("ledger %s: periodic pass failed", self.store.location)

    def _write(self, batches: list[RowBatch]) -> bool:
        """Write ``batches`` until done; False when told to give up (shutdown deadline)."""
        while batches:
            rows = [row for batch in batches for row in batch.rows]
            try:
                new = self.store.write_rows(rows)
            except Exception as exc:
                self.failures += 1
                if self.down_since is None:
                    self.down_since = time.monotonic()
                    log.error(
                        "ledger %s: cannot write, %d rows wait and new ones go to %s: %s",
                        self.store.location,
                        self.queue.pending_rows,
                        "disk" if self.queue.config.directory else "memory",
                        self._scrub(exc),
                    )
                self.queue.spill_all(True)
                batches = self.queue.spill_taken(batches)
                if self._give_up.wait(self._backoff):
                    return False
                self._backoff = min(self._backoff * 2, MAX_BACKOFF)
                continue
            self.queue.done(batches)
            self.written_rows += len(rows)
            self.new_rows += new
            self._backoff = MIN_BACKOFF
            if self.down_since is not None:
                log.warning(
                    "ledger %s: writing again after %.1f s; %d rows still wait",
                    self.store.location,
                    time.monotonic() - self.down_since,
                    self.queue.pending_rows,
                )
                self.down_since = None
                self.queue.spill_all(False)
            return True
        return True

    def stop(self, timeout: float) -> None:
        """Write what waits for up to ``timeout`` seconds, then stop (the rest stays queued)."""
        self._stopping.set()
        self.queue.close()
        self._thread.join(max(0.0, timeout))
        if self._thread.is_alive():
            self._give_up.set()
            self._thread.join(5.0)
        log.info(
            "ledger %s: wrote %d calls, %d new, %d were there already",
            self.store.location,
            self.written_rows,
            self.new_rows,
            self.written_rows - self.new_rows,
        )
