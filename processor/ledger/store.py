"""The ledger file: one SQLite row per counted call, written idempotently, read by ``report``.

Costs are stored as exact decimal text and summed with ``Decimal`` (never as floats), so every
grouping adds up exactly to the ledger total. The file uses SQLite's write-ahead log, so the
processor can keep writing while ``spanledger report`` reads.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext
from pathlib import Path

from spanledger.processor.model import CountedCall
from spanledger.semconv import UNTAGGED

log = logging.getLogger(__name__)

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
_INSERT = """
INSERT OR IGNORE INTO calls (
    trace_id, span_id, time_unix_nano, tags, provider, model, operation,
    input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
    cost_status, cost_source, cost_usd, billable_usd, pricing_model
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""

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
BUILTIN_DIMENSIONS = (*COLUMN_DIMENSIONS, *TIME_DIMENSIONS)
TAG_PREFIX = "tag:"
"""Prefix that forces a name to mean a tag, e.g. ``tag:model`` for a tag called ``model``."""
_TAG_KEY = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


class LedgerError(Exception):
    """The ledger cannot be opened or read; the message says which file and why."""


@dataclass(slots=True)
class GroupTotals:
    """What one group of calls cost and used. ``cost_usd`` sums the priced calls only."""

    key: tuple[str, ...]
    cost_usd: Decimal
    calls: int
    unpriced_calls: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int


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
    """The SQL expression (and its parameters) that yields dimension ``name`` for each row.

    Built-in names (``provider``, ``model``, ``day`` …) win over tags of the same name; write
    ``tag:NAME`` to mean the tag. Untagged rows read ``(none)``.
    """
    if name in COLUMN_DIMENSIONS:
        return COLUMN_DIMENSIONS[name], ()
    if name in TIME_DIMENSIONS:
        return TIME_DIMENSIONS[name], ()
    key = name.removeprefix(TAG_PREFIX)
    if not _TAG_KEY.match(key):
        raise ValueError(f"{name!r} is not a tag key or one of {', '.join(BUILTIN_DIMENSIONS)}")
    return f"COALESCE(json_extract(tags, ?), '{UNTAGGED}')", (f'$."{key}"',)


def grouped_query(
    table: str,
    group_by: Sequence[str],
    aggregates: Sequence[str],
    *,
    dimension: Callable[[str], tuple[str, tuple[str, ...]]] = dimension_sql,
    since_unix_nano: int | None = None,
    until_unix_nano: int | None = None,
    where: Mapping[str, str] | None = None,
) -> tuple[str, list[object]]:
    """The query selecting the ``group_by`` dimensions (``g0``, ``g1`` …, as ``dimension``
    writes them) then ``aggregates`` from ``table``, over ``[since, until)`` of its
    ``time_unix_nano`` and the ``where`` equalities, one row per group; and its parameters."""
    selects, params = [], []
    for index, name in enumerate(group_by):
        sql, args = dimension(name)
        selects.append(f"{sql} AS g{index}")
        params.extend(args)
    conditions, condition_params = [], []
    if since_unix_nano is not None:
        conditions.append("time_unix_nano >= ?")
        condition_params.append(int(since_unix_nano))
    if until_unix_nano is not None:
        conditions.append("time_unix_nano < ?")
        condition_params.append(int(until_unix_nano))
    for name, value in (where or {}).items():
        sql, args = dimension(name)
        conditions.append(f"{sql} = ?")
        condition_params.extend([*args, value])
    query = f"SELECT {', '.join([*selects, *aggregates])} FROM {table}"
    if conditions:
        query += " WHERE " + " AND ".join(conditions)
    if group_by:
        query += " GROUP BY " + ", ".join(f"g{i}" for i in range(len(group_by)))
    return query, [*params, *condition_params]


def _decimal_text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


_TAGS_TEXT_CACHE = 4096
_tags_text: dict[tuple[tuple[object, object], ...], str] = {}
"""Recently stored tag sets and their JSON text: calls mostly repeat a few tag sets."""


def _tags_json(tags: Mapping[object, object]) -> str:
    key = tuple(tags.items())
    text = _tags_text.get(key)
    if text is None:
        text = json.dumps({str(k): str(v) for k, v in key}, sort_keys=True)
        if len(_tags_text) >= _TAGS_TEXT_CACHE:
            _tags_text.clear()
        _tags_text[key] = text
    return text


def _row(call: CountedCall) -> tuple[object, ...]:
    usage, cost = call.usage, call.cost
    priced = cost.status == "priced"
    return (
        call.trace_id,
        call.span_id,
        int(call.start_time_unix_nano),
        _tags_json(call.tags),
        usage.provider,
        usage.model,
        usage.operation,
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_read_tokens,
        usage.cache_write_tokens + usage.cache_write_1h_tokens,
        usage.reasoning_tokens,
        cost.status,
        cost.source,
        _decimal_text(cost.total) if priced else None,
        _decimal_text(cost.billable) if priced else None,
        cost.pricing_model,
    )


class Ledger:
    """One ledger file. ``create=True`` makes the file and schema when missing (the writer's
    mode); readers leave it False to get a clear error for a wrong path."""

    def __init__(self, path: str | Path, *, create: bool = False) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise LedgerError(f"no ledger at {self.path} (is the processor's ledger.path set?)")
        self._lock = threading.Lock()
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
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
        if row is None or row[0] != str(SCHEMA_VERSION):
            found = row[0] if row else "none"
            raise LedgerError(
                f"{self.path} has ledger schema version {found}, expected {SCHEMA_VERSION}"
            )

    def write(self, calls: Iterable[CountedCall]) -> int:
        """Insert calls in one transaction; a (trace_id, span_id) already present is skipped,
        a call that cannot be turned into a row is logged and skipped.

        Returns how many rows were new.
        """
        rows = []
        for call in calls:
            try:
                rows.append(_row(call))
            except (AttributeError, TypeError, ValueError) as exc:
                log.error("ledger: skipping a malformed call %r: %s", call, exc)
        if not rows:
            return 0
        with self._lock:
            before = self._db.total_changes
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(_INSERT, rows)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return self._db.total_changes - before

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

    def close(self) -> None:
        """Close the file; further use raises."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
