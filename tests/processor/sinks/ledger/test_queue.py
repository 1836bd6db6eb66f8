"""The rows waiting for a database ledger: bounded in memory, spilled to real files beyond the
bound or while the database is away, kept across a restart, and marked durable only once they
are written or on disk."""

from __future__ import annotations

from pathlib import Path

from spanledger.processor.sinks.ledger.config import LedgerQueueConfig
from spanledger.processor.sinks.ledger.queue import RowQueue
from spanledger.processor.sinks.ledger.rows import call_rows

from .traffic import calls


def _batches(count: int, size: int) -> list[list[tuple]]:
    rows = call_rows(calls(count * size))
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def test_without_a_directory_the_oldest_rows_beyond_the_bound_are_dropped() -> None:
    queue = RowQueue(LedgerQueueConfig(memory_rows=25), "test")
    for batch in _batches(5, 10):
        queue.put(batch)
    assert queue.pending_rows == 20
    assert queue.dropped_rows == 30
    assert queue.durable_mark() == 3  # batches 1-3 are given up on, 4 and 5 wait
    taken = queue.take(100, 0)
    assert [len(b.rows) for b in taken] == [10, 10]
    assert queue.durable_mark() == 3
    queue.done(taken)
    assert queue.durable_mark() == queue.received_mark() == 5
    assert queue.pending_rows == 0


def test_beyond_the_bound_rows_spill_to_disk_and_survive_a_restart(tmp_path: Path) -> None:
    config = LedgerQueueConfig(memory_rows=25, directory=str(tmp_path / "spill"))
    queue = RowQueue(config, "test")
    batches = _batches(6, 10)
    for batch in batches:
        queue.put(batch)
    assert queue.dropped_rows == 0
    assert queue.spilled_rows == 40  # two batches fit in memory, four went to disk
    assert queue.durable_mark() == 0  # batch 1 is only in memory
    assert queue.oldest() is not None
    first = queue.take(10, 0)
    assert first[0].rows == batches[0] and first[0].position is None
    queue.done(first)
    assert queue.release() == 0  # batch 2 was in memory: spilled at the end, nothing lost
    assert list((tmp_path / "spill").glob("*.seg"))

    again = RowQueue(config, "test")
    assert again.pending_rows == 50
    written = []
    while taken := again.take(15, 0):
        written += [row for batch in taken for row in batch.rows]
        again.done(taken)
    assert sorted(written) == sorted(row for batch in batches[1:] for row in batch)
    assert again.pending_rows == 0
    again.release()
    assert not list((tmp_path / "spill").glob("*.seg"))


def test_while_the_database_is_away_everything_goes_to_disk(tmp_path: Path) -> None:
    queue = RowQueue(LedgerQueueConfig(directory=str(tmp_path / "spill")), "test")
    batches = _batches(3, 10)
    queue.put(batches[0])
    taken = queue.take(100, 0)
    assert queue.durable_mark() == 0
    queue.spill_all(True)  # the writer failed: memory and new rows go to disk
    kept = queue.spill_taken(taken)
    assert kept == []
    queue.put(batches[1])
    queue.put(batches[2])
    assert queue.durable_mark() == queue.received_mark() == 3
    assert queue.spilled_rows == 30
    queue.spill_all(False)
    rows = []
    while taken := queue.take(100, 0):
        rows += [row for batch in taken for row in batch.rows]
        queue.done(taken)
    assert sorted(rows) == sorted(row for batch in batches for row in batch)
    queue.release()


def test_rows_that_cannot_be_kept_at_the_end_are_never_marked_durable() -> None:
    queue = RowQueue(LedgerQueueConfig(), "test")
    for batch in _batches(3, 10):
        queue.put(batch)
    queue.done(queue.take(10, 0))  # batch 1 written
    queue.take(10, 0)  # batch 2 in hand when the process stops, batch 3 waiting
    assert queue.release() == 20
    # The write-ahead log must keep the requests of batches 2 and 3 for the next start.
    assert queue.durable_mark() == 1
