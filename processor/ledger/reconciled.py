"""What ``spanledger reconcile`` keeps in the ledger, beside the estimates and never over them.

Three tables, made on the first reconciliation (the ``calls`` table is never touched):

- ``reconcile_runs``: one row per run that wrote (when, which days, which providers, from what).
- ``reconcile_gaps``: per run, one row per day x provider x model (x project): billed against
  attributed cost and the cause of the difference. The processor's gap gauge reads these.
- ``settled``: the provider's billed amounts spread over the tag buckets, to the cent. A new run
  over the same days and providers replaces their settled rows, so each day is settled once.

Amounts are exact decimal text, summed with the ledger's ``decimal_sum``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from spanledger.processor.ledger.store import (
    COLUMN_DIMENSIONS,
    TIME_DIMENSIONS,
    Ledger,
    LedgerError,
    dimension_sql,
    grouped_query,
)
from spanledger.semconv import UNTAGGED

UNATTRIBUTED = "(unattributed)"
"""The settled bucket of billed spend that no tagged call explains."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reconcile_runs (
    run_id TEXT PRIMARY KEY,
    at_unix_nano INTEGER NOT NULL,
    since_day TEXT NOT NULL,
    until_day TEXT NOT NULL,
    providers TEXT NOT NULL,
    sources TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS reconcile_gaps (
    run_id TEXT NOT NULL,
    day TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    project TEXT NOT NULL,
    billed_usd TEXT,
    attributed_usd TEXT NOT NULL,
    cause TEXT NOT NULL,
    PRIMARY KEY (run_id, day, provider, model, project)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS settled (
    day TEXT NOT NULL,
    time_unix_nano INTEGER NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    project TEXT NOT NULL,
    tags TEXT NOT NULL,
    attributed INTEGER NOT NULL,
    settled_usd TEXT NOT NULL,
    estimated_usd TEXT NOT NULL,
    calls INTEGER NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    run_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS settled_by_day ON settled (day, provider);
"""

SETTLED_DIMENSIONS = (*TIME_DIMENSIONS, "provider", "model", "project")
"""Built-in dimensions a settled report can group by (besides tags)."""


@dataclass(slots=True)
class TagBucket:
    """The ledger's calls of one day, provider, model and exact tag set."""

    day: str
    provider: str
    model: str
    tags: str
    """The tag set as the ledger stores it (JSON text)."""
    cost_usd: Decimal
    calls: int
    unpriced_calls: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int


@dataclass(slots=True)
class RunRecord:
    run_id: str
    at_unix_nano: int
    since_day: str
    until_day: str
    providers: tuple[str, ...]
    sources: str


@dataclass(slots=True)
class GapRecord:
    day: str
    provider: str
    model: str
    project: str
    billed_usd: Decimal | None
    attributed_usd: Decimal
    cause: str


@dataclass(slots=True)
class SettledRecord:
    day: str
    time_unix_nano: int
    provider: str
    model: str
    project: str
    tags: str
    attributed: bool
    settled_usd: Decimal
    estimated_usd: Decimal
    calls: int
    input_tokens: int
    output_tokens: int


@dataclass(slots=True)
class SettledTotals:
    key: tuple[str, ...]
    settled_usd: Decimal
    estimated_usd: Decimal
    calls: int
    input_tokens: int
    output_tokens: int


@dataclass(slots=True)
class LatestGap:
    """A provider and model's gap over the latest run that reconciled that provider."""

    provider: str
    model: str
    billed_usd: Decimal
    attributed_usd: Decimal
    since_day: str
    until_day: str


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def tag_buckets(
    ledger: Ledger, since_unix_nano: int, until_unix_nano: int, providers: Sequence[str]
) -> list[TagBucket]:
    """The calls of ``providers`` over ``[since, until)``, per UTC day, model and tag set."""
    if not providers:
        return []
    day = TIME_DIMENSIONS["day"]
    marks = ", ".join("?" for _ in providers)
    query = f"""
        SELECT {day} AS day, provider, {COLUMN_DIMENSIONS["model"]} AS model, tags,
            decimal_sum(cost_usd), COUNT(*), COALESCE(SUM(cost_status = 'unpriced'), 0),
            SUM(input_tokens), SUM(output_tokens), SUM(cache_read_tokens),
            SUM(cache_write_tokens)
        FROM calls
        WHERE time_unix_nano >= ? AND time_unix_nano < ? AND provider IN ({marks})
        GROUP BY day, provider, model, tags
        ORDER BY day, provider, model, tags
    """
    with ledger._lock:
        try:
            rows = ledger._db.execute(
                query, [int(since_unix_nano), int(until_unix_nano), *providers]
            ).fetchall()
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot read ledger {ledger.path}: {exc}") from exc
    return [
        TagBucket(
            day=row[0],
            provider=row[1],
            model=row[2],
            tags=row[3],
            cost_usd=Decimal(row[4] or 0),
            calls=row[5],
            unpriced_calls=row[6],
            input_tokens=row[7],
            output_tokens=row[8],
            cache_read_tokens=row[9],
            cache_write_tokens=row[10],
        )
        for row in rows
    ]


def write_reconciliation(
    ledger: Ledger,
    run: RunRecord,
    gaps: Sequence[GapRecord],
    settled: Sequence[SettledRecord] = (),
    settled_providers: Sequence[str] = (),
) -> None:
    """Record one run in one transaction: its gaps, and the settled amounts of
    ``settled_providers``, which replace theirs over the run's days."""
    providers = list(settled_providers)
    marks = ", ".join("?" for _ in providers)
    with ledger._lock:
        db = ledger._db
        try:
            db.executescript(_SCHEMA)
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute(
                    "INSERT INTO reconcile_runs VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        run.run_id,
                        run.at_unix_nano,
                        run.since_day,
                        run.until_day,
                        ",".join(run.providers),
                        run.sources,
                    ),
                )
                db.executemany(
                    "INSERT INTO reconcile_gaps VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            run.run_id,
                            g.day,
                            g.provider,
                            g.model,
                            g.project,
                            _text(g.billed_usd),
                            _text(g.attributed_usd),
                            g.cause,
                        )
                        for g in gaps
                    ],
                )
                if providers:
                    db.execute(
                        f"DELETE FROM settled WHERE day >= ? AND day < ? AND provider IN ({marks})",
                        [run.since_day, run.until_day, *providers],
                    )
                    db.executemany(
                        "INSERT INTO settled VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [
                            (
                                s.day,
                                s.time_unix_nano,
                                s.provider,
                                s.model,
                                s.project,
                                s.tags,
                                int(s.attributed),
                                _text(s.settled_usd),
                                _text(s.estimated_usd),
                                s.calls,
                                s.input_tokens,
                                s.output_tokens,
                                run.run_id,
                            )
                            for s in settled
                        ],
                    )
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot write the reconciliation to {ledger.path}: {exc}") from exc


def _has_table(ledger: Ledger, name: str) -> bool:
    row = ledger._db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return row is not None


def settled_dimension_sql(name: str) -> tuple[str, tuple[str, ...]]:
    """The expression for dimension ``name`` over the ``settled`` table: calendar periods,
    provider, model, project, or a tag (``(unattributed)`` on the unexplained rows)."""
    if name in TIME_DIMENSIONS:
        return TIME_DIMENSIONS[name], ()
    if name in ("provider", "model", "project"):
        return name, ()
    if name in COLUMN_DIMENSIONS:
        raise ValueError(
            f"{name!r} is not kept per settled amount; group by a tag or one of "
            f"{', '.join(SETTLED_DIMENSIONS)}"
        )
    sql, params = dimension_sql(name)
    return f"(CASE WHEN attributed = 1 THEN {sql} ELSE '{UNATTRIBUTED}' END)", params


def settled_aggregate(
    ledger: Ledger,
    group_by: Sequence[str] = (),
    *,
    since_unix_nano: int | None = None,
    until_unix_nano: int | None = None,
    where: Mapping[str, str] | None = None,
) -> list[SettledTotals]:
    """Settled and estimated totals per distinct value of ``group_by`` (days whose start lies
    in ``[since, until)``). Without ``group_by``, one group holding the total."""
    query, parameters = grouped_query(
        "settled",
        group_by,
        [
            "decimal_sum(settled_usd)",
            "decimal_sum(estimated_usd)",
            "COALESCE(SUM(calls), 0)",
            "COALESCE(SUM(input_tokens), 0)",
            "COALESCE(SUM(output_tokens), 0)",
        ],
        dimension=settled_dimension_sql,
        since_unix_nano=since_unix_nano,
        until_unix_nano=until_unix_nano,
        where=where,
    )
    width = len(group_by)
    with ledger._lock:
        try:
            if not _has_table(ledger, "settled"):
                return []
            fetched = ledger._db.execute(query, parameters).fetchall()
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot read ledger {ledger.path}: {exc}") from exc
    return [
        SettledTotals(
            key=tuple(str(v) for v in row[:width]),
            settled_usd=Decimal(row[width] or 0),
            estimated_usd=Decimal(row[width + 1] or 0),
            calls=row[width + 2],
            input_tokens=row[width + 3],
            output_tokens=row[width + 4],
        )
        for row in fetched
        if width or row[width] is not None
    ]


def settled_runs(ledger: Ledger) -> list[RunRecord]:
    """The runs whose settled rows are still in the ledger, oldest first."""
    with ledger._lock:
        try:
            if not _has_table(ledger, "settled"):
                return []
            rows = ledger._db.execute(
                "SELECT run_id, at_unix_nano, since_day, until_day, providers, sources "
                "FROM reconcile_runs WHERE run_id IN (SELECT DISTINCT run_id FROM settled) "
                "ORDER BY at_unix_nano"
            ).fetchall()
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot read ledger {ledger.path}: {exc}") from exc
    return [
        RunRecord(row[0], row[1], row[2], row[3], tuple(row[4].split(",")), row[5]) for row in rows
    ]


def latest_gaps(ledger: Ledger) -> list[LatestGap]:
    """Billed and attributed cost per provider and model over the latest run of each provider
    (rows of models a run did not bill count as billed 0). Empty before any run."""
    query = """
        SELECT g.provider, g.model, decimal_sum(COALESCE(g.billed_usd, '0')),
            decimal_sum(g.attributed_usd), r.since_day, r.until_day
        FROM reconcile_gaps AS g JOIN reconcile_runs AS r ON r.run_id = g.run_id
        WHERE r.at_unix_nano = (
            SELECT MAX(r2.at_unix_nano) FROM reconcile_runs AS r2
            WHERE ',' || r2.providers || ',' LIKE '%,' || g.provider || ',%'
        )
        GROUP BY g.provider, g.model
        ORDER BY g.provider, g.model
    """
    with ledger._lock:
        try:
            if not _has_table(ledger, "reconcile_gaps"):
                return []
            rows = ledger._db.execute(query).fetchall()
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot read ledger {ledger.path}: {exc}") from exc
    return [
        LatestGap(row[0], row[1] or UNTAGGED, Decimal(row[2]), Decimal(row[3]), row[4], row[5])
        for row in rows
    ]
