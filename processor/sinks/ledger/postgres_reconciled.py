"""The reconciliation's tables in the PostgreSQL ledger, and the SQL that reads and writes them.

``spanledger_reconcile_runs``, ``spanledger_reconcile_gaps`` and ``spanledger_settled`` are made
by schema version 2 (``MIGRATION``), like every other table of the shared ledger, so readers
always find them. Amounts are ``numeric`` (exact), days are ``date``, a tag set is ``jsonb``
and is read back as the same sorted JSON text the SQLite ledger stores, so both backends give
the same buckets in the same order, and the same settlement to the cent.

The calls of a period are read per day, model and tag set from the daily rollup for whole days
and from the calls only for partial days at the edges, as reports are. ``PostgresLedger``
(postgres.py) calls these with its connection, under its lock, and its dimension SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from spanledger.processor.sinks.ledger.base import grouped_query
from spanledger.processor.sinks.ledger.migrations import Migration
from spanledger.processor.sinks.ledger.reconciled import (
    UNATTRIBUTED,
    GapRecord,
    LatestGap,
    RunRecord,
    SettledRecord,
    SettledTotals,
    TagBucket,
    settled_dimension,
)
from spanledger.processor.sinks.ledger.rows import tags_json

RUNS = "spanledger_reconcile_runs"
GAPS = "spanledger_reconcile_gaps"
SETTLED = "spanledger_settled"

MIGRATION = Migration(
    2,
    "the reconciliation's runs, gaps and settled amounts",
    (
        f"""CREATE TABLE {RUNS} (
            run_id text PRIMARY KEY,
            at_unix_nano bigint NOT NULL,
            since_day date NOT NULL,
            until_day date NOT NULL,
            providers text[] NOT NULL,
            sources text NOT NULL
        )""",
        f"""CREATE TABLE {GAPS} (
            run_id text NOT NULL REFERENCES {RUNS},
            day date NOT NULL,
            provider text NOT NULL,
            model text NOT NULL,
            project text NOT NULL,
            billed_usd numeric,
            attributed_usd numeric NOT NULL,
            cause text NOT NULL,
            PRIMARY KEY (run_id, day, provider, model, project)
        )""",
        f"""CREATE TABLE {SETTLED} (
            day date NOT NULL,
            time_unix_nano bigint NOT NULL,
            provider text NOT NULL,
            model text NOT NULL,
            project text NOT NULL,
            tags jsonb NOT NULL,
            attributed boolean NOT NULL,
            settled_usd numeric NOT NULL,
            estimated_usd numeric NOT NULL,
            calls bigint NOT NULL,
            input_tokens bigint NOT NULL,
            output_tokens bigint NOT NULL,
            run_id text NOT NULL REFERENCES {RUNS}
        )""",
        f"CREATE INDEX {SETTLED}_by_day ON {SETTLED} (day, provider)",
        f"CREATE INDEX {SETTLED}_by_run ON {SETTLED} (run_id)",
    ),
)

DimensionSql = Callable[[str], tuple[str, Sequence[object]]]
PartDimensionSql = Callable[[str, bool], tuple[str, Sequence[object]]]


@dataclass(frozen=True, slots=True)
class Part:
    """A piece of a period: whole days from the daily rollup (``low``/``high`` in days), or
    part of a day from the calls (in nanoseconds)."""

    daily: bool
    table: str
    low: int | None
    high: int | None


def tag_buckets(
    db: Any, parts: Sequence[Part], providers: Sequence[str], dimension_sql: PartDimensionSql
) -> list[TagBucket]:
    """See ``LedgerStore.tag_buckets``. ``dimension_sql(name, daily)`` is the ledger's SQL for
    the day and model of a row of either table."""
    if not providers:
        return []
    found: dict[tuple[str, str, str, str], TagBucket] = {}
    for part in parts:
        for bucket in _part_buckets(db, part, providers, dimension_sql):
            key = (bucket.day, bucket.provider, bucket.model, bucket.tags)
            same = found.get(key)
            if same is None:
                found[key] = bucket
                continue
            for name in (
                "cost_usd",
                "calls",
                "unpriced_calls",
                "input_tokens",
                "output_tokens",
                "cache_read_tokens",
                "cache_write_tokens",
            ):
                setattr(same, name, getattr(same, name) + getattr(bucket, name))
    return [found[key] for key in sorted(found)]


def _part_buckets(
    db: Any, part: Part, providers: Sequence[str], dimension_sql: PartDimensionSql
) -> list[TagBucket]:
    day, _ = dimension_sql("day", part.daily)
    model, _ = dimension_sql("model", part.daily)
    if part.daily:
        counts = "sum(calls), sum(unpriced_calls)"
        time_column = "day"
    else:
        counts = "count(*), count(*) FILTER (WHERE cost_status = 'unpriced')"
        time_column = "time_unix_nano"
    conditions: list[str] = ["provider = ANY(%s)"]
    params: list[object] = [list(providers)]
    if part.low is not None:
        conditions.append(f"{time_column} >= %s")
        params.append(part.low)
    if part.high is not None:
        conditions.append(f"{time_column} < %s")
        params.append(part.high)
    query = f"""
        SELECT {day}, provider, {model}, tags, COALESCE(sum(cost_usd), 0), {counts},
            sum(input_tokens), sum(output_tokens), sum(cache_read_tokens),
            sum(cache_write_tokens)
        FROM {part.table}
        WHERE {" AND ".join(conditions)}
        GROUP BY 1, 2, 3, 4
    """
    return [
        TagBucket(
            day=row[0],
            provider=row[1],
            model=row[2],
            tags=tags_json(row[3]),
            cost_usd=Decimal(row[4]),
            calls=int(row[5]),
            unpriced_calls=int(row[6]),
            input_tokens=int(row[7]),
            output_tokens=int(row[8]),
            cache_read_tokens=int(row[9]),
            cache_write_tokens=int(row[10]),
        )
        for row in db.execute(query, params).fetchall()
    ]


def write_reconciliation(
    db: Any,
    run: RunRecord,
    gaps: Sequence[GapRecord],
    settled: Sequence[SettledRecord],
    settled_providers: Sequence[str],
) -> None:
    """See ``LedgerStore.write_reconciliation``: one transaction."""
    with db.transaction(), db.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {RUNS} VALUES (%s, %s, %s, %s, %s, %s)",
            (
                run.run_id,
                run.at_unix_nano,
                date.fromisoformat(run.since_day),
                date.fromisoformat(run.until_day),
                list(run.providers),
                run.sources,
            ),
        )
        cursor.executemany(
            f"INSERT INTO {GAPS} VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    run.run_id,
                    date.fromisoformat(g.day),
                    g.provider,
                    g.model,
                    g.project,
                    g.billed_usd,
                    g.attributed_usd,
                    g.cause,
                )
                for g in gaps
            ],
        )
        if not settled_providers:
            return
        cursor.execute(
            f"DELETE FROM {SETTLED} WHERE day >= %s AND day < %s AND provider = ANY(%s)",
            (
                date.fromisoformat(run.since_day),
                date.fromisoformat(run.until_day),
                list(settled_providers),
            ),
        )
        columns = (
            "day, time_unix_nano, provider, model, project, tags, attributed, settled_usd, "
            "estimated_usd, calls, input_tokens, output_tokens, run_id"
        )
        with cursor.copy(f"COPY {SETTLED} ({columns}) FROM STDIN") as copy:
            for s in settled:
                copy.write_row(
                    (
                        date.fromisoformat(s.day),
                        s.time_unix_nano,
                        s.provider,
                        s.model,
                        s.project,
                        s.tags,
                        s.attributed,
                        s.settled_usd,
                        s.estimated_usd,
                        s.calls,
                        s.input_tokens,
                        s.output_tokens,
                        run.run_id,
                    )
                )


def settled_aggregate(
    db: Any,
    group_by: Sequence[str],
    *,
    since_unix_nano: int | None,
    until_unix_nano: int | None,
    where: Mapping[str, str] | None,
    dimension_sql: DimensionSql,
) -> list[SettledTotals]:
    """See ``LedgerStore.settled_aggregate``. ``dimension_sql`` is the ledger's SQL for a
    period of ``time_unix_nano`` or a tag of ``tags``, as over the calls."""

    def settled_sql(name: str) -> tuple[str, Sequence[object]]:
        kind, what = settled_dimension(name)
        if kind == "column":
            return what, ()
        sql, params = dimension_sql(name)
        if kind == "time":
            return sql, params
        return f"(CASE WHEN attributed THEN {sql} ELSE '{UNATTRIBUTED}' END)", params

    query, parameters = grouped_query(
        SETTLED,
        group_by,
        [
            "sum(settled_usd)",
            "sum(estimated_usd)",
            "COALESCE(sum(calls), 0)",
            "COALESCE(sum(input_tokens), 0)",
            "COALESCE(sum(output_tokens), 0)",
        ],
        dimension=settled_sql,
        mark="%s",
        since_unix_nano=since_unix_nano,
        until_unix_nano=until_unix_nano,
        where=where,
    )
    width = len(group_by)
    return [
        SettledTotals(
            key=tuple(str(v) for v in row[:width]),
            settled_usd=Decimal(row[width] or 0),
            estimated_usd=Decimal(row[width + 1] or 0),
            calls=int(row[width + 2]),
            input_tokens=int(row[width + 3]),
            output_tokens=int(row[width + 4]),
        )
        for row in db.execute(query, parameters).fetchall()
        if width or row[width] is not None
    ]


def settled_runs(db: Any) -> list[RunRecord]:
    """See ``LedgerStore.settled_runs``."""
    rows = db.execute(
        f"SELECT run_id, at_unix_nano, since_day, until_day, providers, sources FROM {RUNS} "
        f"WHERE run_id IN (SELECT DISTINCT run_id FROM {SETTLED}) ORDER BY at_unix_nano"
    ).fetchall()
    return [
        RunRecord(row[0], row[1], row[2].isoformat(), row[3].isoformat(), tuple(row[4]), row[5])
        for row in rows
    ]


_LATEST_GAPS = f"""
    SELECT g.provider, g.model, sum(COALESCE(g.billed_usd, 0)), sum(g.attributed_usd),
        min(r.since_day), max(r.until_day)
    FROM {GAPS} AS g JOIN {RUNS} AS r ON r.run_id = g.run_id
    WHERE r.at_unix_nano = (
        SELECT max(r2.at_unix_nano) FROM {RUNS} AS r2 WHERE g.provider = ANY(r2.providers)
    )
    GROUP BY g.provider, g.model
    ORDER BY g.provider COLLATE "C", g.model COLLATE "C"
"""


def latest_gaps(db: Any) -> list[LatestGap]:
    """See ``LedgerStore.latest_gaps``; rows of models a run did not bill count as billed 0."""
    return [
        LatestGap(row[0], row[1], row[2], row[3], row[4].isoformat(), row[5].isoformat())
        for row in db.execute(_LATEST_GAPS).fetchall()
    ]
