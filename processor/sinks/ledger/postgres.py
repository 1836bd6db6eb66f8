"""The shared ledger in PostgreSQL: one database that every processor replica writes to.

Each counted call is one row of ``spanledger_calls`` keyed by (trace_id, span_id); rows are
inserted with ``ON CONFLICT DO NOTHING``, so a call written twice (by one replica replaying its
write-ahead log after a crash, or by two replicas after a misrouted trace) counts once. In the
same statement, the rows that were new are added to ``spanledger_calls_daily``, one row per
UTC day, tag set, provider, model, operation, cost status and cost source holding the sums
a report needs. A report reads whole days from that rollup and only the partial days at the
edges of ``--since``/``--until`` from the calls themselves, so it answers in about the same time
for ten million calls as for ten thousand. Costs are ``numeric``: exact, like SQLite's text.

The driver is psycopg 3 (``psycopg[binary]``): the maintained PostgreSQL adapter for Python
(psycopg2 only gets fixes), whose binary wheel carries libpq so nothing is compiled; it streams
``COPY FROM STDIN`` from Python rows, binds parameters on the server and returns ``numeric`` as
``Decimal``. It honours libpq's environment (``PGPASSWORD``, ``PGPASSFILE``, ``PGSSLMODE`` …).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Literal, TypeVar

from spanledger.processor.model import CountedCall
from spanledger.processor.sinks.ledger import postgres_reconciled
from spanledger.processor.sinks.ledger.base import (
    NANOS_PER_DAY,
    GroupTotals,
    LedgerError,
    SchemaError,
    dimension,
    merge_groups,
)
from spanledger.processor.sinks.ledger.migrations import Migration, pending, schema_problem
from spanledger.processor.sinks.ledger.postgres_reconciled import Part
from spanledger.processor.sinks.ledger.reconciled import (
    GapRecord,
    LatestGap,
    RunRecord,
    SettledRecord,
    SettledTotals,
    TagBucket,
)
from spanledger.processor.sinks.ledger.rows import COLUMNS, Row, call_rows, describe_row
from spanledger.processor.sinks.ledger.secrets import redact_url, scrub, url_password
from spanledger.semconv import UNTAGGED

try:
    import psycopg
    from psycopg import errors as pg_errors
except ImportError:  # pragma: no cover - depends on the installation
    psycopg = None  # type: ignore[assignment]
    pg_errors = None  # type: ignore[assignment]

log = logging.getLogger("spanledger.processor.sinks.ledger")
_T = TypeVar("_T")

WriteMethod = Literal["copy", "values"]
CALLS = "spanledger_calls"
DAILY = "spanledger_calls_daily"
META = "spanledger_meta"
_STAGING = "spanledger_staging"
_MIGRATION_LOCK = 0x5BA1_1ED6
"""Advisory lock key: replicas starting together migrate one after the other."""
_VALUES_ROWS = 1000
"""Rows per multi-row INSERT (17 parameters each, under PostgreSQL's 65,535)."""

_SUMMED_COLUMNS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)
_DAILY_KEY = ("day", "provider", "model", "operation", "cost_status", "cost_source", "tags")

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "calls keyed by (trace_id, span_id), their start-time index and the daily rollup",
        (
            f"""CREATE TABLE {CALLS} (
                trace_id text NOT NULL,
                span_id text NOT NULL,
                time_unix_nano bigint NOT NULL,
                tags jsonb NOT NULL,
                provider text,
                model text,
                operation text,
                input_tokens bigint NOT NULL,
                output_tokens bigint NOT NULL,
                cache_read_tokens bigint NOT NULL,
                cache_write_tokens bigint NOT NULL,
                reasoning_tokens bigint NOT NULL,
                cost_status text NOT NULL,
                cost_source text,
                cost_usd numeric,
                billable_usd numeric,
                pricing_model text,
                PRIMARY KEY (trace_id, span_id)
            )""",
            f"CREATE INDEX {CALLS}_by_time ON {CALLS} (time_unix_nano)",
            f"""CREATE TABLE {DAILY} (
                day integer NOT NULL,
                tags jsonb NOT NULL,
                provider text NOT NULL,
                model text NOT NULL,
                operation text NOT NULL,
                cost_status text NOT NULL,
                cost_source text NOT NULL,
                calls bigint NOT NULL,
                unpriced_calls bigint NOT NULL,
                cost_usd numeric NOT NULL,
                billable_usd numeric NOT NULL,
                input_tokens numeric NOT NULL,
                output_tokens numeric NOT NULL,
                cache_read_tokens numeric NOT NULL,
                cache_write_tokens numeric NOT NULL,
                reasoning_tokens numeric NOT NULL,
                PRIMARY KEY ({", ".join(_DAILY_KEY)})
            )""",
        ),
    ),
    postgres_reconciled.MIGRATION,
)
SCHEMA_VERSION = MIGRATIONS[-1].version


def _none(column: str) -> str:
    return f"COALESCE({column}, '{UNTAGGED}')"


_DAY_OF_TIME = f"(time_unix_nano / {NANOS_PER_DAY})"
_DAILY_SELECT = f"""
SELECT {_DAY_OF_TIME}::integer, tags, {_none("provider")}, {_none("model")},
    {_none("operation")}, cost_status, {_none("cost_source")},
    count(*), count(*) FILTER (WHERE cost_status = 'unpriced'),
    COALESCE(sum(cost_usd), 0), COALESCE(sum(COALESCE(billable_usd, cost_usd)), 0),
    {", ".join(f"sum({c})" for c in _SUMMED_COLUMNS)}
FROM {{source}} GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 3, 4, 5, 6, 7, 2
"""
"""The rollup rows of the calls in ``{source}``, in key order (so that two writers adding to
the same rollup rows lock them in the same order and never deadlock)."""
_DAILY_COLUMNS = (
    "day",
    "tags",
    "provider",
    "model",
    "operation",
    "cost_status",
    "cost_source",
    "calls",
    "unpriced_calls",
    "cost_usd",
    "billable_usd",
    *_SUMMED_COLUMNS,
)
_DAILY_ADD = f"""
INSERT INTO {DAILY} AS d ({", ".join(_DAILY_COLUMNS)}) {_DAILY_SELECT}
ON CONFLICT ({", ".join(_DAILY_KEY)}) DO UPDATE SET
{", ".join(f"{c} = d.{c} + EXCLUDED.{c}" for c in _DAILY_COLUMNS[len(_DAILY_KEY) :])}
"""
_WRITE = f"""
WITH new AS (
    INSERT INTO {CALLS} ({", ".join(COLUMNS)}) {{rows}}
    ON CONFLICT (trace_id, span_id) DO NOTHING
    RETURNING *
), daily AS ({_DAILY_ADD.format(source="new")})
SELECT count(*) FROM new
"""
_WRITE_FROM_STAGING = _WRITE.format(
    rows=f"SELECT {', '.join(COLUMNS)} FROM pg_temp.{_STAGING} ORDER BY trace_id, span_id"
)
_COPY = f"COPY pg_temp.{_STAGING} ({', '.join(COLUMNS)}) FROM STDIN"
_ONE_ROW = "(" + ", ".join("%s" for _ in COLUMNS) + ")"


def _write_values(count: int) -> str:
    return _WRITE.format(rows="VALUES " + ", ".join(_ONE_ROW for _ in range(count)))


def _row_errors() -> tuple[type[BaseException], ...]:
    """Failures one row's values cause (the rest of its batch can still be written)."""
    return (pg_errors.DataError, pg_errors.IntegrityError, UnicodeError)


def _transient_errors() -> tuple[type[BaseException], ...]:
    """Failures that pass: the server is away, restarting, or chose this transaction to undo."""
    return (psycopg.OperationalError, psycopg.InterfaceError, pg_errors.TransactionRollbackError)


def transient(exc: BaseException) -> bool:
    """Whether ``exc`` is worth retrying as it is (connection lost, deadlock, shutdown)."""
    return psycopg is not None and isinstance(exc, _transient_errors())


def _time_sql(name: str, day: str) -> str:
    date = f"(DATE '1970-01-01' + ({day})::integer)"
    if name == "day":
        return f"to_char({date}, 'YYYY-MM-DD')"
    if name == "week":
        return f"to_char({date} - mod(({day})::integer + 3, 7), 'YYYY-MM-DD')"
    return f"to_char({date}, 'YYYY-MM')"


def _dimension_sql(name: str, daily: bool) -> tuple[str, list[str]]:
    kind, what = dimension(name)
    if kind == "tag":
        return f"COALESCE(tags ->> %s, '{UNTAGGED}')", [what]
    if kind == "time":
        return _time_sql(what, "day" if daily else _DAY_OF_TIME), []
    if daily or what == "cost_status":
        return what, []
    return _none(what), []


def day_spans(
    since: int | None, until: int | None
) -> list[tuple[Literal["calls", "daily"], int | None, int | None]]:
    """``[since, until)`` cut into whole UTC days (read from the rollup, bounds in days) and the
    partial days at either end (read from the calls, bounds in nanoseconds)."""
    first = None if since is None else -(-since // NANOS_PER_DAY)
    last = None if until is None else until // NANOS_PER_DAY
    if first is not None and last is not None and first >= last:
        return [("calls", since, until)]
    spans: list[tuple[Literal["calls", "daily"], int | None, int | None]] = []
    if since is not None and first is not None and since < first * NANOS_PER_DAY:
        spans.append(("calls", since, first * NANOS_PER_DAY))
    spans.append(("daily", first, last))
    if until is not None and last is not None and last * NANOS_PER_DAY < until:
        spans.append(("calls", last * NANOS_PER_DAY, until))
    return spans


_REFUSALS = ("authentication failed", "does not exist", "no pg_hba.conf entry", "permission denied")
"""libpq's words for a server that answered and refused (its errors carry no SQLSTATE)."""


def _refused(exc: BaseException) -> bool:
    """Whether the server answered and said no (bad password, no such database or role):
    waiting would not help."""
    message = str(exc)
    return any(sign in message for sign in _REFUSALS)


def _require_driver() -> None:
    if psycopg is None:
        raise LedgerError(
            "a PostgreSQL ledger needs psycopg: pip install 'spanledger[postgres]' "
            "(or psycopg[binary])"
        )


class PostgresLedger:
    """A ledger in a PostgreSQL database, shared by any number of writers and readers.

    ``create=True`` (the writer's mode) brings the schema up to date first; readers leave it
    False and get a clear error for a database spanledger never wrote to. ``password``
    overrides one in ``url``; without either libpq's environment applies. ``write_method``:
    ``copy`` (COPY into a temporary table, then one INSERT … SELECT) or ``values`` (multi-row
    INSERTs); see bench/ledger_write.py for the measured difference.
    """

    def __init__(
        self,
        url: str,
        *,
        password: str | None = None,
        create: bool = False,
        connect_timeout: float = 5.0,
        write_method: WriteMethod = "copy",
        migrations: tuple[Migration, ...] = MIGRATIONS,
        wait_for_server: bool = False,
    ) -> None:
        _require_driver()
        self.location = redact_url(url)
        self.path = self.location
        self.write_method: WriteMethod = write_method
        self.rejected_rows = 0
        """Rows the database refused, each logged once and left out of its batch."""
        self.migrated_from: int | None = None
        """The schema version found before ``create`` migrated (None: not migrated)."""
        self._url = url
        self._password = password
        self._secrets = (password, url_password(url))
        self._timeout = max(2, round(connect_timeout))
        self._migrations = migrations
        self._version = migrations[-1].version
        self.schema_version = self._version
        self._writer = create
        self._schema_checked = False
        self._lock = threading.Lock()
        self._db: Any = None
        try:
            with self._lock:
                self._connection()
        except psycopg.OperationalError as exc:
            if not wait_for_server or _refused(exc):
                raise LedgerError(
                    f"cannot open ledger {self.location}: {self.scrub(exc)}"
                ) from None
            log.warning(
                "ledger %s: cannot connect yet, calls will wait in the queue: %s",
                self.location,
                self.scrub(exc),
            )
        except psycopg.Error as exc:
            self.close()
            raise LedgerError(f"cannot open ledger {self.location}: {self.scrub(exc)}") from None
        except LedgerError:
            self.close()
            raise

    def scrub(self, message: object) -> str:
        """``message`` with this ledger's password taken out, for a log line or an error."""
        return scrub(message, self._secrets)

    # Connection and schema.

    def _connection(self) -> Any:
        """The open connection, after connecting (and, the first time, migrating when writing
        and checking the schema version). Call with ``_lock`` held."""
        if self._db is not None and not self._db.closed and not self._db.broken:
            return self._db
        if self._db is not None:
            self._db.close()
            self._db = None
        options: dict[str, Any] = {
            "autocommit": True,
            "connect_timeout": self._timeout,
            "application_name": "spanledger",
        }
        if self._password is not None:
            options["password"] = self._password
        db = psycopg.connect(self._url, **options)
        try:
            if not self._schema_checked:
                if self._writer:
                    self.migrated_from = self._migrate(db)
                self._check_schema(db)
                self._schema_checked = True
            if self._writer:
                db.execute(
                    f"CREATE TEMP TABLE IF NOT EXISTS {_STAGING} (LIKE {CALLS}) "
                    "ON COMMIT DELETE ROWS"
                )
        except BaseException:
            db.close()
            raise
        self._db = db
        return db

    def _stored_version(self, db: Any) -> str | None:
        if db.execute("SELECT to_regclass(%s) IS NULL", (META,)).fetchone()[0]:
            return None
        row = db.execute(f"SELECT value FROM {META} WHERE key = 'schema_version'").fetchone()
        return row[0] if row else None

    def _check_schema(self, db: Any) -> None:
        found = self._stored_version(db)
        if found != str(self._version):
            raise SchemaError(schema_problem(self.location, found, self._version))

    def _migrate(self, db: Any) -> int:
        """Apply the missing steps in one transaction; returns the version found before."""
        with db.transaction():
            db.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            db.execute(f"CREATE TABLE IF NOT EXISTS {META} (key text PRIMARY KEY, value text)")
            found = self._stored_version(db)
            before = int(found) if found is not None and found.isdigit() else 0
            if (found is not None and str(before) != found) or before > self._version:
                raise SchemaError(schema_problem(self.location, found, self._version))
            steps = pending(self._migrations, before)
            for step in steps:
                for statement in step.statements:
                    db.execute(statement)
                log.info(
                    "ledger %s: schema version %d: %s",
                    self.location,
                    step.version,
                    step.description,
                )
            db.execute(
                f"INSERT INTO {META} (key, value) VALUES ('schema_version', %s) "
                "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                (str(self._version),),
            )
        return before

    # Writing.

    def write(self, calls: Iterable[CountedCall]) -> int:
        """Insert calls; a (trace_id, span_id) already present is skipped, a call that cannot be
        turned into a row is logged and skipped. Returns how many rows were new."""
        return self.write_rows(call_rows(calls))

    def write_rows(self, rows: Sequence[Row]) -> int:
        """Insert rows in one transaction, adding the new ones to the daily rollup.

        A row the database refuses (a value it cannot hold) is set aside with one log line and
        counted in ``rejected_rows``; the rest of the batch is written. A lost connection or a
        server going away raises (``transient`` says so) and the caller retries the batch.
        """
        if not rows:
            return 0
        ordered = sorted(rows, key=lambda row: (row[0], row[1]))
        with self._lock:
            db = self._connection()
            try:
                return self._write_batch(db, ordered)
            except _row_errors():
                return self._write_one_by_one(db, ordered)

    def _write_batch(self, db: Any, rows: Sequence[Row]) -> int:
        with db.transaction(), db.cursor() as cursor:
            if self.write_method == "copy":
                with cursor.copy(_COPY) as copy:
                    for row in rows:
                        copy.write_row(row)
                cursor.execute(_WRITE_FROM_STAGING)
                return cursor.fetchone()[0]
            new = 0
            for start in range(0, len(rows), _VALUES_ROWS):
                chunk = rows[start : start + _VALUES_ROWS]
                cursor.execute(_write_values(len(chunk)), [value for row in chunk for value in row])
                new += cursor.fetchone()[0]
            return new

    def _write_one_by_one(self, db: Any, rows: Sequence[Row]) -> int:
        new = 0
        statement = _write_values(1)
        for row in rows:
            try:
                with db.transaction(), db.cursor() as cursor:
                    cursor.execute(statement, row)
                    new += cursor.fetchone()[0]
            except _row_errors() as exc:
                self.rejected_rows += 1
                log.error(
                    "ledger %s: set aside %s: %s", self.location, describe_row(row), self.scrub(exc)
                )
        return new

    def delete_before(self, time_unix_nano: int) -> int:
        """Delete calls that started before ``time_unix_nano`` and their part of the rollup;
        returns how many calls were deleted.

        Writers wait while this runs, so the rollup of a day cut in two (the cutoff is not at
        midnight UTC) is recomputed from the calls that remain without missing a new one.
        """
        cutoff = int(time_unix_nano)
        day = cutoff // NANOS_PER_DAY
        with self._lock:
            db = self._connection()
            with db.transaction():
                db.execute(f"LOCK TABLE {DAILY} IN SHARE ROW EXCLUSIVE MODE")
                deleted = db.execute(
                    f"DELETE FROM {CALLS} WHERE time_unix_nano < %s", (cutoff,)
                ).rowcount
                db.execute(f"DELETE FROM {DAILY} WHERE day < %s", (day,))
                if cutoff % NANOS_PER_DAY:
                    self._rebuild_days(db, day, day + 1)
        return deleted

    def rebuild_rollup(self) -> None:
        """Recompute the whole daily rollup from the calls (after a bulk load outside
        spanledger, say). Writers wait while it runs."""
        with self._lock:
            db = self._connection()
            with db.transaction():
                db.execute(f"LOCK TABLE {DAILY} IN SHARE ROW EXCLUSIVE MODE")
                self._rebuild_days(db, None, None)

    @staticmethod
    def _rebuild_days(db: Any, first: int | None, last: int | None) -> None:
        if first is None or last is None:
            db.execute(f"DELETE FROM {DAILY}")
            db.execute(_DAILY_ADD.format(source=CALLS))
            return
        db.execute(f"DELETE FROM {DAILY} WHERE day >= %s AND day < %s", (first, last))
        source = (
            f"(SELECT * FROM {CALLS} WHERE time_unix_nano >= {first * NANOS_PER_DAY} "
            f"AND time_unix_nano < {last * NANOS_PER_DAY}) AS part"
        )
        db.execute(_DAILY_ADD.format(source=source))

    # Reading.

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

        The same contract as the SQLite ``Ledger.aggregate``: ``where`` keeps rows whose
        dimension equals the value, ``billable`` sums the marked-up cost where one was
        recorded, and with no ``group_by`` there is one group even when no call matches.
        """
        parts = []
        for table, low, high in day_spans(since_unix_nano, until_unix_nano):
            query, params = self._query(
                table == "daily", group_by, low=low, high=high, where=where, billable=billable
            )
            parts.append(self._fetch(query, params, len(group_by)))
        return merge_groups(len(group_by), parts)

    @staticmethod
    def _query(
        daily: bool,
        group_by: Sequence[str],
        *,
        low: int | None,
        high: int | None,
        where: Mapping[str, str] | None,
        billable: bool,
    ) -> tuple[str, list[object]]:
        selects, params = [], []
        for index, name in enumerate(group_by):
            sql, args = _dimension_sql(name, daily)
            selects.append(f"{sql} AS g{index}")
            params += args
        if daily:
            cost = "billable_usd" if billable else "cost_usd"
            selects += [f"sum({cost})", "sum(calls)", "sum(unpriced_calls)"]
            time_column = "day"
        else:
            cost = "COALESCE(billable_usd, cost_usd)" if billable else "cost_usd"
            selects += [
                f"sum({cost})",
                "count(*)",
                "count(*) FILTER (WHERE cost_status = 'unpriced')",
            ]
            time_column = "time_unix_nano"
        selects += [f"sum({column})" for column in _SUMMED_COLUMNS]
        conditions, condition_params = [], []
        if low is not None:
            conditions.append(f"{time_column} >= %s")
            condition_params.append(low)
        if high is not None:
            conditions.append(f"{time_column} < %s")
            condition_params.append(high)
        for name, value in (where or {}).items():
            sql, args = _dimension_sql(name, daily)
            conditions.append(f"{sql} = %s")
            condition_params += [*args, value]
        query = f"SELECT {', '.join(selects)} FROM {DAILY if daily else CALLS}"
        if conditions:
            query += " WHERE " + " AND ".join(conditions)
        if group_by:
            query += " GROUP BY " + ", ".join(f"g{i}" for i in range(len(group_by)))
        return query, [*params, *condition_params]

    def _fetch(self, query: str, params: list[object], width: int) -> list[GroupTotals]:
        with self._lock:
            try:
                fetched = self._connection().execute(query, params).fetchall()
            except psycopg.Error as exc:
                raise self._read_error(exc) from None
        return [
            GroupTotals(
                key=tuple(str(v) for v in row[:width]),
                cost_usd=Decimal(row[width] or 0),
                calls=int(row[width + 1] or 0),
                unpriced_calls=int(row[width + 2] or 0),
                input_tokens=int(row[width + 3] or 0),
                output_tokens=int(row[width + 4] or 0),
                cache_read_tokens=int(row[width + 5] or 0),
                cache_write_tokens=int(row[width + 6] or 0),
                reasoning_tokens=int(row[width + 7] or 0),
            )
            for row in fetched
        ]

    def _read_error(self, exc: BaseException) -> LedgerError:
        return LedgerError(f"cannot read ledger {self.location}: {self.scrub(exc)}")

    def time_range(self) -> tuple[int, int] | None:
        """The earliest and latest call start times, or None for an empty ledger."""
        with self._lock:
            try:
                low, high = (
                    self._connection()
                    .execute(f"SELECT min(time_unix_nano), max(time_unix_nano) FROM {CALLS}")
                    .fetchone()
                )
            except psycopg.Error as exc:
                raise self._read_error(exc) from None
        return None if low is None else (low, high)

    def tag_keys(self) -> list[str]:
        """Every tag key stored with a call, sorted (the processor's ``tags`` over time)."""
        query = f"SELECT DISTINCT jsonb_object_keys(tags) FROM {CALLS}"
        with self._lock:
            try:
                rows = self._connection().execute(query).fetchall()
            except psycopg.Error as exc:
                raise self._read_error(exc) from None
        return sorted(row[0] for row in rows)

    # The reconciliation's tables (postgres_reconciled.py).

    def _read(self, read: Callable[[Any], _T]) -> _T:
        with self._lock:
            try:
                return read(self._connection())
            except psycopg.Error as exc:
                raise self._read_error(exc) from None

    def tag_buckets(
        self, since_unix_nano: int, until_unix_nano: int, providers: Sequence[str]
    ) -> list[TagBucket]:
        """The calls of ``providers`` over ``[since, until)`` per UTC day, model and tag set:
        whole days from the rollup, partial ones from the calls."""
        parts = [
            Part(table == "daily", DAILY if table == "daily" else CALLS, low, high)
            for table, low, high in day_spans(int(since_unix_nano), int(until_unix_nano))
        ]
        return self._read(
            lambda db: postgres_reconciled.tag_buckets(db, parts, providers, _dimension_sql)
        )

    def write_reconciliation(
        self,
        run: RunRecord,
        gaps: Sequence[GapRecord],
        settled: Sequence[SettledRecord] = (),
        settled_providers: Sequence[str] = (),
    ) -> None:
        """Record one run in one transaction (see ``LedgerStore.write_reconciliation``)."""
        with self._lock:
            try:
                postgres_reconciled.write_reconciliation(
                    self._connection(), run, gaps, settled, settled_providers
                )
            except psycopg.Error as exc:
                raise LedgerError(
                    f"cannot write the reconciliation to {self.location}: {self.scrub(exc)}"
                ) from None

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
            lambda db: postgres_reconciled.settled_aggregate(
                db,
                group_by,
                since_unix_nano=since_unix_nano,
                until_unix_nano=until_unix_nano,
                where=where,
                dimension_sql=lambda name: _dimension_sql(name, False),
            )
        )

    def settled_runs(self) -> list[RunRecord]:
        """The runs whose settled amounts are still in the ledger, oldest first."""
        return self._read(postgres_reconciled.settled_runs)

    def latest_gaps(self) -> list[LatestGap]:
        """The gap per provider and model over the latest run of each provider."""
        return self._read(postgres_reconciled.latest_gaps)

    def close(self) -> None:
        """Close the connection; using the ledger again reconnects."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> PostgresLedger:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
