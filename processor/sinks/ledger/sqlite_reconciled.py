"""The reconciliation's tables in the SQLite ledger file, and the SQL that reads and writes them.

The tables (``reconcile_runs``, ``reconcile_gaps``, ``settled``) are made by the first run
that writes, so a file no run has written to is exactly the processor's; readers find no table
and answer as for an empty one. Amounts are exact decimal text, summed with the ledger's
``decimal_sum``. ``Ledger`` (store.py) calls these with its connection, under its lock, and
its ``dimension_sql``: the SQL of a day, a model or a tag of a row, the same as its reports'.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal

from spanledger.processor.sinks.ledger.base import grouped_query
from spanledger.processor.sinks.ledger.reconciled import (
    UNATTRIBUTED,
    GapRecord,
    LatestGap,
    RunRecord,
    SettledRecord,
    SettledTotals,
    TagBucket,
    decimal_text,
    settled_dimension,
)
from spanledger.semconv import UNTAGGED

DimensionSql = Callable[[str], tuple[str, tuple[str, ...]]]

SCHEMA = """
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


def tag_buckets(
    db: sqlite3.Connection,
    since_unix_nano: int,
    until_unix_nano: int,
    providers: Sequence[str],
    dimension_sql: DimensionSql,
) -> list[TagBucket]:
    """See ``LedgerStore.tag_buckets``."""
    if not providers:
        return []
    marks = ", ".join("?" for _ in providers)
    query = f"""
        SELECT {dimension_sql("day")[0]} AS day, provider, {dimension_sql("model")[0]} AS model,
            tags,
            decimal_sum(cost_usd), COUNT(*), COALESCE(SUM(cost_status = 'unpriced'), 0),
            SUM(input_tokens), SUM(output_tokens), SUM(cache_read_tokens),
            SUM(cache_write_tokens)
        FROM calls
        WHERE time_unix_nano >= ? AND time_unix_nano < ? AND provider IN ({marks})
        GROUP BY day, provider, model, tags
        ORDER BY day, provider, model, tags
    """
    rows = db.execute(query, [int(since_unix_nano), int(until_unix_nano), *providers])
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
        for row in rows.fetchall()
    ]


def write_reconciliation(
    db: sqlite3.Connection,
    run: RunRecord,
    gaps: Sequence[GapRecord],
    settled: Sequence[SettledRecord],
    settled_providers: Sequence[str],
) -> None:
    """See ``LedgerStore.write_reconciliation``; makes the tables on the first run."""
    providers = list(settled_providers)
    marks = ", ".join("?" for _ in providers)
    db.executescript(SCHEMA)
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
                    decimal_text(g.billed_usd),
                    decimal_text(g.attributed_usd),
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
                        decimal_text(s.settled_usd),
                        decimal_text(s.estimated_usd),
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


def _has_table(db: sqlite3.Connection, name: str) -> bool:
    row = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return row is not None


def settled_aggregate(
    db: sqlite3.Connection,
    group_by: Sequence[str],
    *,
    since_unix_nano: int | None,
    until_unix_nano: int | None,
    where: Mapping[str, str] | None,
    dimension_sql: DimensionSql,
) -> list[SettledTotals]:
    """See ``LedgerStore.settled_aggregate``."""

    def settled_sql(name: str) -> tuple[str, tuple[str, ...]]:
        kind, what = settled_dimension(name)
        if kind == "column":
            return what, ()
        sql, params = dimension_sql(name)  # a period of time_unix_nano, or a tag of tags
        if kind == "time":
            return sql, params
        return f"(CASE WHEN attributed = 1 THEN {sql} ELSE '{UNATTRIBUTED}' END)", params

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
        dimension=settled_sql,
        since_unix_nano=since_unix_nano,
        until_unix_nano=until_unix_nano,
        where=where,
    )
    if not _has_table(db, "settled"):
        return []
    width = len(group_by)
    return [
        SettledTotals(
            key=tuple(str(v) for v in row[:width]),
            settled_usd=Decimal(row[width] or 0),
            estimated_usd=Decimal(row[width + 1] or 0),
            calls=row[width + 2],
            input_tokens=row[width + 3],
            output_tokens=row[width + 4],
        )
        for row in db.execute(query, parameters).fetchall()
        if width or row[width] is not None
    ]


def settled_runs(db: sqlite3.Connection) -> list[RunRecord]:
    """See ``LedgerStore.settled_runs``."""
    if not _has_table(db, "settled"):
        return []
    rows = db.execute(
        "SELECT run_id, at_unix_nano, since_day, until_day, providers, sources "
        "FROM reconcile_runs WHERE run_id IN (SELECT DISTINCT run_id FROM settled) "
        "ORDER BY at_unix_nano"
    ).fetchall()
    return [
        RunRecord(row[0], row[1], row[2], row[3], tuple(row[4].split(",")), row[5]) for row in rows
    ]


_LATEST_GAPS = """
    SELECT g.provider, g.model, decimal_sum(COALESCE(g.billed_usd, '0')),
        decimal_sum(g.attributed_usd), MIN(r.since_day), MAX(r.until_day)
    FROM reconcile_gaps AS g JOIN reconcile_runs AS r ON r.run_id = g.run_id
    WHERE r.at_unix_nano = (
        SELECT MAX(r2.at_unix_nano) FROM reconcile_runs AS r2
        WHERE ',' || r2.providers || ',' LIKE '%,' || g.provider || ',%'
    )
    GROUP BY g.provider, g.model
    ORDER BY g.provider, g.model
"""


def latest_gaps(db: sqlite3.Connection) -> list[LatestGap]:
    """See ``LedgerStore.latest_gaps``; rows of models a run did not bill count as billed 0."""
    if not _has_table(db, "reconcile_gaps"):
        return []
    return [
        LatestGap(row[0], row[1] or UNTAGGED, Decimal(row[2]), Decimal(row[3]), row[4], row[5])
        for row in db.execute(_LATEST_GAPS).fetchall()
    ]
