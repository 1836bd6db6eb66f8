"""The ledger: idempotent rows, exact decimal totals, retention, concurrent write and read."""

from __future__ import annotations

import sqlite3
import threading
import time
from decimal import Decimal

import pytest

from spanledger.processor.sinks.ledger import Ledger, LedgerConfig, LedgerError, LedgerSink
from spanledger.semconv import UNTAGGED

from .traffic import DAY_NS, call, mixed_traffic

TAGS = ("customer", "feature", "team", "env")


def test_one_row_per_call_with_every_field(ledger_path):
    sink = LedgerSink(LedgerConfig(path=str(ledger_path)), TAGS)
    started = time.time_ns()
    tags = {"customer": "acme", "feature": "chat", "team": UNTAGGED, "env": "prod"}
    first = call(0, started, tags, model="claude-sonnet-4-5", input_tokens=1200, output_tokens=300)
    first.usage.cache_write_tokens = 100
    first.usage.cache_write_1h_tokens = 50
    first.usage.reasoning_tokens = 20
    sink.record([first])
    sink.shutdown(1)
    with sqlite3.connect(ledger_path) as db:
        db.row_factory = sqlite3.Row
        rows = db.execute("SELECT * FROM calls").fetchall()
        mode = db.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    assert len(rows) == 1
    row = dict(rows[0])
    assert row == {
        "trace_id": first.trace_id,
        "span_id": first.span_id,
        "time_unix_nano": started,
        "tags": '{"customer": "acme", "env": "prod", "feature": "chat", "team": "(none)"}',
        "provider": "anthropic",
        "model": "claude-sonnet-4-5",
        "operation": "chat",
        "input_tokens": 1200,
        "output_tokens": 300,
        "cache_read_tokens": 300,
        "cache_write_tokens": 150,
        "reasoning_tokens": 20,
        "cost_status": "priced",
        "cost_source": "price_table",
        # 1200 x $3/M + 300 x $15/M, exactly.
        "cost_usd": "0.008100",
        "billable_usd": None,
        "pricing_model": None,
    }


def test_redelivered_calls_are_written_once(ledger_path):
    calls = mixed_traffic(50, time.time_ns())
    with Ledger(ledger_path, create=True) as ledger:
        assert ledger.write(calls) == 50
        assert ledger.write(calls[10:20] + calls[:5]) == 0
        changed = call(3, 1, {"customer": "other"}, trace_id=calls[3].trace_id)
        assert changed.span_id == calls[3].span_id
        assert ledger.write([changed]) == 0
        (total,) = ledger.aggregate()
    assert total.calls == 50
    assert total.cost_usd == sum((c.cost.total for c in calls), Decimal(0))


def test_totals_are_exact_where_floats_drift(ledger_path):
    tags = {"customer": "acme"}
    # Each call costs exactly $0.1; ten of them are $1 (floats would give 0.9999999999999999).
    calls = [call(i, i, tags, input_tokens=40_000, output_tokens=0) for i in range(10)]
    with Ledger(ledger_path, create=True) as ledger:
        ledger.write(calls)
        (total,) = ledger.aggregate()
    assert total.cost_usd == Decimal("1")
    assert sum(0.1 for _ in range(10)) != 1.0


def test_every_grouping_sums_exactly_to_the_total(ledger_path):
    calls = mixed_traffic(400, time.time_ns() - 40 * DAY_NS, days=40, seed=3)
    with Ledger(ledger_path, create=True) as ledger:
        ledger.write(calls)
        (total,) = ledger.aggregate()
        for by in (
            ["customer"],
            ["feature", "team"],
            ["provider", "model"],
            ["day"],
            ["week"],
            ["month"],
            ["cost_status"],
        ):
            groups = ledger.aggregate(by)
            assert sum((g.cost_usd for g in groups), Decimal(0)) == total.cost_usd, by
            assert sum(g.calls for g in groups) == total.calls == 400
            assert sum(g.input_tokens for g in groups) == total.input_tokens
    assert total.cost_usd == sum((c.cost.total for c in calls), Decimal(0))


def test_untagged_and_unknown_keys_read_none(ledger_path):
    with Ledger(ledger_path, create=True) as ledger:
        ledger.write([call(0, 1, {"customer": "acme"}), call(1, 2, {})])
        groups = {g.key: g.calls for g in ledger.aggregate(["customer", "never_configured"])}
    assert groups == {("acme", UNTAGGED): 1, (UNTAGGED, UNTAGGED): 1}


def test_retention_deletes_old_calls_at_start(ledger_path):
    now = time.time_ns()
    with Ledger(ledger_path, create=True) as ledger:
        ledger.write(
            [call(0, now - 10 * DAY_NS, {}), call(1, now - 2 * DAY_NS, {}), call(2, now, {})]
        )
    sink = LedgerSink(LedgerConfig(path=str(ledger_path), retention_days=3), TAGS)
    sink.shutdown(1)
    with Ledger(ledger_path) as ledger:
        assert ledger.aggregate()[0].calls == 2
        low, _ = ledger.time_range()
    assert low == now - 2 * DAY_NS


def test_config_problems():
    assert LedgerConfig().problems() == []
    assert "retention_days" in LedgerConfig(retention_days=0).problems()[0]
    with pytest.raises(ValueError, match="no path"):
        LedgerSink(LedgerConfig(path=None), TAGS)


def test_reading_a_missing_or_foreign_file_is_a_clear_error(tmp_path):
    with pytest.raises(LedgerError, match="no ledger at"):
        Ledger(tmp_path / "missing.db")
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE something (x)")
    with pytest.raises(LedgerError, match="not a spanledger ledger"):
        Ledger(foreign)
    text = tmp_path / "notes.txt"
    text.write_text("hello, this is not a database at all" * 100)
    with pytest.raises(LedgerError):
        Ledger(text)


def test_a_malformed_call_is_skipped_and_the_batch_kept(ledger_path):
    sink = LedgerSink(LedgerConfig(path=str(ledger_path)), TAGS)
    broken = call(0, 1, {"customer": "acme"})
    broken.usage = None  # type: ignore[assignment]
    sink.record([broken, call(1, 2, {"customer": "acme"})])
    sink.shutdown(1)
    with Ledger(ledger_path) as ledger:
        assert ledger.aggregate()[0].calls == 1


def test_a_failed_write_is_retried_with_the_next_batch(ledger_path):
    sink = LedgerSink(LedgerConfig(path=str(ledger_path)), TAGS)
    blocker = sqlite3.connect(ledger_path, timeout=0)
    blocker.execute("PRAGMA busy_timeout = 0")
    blocker.execute("BEGIN IMMEDIATE")  # holds the write lock
    sink.ledger._db.execute("PRAGMA busy_timeout = 50")
    sink.record([call(0, 1, {"customer": "acme"})])
    with Ledger(ledger_path) as reader:
        assert reader.aggregate()[0].calls == 0
    blocker.rollback()
    blocker.close()
    sink.record([call(1, 2, {"customer": "acme"})])
    sink.shutdown(1)
    with Ledger(ledger_path) as ledger:
        assert ledger.aggregate()[0].calls == 2


def test_reports_read_while_the_processor_writes(ledger_path):
    sink = LedgerSink(LedgerConfig(path=str(ledger_path)), TAGS)
    calls = mixed_traffic(2000, time.time_ns(), seed=5)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for start in range(0, len(calls), 20):
                sink.record(calls[start : start + 20])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    seen = []
    with Ledger(ledger_path) as reader:
        deadline = time.monotonic() + 30
        while writer.is_alive() and time.monotonic() < deadline:
            (total,) = reader.aggregate()
            groups = reader.aggregate(["customer"])
            seen.append(total.calls)
            # Each read is a consistent snapshot: calls arrive in whole batches.
            assert total.calls % 20 == 0
            assert sum(g.calls for g in groups) >= total.calls
        writer.join(timeout=30)
        (final,) = reader.aggregate()
    sink.shutdown(1)
    assert not errors
    assert final.calls == 2000
    assert final.cost_usd == sum((c.cost.total for c in calls), Decimal(0))
    assert len(seen) > 1
