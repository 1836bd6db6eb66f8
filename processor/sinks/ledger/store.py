"""The ledger file: one SQLite row per counted call, written idempotently, read by ``report``.

Costs are stored as exact decimal text and summed with ``Decimal`` (never as floats), so every
grouping adds up exactly to the ledger total. The file uses SQLite's write-ahead log, so the
processor can keep writing while ``spanledger report`` reads. This is the embedded default for
one machine; ``spanledger.processor.sinks.ledger.postgres`` holds the shared ledger of many
replicas.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal, localcontext
from pathlib import Path
from typing import TypeVar

from spanledger.processor.model import CountedCall
from spanledger.processor.sinks.ledger import sqlite_reconciled
from spanledger.processor.sinks.ledger.base import (
    BUILTIN_NAMES,
    TAG_PREFIX,
    GroupTotals,
    LedgerError,
    SchemaError,
    dimension,
    grouped_query,
)
from spanledger.processor.sinks.ledger.migrations import schema_problem
from spanledger.processor.sinks.ledger.reconciled import (
    GapRecord,
    LatestGap,
    RunRecord,
    SettledRecord,
    SettledTotals,
    TagBucket,
)
from spanledger.processor.sinks.ledger.rows import COLUMNS, Row, call_rows, describe_row
from spanledger.semconv import UNTAGGED

log = logging.getLogger("spanledger.processor.sinks.ledger")
_T = TypeVar("_T")

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    time_unix_nano INTEGER NOT NULL,
    tags TEXT NOT NULL,
    provider TEXT,
    model TEXT,
    operation TEXT,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cache_read_tokens INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    reasoning_tokens INTEGER NOT NULL,
    cost_status TEXT NOT NULL,
    cost_source TEXT,
    cost_usd TEXT,
    billable_usd TEXT,
    pricing_model TEXT,
    PRIMARY KEY (trace_id, span_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS calls_by_time ON calls (time_unix_nano);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_INSERT = f"""
INSERT OR IGNORE INTO calls ({", ".join(COLUMNS)})
VALUES ({", ".join("?" for _ in COLUMNS)})
"""
_ROW_ERRORS = (sqlite3.IntegrityError, sqlite3.DataError, OverflowError, UnicodeError, ValueError)
"""Failures a value of one row causes; the rest of its batch can still be written."""

_SECONDS = "(time_unix_nano / 1000000000)"
TIME_DIMENSIONS = {
    "day": f"strftime('%Y-%m-%d', {_SECONDS}, 'unixepoch')",
    "week": f"date({_SECONDS}, 'unixepoch', 'weekday 0', '-6 days')",
    "month": f"strftime('%Y-%m', {_SECONDS}, 'unixepoch')",
}
"""Calendar buckets in UTC; a week is named by its Monday."""
COLUMN_DIMENSIONS = {
    "provider": f"COALESCE(provider, '{UNTAGGED}')",
    "model": f"COALESCE(model, '{UNTAGGED}')",
    "operation": f"COALESCE(operation, '{UNTAGGED}')",
    "cost_status": "cost_status",
    "cost_source": f"COALESCE(cost_source, '{UNTAGGED}')",
}
"""Dimensions that are columns of the ledger rather than tags."""
BUILTIN_DIMENSIONS = BUILTIN_NAMES
__all__ = [
    "BUILTIN_DIMENSIONS",
    "COLUMN_DIMENSIONS",
    "TAG_PREFIX",
    "TIME_DIMENSIONS",
    "GroupTotals",
    "Ledger",
    "LedgerError",
    "dimension_sql",
]


class _DecimalSum:
    """SQLite aggregate adding decimal text exactly; NULLs (unpriced calls) are skipped."""

    def __init__(self) -> None:
        self.total = Decimal(0)

    def step(self, value: str | None) -> None:
        if value is not None:
            with localcontext() as context:
                context.prec = 60
                self.total += Decimal(value)

    def finalize(self) -> str:
        return format(self.total, "f")


def dimension_sql(name: str) -> tuple[str, tuple[str, ...]]:
    """The SQLite expression (and its parameters) that yields dimension ``name`` for each row.

    Built-in names (``provider``, ``model``, ``day`` …) win over tags of the same name; write
    ``tag:NAME`` to mean the tag. Untagged rows read ``(none)``.
    """
    kind, what = dimension(name)
    if kind == "column":
        return COLUMN_DIMENSIONS[what], ()
    if kind == "time":
        return TIME_DIMENSIONS[what], ()
    return f"COALESCE(json_extract(tags, ?), '{UNTAGGED}')", (f'$."{what}"',)


class Ledger:
    """One ledger file. ``create=True`` makes the file and schema when missing (the writer's
    mode); readers leave it False to get a clear error for a wrong path."""

    def __init__(self, path: str | Path, *, create: bool = False) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise LedgerError(f"no ledger at {self.path} (is the processor's ledger.path set?)")
        self.location = str(self.path)
        self.schema_version = SCHEMA_VERSION
        self.migrated_from: int | None = None
        """0 when ``create`` made a new file (there is one schema version so far)."""
        self.rejected_rows = 0
        """Rows the database refused, each logged once and left out of its batch."""
        self._lock = threading.Lock()
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                if not self.path.exists():
                    self.migrated_from = 0
            self._db = sqlite3.connect(
                self.path, timeout=10.0, check_same_thread=False, isolation_level=None
            )
            self._db.execute("PRAGMA busy_timeout = 10000")
            if create:
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.executescript(_SCHEMA)
                self._db.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
            self._check_schema()
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot open ledger {self.path}: {exc}") from exc
        self._db.create_aggregate("decimal_sum", 1, _DecimalSum)

    def _check_schema(self) -> None:
        try:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise LedgerError(f"{self.path} is not a spanledger ledger: {exc}") from exc
        found = row[0] if row else None
        if found != str(SCHEMA_VERSION):
            raise SchemaError(schema_problem(str(self.path), found, SCHEMA_VERSION))

    def write(self, calls: Iterable[CountedCall]) -> int:
        """Insert calls in one transaction; a (trace_id, span_id) already present is skipped,
        a call that cannot be turned into a row is logged and skipped.

        Returns how many rows were new.
        """
        return self.write_rows(call_rows(calls))

    def write_rows(self, rows: Sequence[Row]) -> int:
        """Insert rows in one transaction, as ``write``. A row the database refuses (a value it
        cannot hold) is set aside with one log line and counted in ``rejected_rows``; the rest
        of the batch is written. Other failures (file locked, disk full) raise."""
        if not rows:
            return 0
        with self._lock:
            before = self._db.total_changes
            self._db.execute("BEGIN IMMEDIATE")
            try:
                try:
                    self._db.executemany(_INSERT, rows)
                except _ROW_ERRORS:
                    self._db.execute("ROLLBACK")
                    self._db.execute("BEGIN IMMEDIATE")
                    before = self._db.total_changes  # the undone inserts were counted
                    self._insert_one_by_one(rows)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return self._db.total_changes - before

    def _insert_one_by_one(self, rows: Sequence[Row]) -> None:
        for row in rows:
            try:
                self._db.execute(_INSERT, row)
            except _ROW_ERRORS as exc:
                self.rejected_rows += 1
                log.error("ledger %s: set aside %s: %s", self.path, describe_row(row), exc)

    def delete_before(self, time_unix_nano: int) -> int:
        """Delete calls that started before ``time_unix_nano``; returns how many were deleted."""
        with self._lock:
            cursor = self._db.execute(
                "DELETE FROM calls WHERE time_unix_nano < ?", (int(time_unix_nano),)
            )
            return cursor.rowcount

    def aggregate(
        self,
        group_by: Sequence[str] = (),
        *,
        since_unix_nano: int | None = None,
        until_unix_nano: int | None = None,
        where: Mapping[str, str] | None = None,
        billable: bool = False,
    ) -> list[GroupTotals]:
        """Totals per distinct value of the ``group_by`` dimensions over ``[since, until)``.

        ``where`` keeps only rows whose dimension equals the value (e.g. ``{"env": "prod"}``);
        ``billable`` sums the marked-up cost where one was recorded. With no ``group_by``
        there is one group (empty key) holding the ledger total, even when no call matches.
        """
        cost = "COALESCE(billable_usd, cost_usd)" if billable else "cost_usd"
        aggregates = [
            f"decimal_sum({cost})",
            "COUNT(*)",
            "COALESCE(SUM(cost_status = 'unpriced'), 0)",
            *(
                f"COALESCE(SUM({column}), 0)"
                for column in (
                    "input_tokens",
                    "output_tokens",
                    "cache_read_tokens",
                    "cache_write_tokens",
                    "reasoning_tokens",
                )
            ),
        ]
        query, parameters = grouped_query(
            "calls",
            group_by,
            aggregates,
            dimension=dimension_sql,
            since_unix_nano=since_unix_nano,
            until_unix_nano=until_unix_nano,
            where=where,
        )
        width = len(group_by)
        with self._lock:
            try:
                fetched = self._db.execute(query, parameters).fetchall()
            except sqlite3.Error as exc:
                raise LedgerError(f"cannot read ledger {self.path}: {exc}") from exc
        return [
            GroupTotals(
                key=tuple(str(v) for v in row[:width]),
                cost_usd=Decimal(row[width] or 0),
                calls=row[width + 1],
                unpriced_calls=row[width + 2],
                input_tokens=row[width + 3],
                output_tokens=row[width + 4],
                cache_read_tokens=row[width + 5],
                cache_write_tokens=row[width + 6],
                reasoning_tokens=row[width + 7],
            )
            for row in fetched
        ]

    def tag_keys(self) -> list[str]:
        """Every tag key stored with a call, sorted (the processor's ``tags`` over time)."""
        query = "SELECT DISTINCT key FROM (SELECT DISTINCT tags FROM calls), json_each(tags)"
        with self._lock:
            try:
                rows = self._db.execute(query).fetchall()
            except sqlite3.Error as exc:
                raise LedgerError(f"cannot read ledger {self.path}: {exc}") from exc
        return sorted(row[0] for row in rows)

    def time_range(self) -> tuple[int, int] | None:
        """The earliest and latest call start times, or None for an empty ledger."""
        with self._lock:
            low, high = self._db.execute(
                "SELECT MIN(time_unix_nano), MAX(time_unix_nano) FROM calls"
            ).fetchone()
        return None if low is None else (low, high)

    # The reconciliation's tables (sqlite_reconciled.py).

    def _read(self, read: Callable[[sqlite3.Connection], _T]) -> _T:
        with self._lock:
            try:
                return read(self._db)
            except sqlite3.Error as exc:
                raise LedgerError(f"cannot read ledger {self.path}: {exc}") from exc

    def tag_buckets(
        self, since_unix_nano: int, until_unix_nano: int, providers: Sequence[str]
    ) -> list[TagBucket]:
        """The calls of ``providers`` over ``[since, until)`` per UTC day, model and tag set."""
        return self._read(
            lambda db: sqlite_reconciled.tag_buckets(
                db, since_unix_nano, until_unix_nano, providers, dimension_sql
            )
        )

    def write_reconciliation(
        self,
        run: RunRecord,
        gaps: Sequence[GapRecord],
        settled: Sequence[SettledRecord] = (),
        settled_providers: Sequence[str] = (),
    ) -> None:
        """Record one run in one transaction (the tables are made by the first run)."""
        with self._lock:
            try:
                sqlite_reconciled.write_reconciliation(
                    self._db, run, gaps, settled, settled_providers
                )
            except sqlite3.Error as exc:
                raise LedgerError(f"cannot write the reconciliation to {self.path}: {exc}") from exc

    def settled_aggregate(
        self,
        group_by: Sequence[str] = (),
        *,
        since_unix_nano: int | None = None,
        until_unix_nano: int | None = None,
        where: Mapping[str, str] | None = None,
    ) -> list[SettledTotals]:
        """Settled and estimated totals per distinct value of ``group_by``."""
        return self._read(
            lambda db: sqlite_reconciled.settled_aggregate(
                db,
                group_by,
                since_unix_nano=since_unix_nano,
                until_unix_nano=until_unix_nano,
                where=where,
                dimension_sql=dimension_sql,
            )
        )

    def settled_runs(self) -> list[RunRecord]:
        """The runs whose settled amounts are still in the ledger, oldest first."""
        return self._read(sqlite_reconciled.settled_runs)

    def latest_gaps(self) -> list[LatestGap]:
        """The gap per provider and model over the latest run of each provider."""
        return self._read(sqlite_reconciled.latest_gaps)

    def close(self) -> None:
        """Close the file; further use raises."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
