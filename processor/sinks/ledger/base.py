"""What every ledger backend offers readers and the writer, whatever database holds the rows.

``LedgerStore`` is the interface; ``Ledger`` (SQLite, one file per machine) and
``PostgresLedger`` (one database for many replicas) implement it and give the same answers
for the same rows. The dimensions a report can group by are named here once; each backend
turns a name into its own SQL.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from spanledger.processor.model import CountedCall
from spanledger.processor.sinks.ledger.rows import Row

if TYPE_CHECKING:
    from spanledger.processor.sinks.ledger.reconciled import (
        GapRecord,
        LatestGap,
        RunRecord,
        SettledRecord,
        SettledTotals,
        TagBucket,
    )

COLUMN_NAMES = ("provider", "model", "operation", "cost_status", "cost_source")
"""Dimensions that are columns of the ledger rather than tags."""
TIME_NAMES = ("day", "week", "month")
"""Calendar buckets in UTC; a week is named by its Monday."""
BUILTIN_NAMES = (*COLUMN_NAMES, *TIME_NAMES)
TAG_PREFIX = "tag:"
"""Prefix that forces a name to mean a tag, e.g. ``tag:model`` for a tag called ``model``."""
_TAG_KEY = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
NANOS_PER_DAY = 86_400 * 10**9


class LedgerError(Exception):
    """The ledger cannot be opened or read; the message says which ledger and why."""


class SchemaError(LedgerError):
    """The ledger's schema is not the one this version of spanledger reads and writes."""


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


_SUMMED = [f.name for f in fields(GroupTotals) if f.name != "key"]


def dimension(name: str) -> tuple[str, str]:
    """``(kind, what)`` for a ``--by`` or ``--where`` name: ``("column", "model")``,
    ``("time", "day")`` or ``("tag", "customer")``.

    Built-in names win over tags of the same name; ``tag:NAME`` means the tag. Raises
    ``ValueError`` for a name that is neither.
    """
    if name in COLUMN_NAMES:
        return "column", name
    if name in TIME_NAMES:
        return "time", name
    key = name.removeprefix(TAG_PREFIX)
    if not _TAG_KEY.match(key):
        raise ValueError(f"{name!r} is not a tag key or one of {', '.join(BUILTIN_NAMES)}")
    return "tag", key


def merge_groups(width: int, parts: Iterable[Sequence[GroupTotals]]) -> list[GroupTotals]:
    """Groups of several partial results added up by key, in first-seen order.

    With ``width`` 0 (no grouping) there is always exactly one group, even when every part is
    empty.
    """
    merged: dict[tuple[str, ...], GroupTotals] = {}
    for part in parts:
        for group in part:
            found = merged.get(group.key)
            if found is None:
                merged[group.key] = GroupTotals(group.key, *(getattr(group, n) for n in _SUMMED))
                continue
            for name in _SUMMED:
                setattr(found, name, getattr(found, name) + getattr(group, name))
    if not merged and width == 0:
        return [GroupTotals((), Decimal(0), 0, 0, 0, 0, 0, 0, 0)]
    return list(merged.values())


def grouped_query(
    table: str,
    group_by: Sequence[str],
    aggregates: Sequence[str],
    *,
    dimension: Callable[[str], tuple[str, Sequence[object]]],
    mark: str = "?",
    since_unix_nano: int | None = None,
    until_unix_nano: int | None = None,
    where: Mapping[str, str] | None = None,
) -> tuple[str, list[object]]:
    """The query selecting the ``group_by`` dimensions (``g0``, ``g1`` …, as ``dimension``
    writes them in the backend's SQL) then ``aggregates`` from ``table``, over ``[since,
    until)`` of its ``time_unix_nano`` and the ``where`` equalities, one row per group; and its
    parameters. ``mark`` is the driver's parameter placeholder (``?`` or ``%s``)."""
    selects: list[str] = []
    params: list[object] = []
    for index, name in enumerate(group_by):
        sql, args = dimension(name)
        selects.append(f"{sql} AS g{index}")
        params.extend(args)
    conditions: list[str] = []
    condition_params: list[object] = []
    if since_unix_nano is not None:
        conditions.append(f"time_unix_nano >= {mark}")
        condition_params.append(int(since_unix_nano))
    if until_unix_nano is not None:
        conditions.append(f"time_unix_nano < {mark}")
        condition_params.append(int(until_unix_nano))
    for name, value in (where or {}).items():
        sql, args = dimension(name)
        conditions.append(f"{sql} = {mark}")
        condition_params.extend([*args, value])
    query = f"SELECT {', '.join([*selects, *aggregates])} FROM {table}"
    if conditions:
        query += " WHERE " + " AND ".join(conditions)
    if group_by:
        query += " GROUP BY " + ", ".join(f"g{i}" for i in range(len(group_by)))
    return query, [*params, *condition_params]


class LedgerStore(Protocol):
    """A ledger: one row per counted call, keyed by (trace_id, span_id), written once."""

    location: str
    """Where it is, for people to read (a file path, or a URL without its password)."""

    def write(self, calls: Iterable[CountedCall]) -> int:
        """Store ``calls``; a (trace_id, span_id) already present is skipped. New rows count."""
        ...

    def write_rows(self, rows: Sequence[Row]) -> int:
        """Store rows built by ``call_rows``, as ``write`` does."""
        ...

    def aggregate(
        self,
        group_by: Sequence[str] = (),
        *,
        since_unix_nano: int | None = None,
        until_unix_nano: int | None = None,
        where: Mapping[str, str] | None = None,
        billable: bool = False,
    ) -> list[GroupTotals]:
        """Totals per distinct value of the ``group_by`` dimensions over ``[since, until)``."""
        ...

    def time_range(self) -> tuple[int, int] | None:
        """The earliest and latest call start times, or None for an empty ledger."""
        ...

    def tag_keys(self) -> list[str]:
        """Every tag key stored with a call, sorted."""
        ...

    def delete_before(self, time_unix_nano: int) -> int:
        """Delete calls that started before ``time_unix_nano``; returns how many."""
        ...

    # What ``spanledger reconcile`` reads and keeps (see ``reconciled``).

    def tag_buckets(
        self, since_unix_nano: int, until_unix_nano: int, providers: Sequence[str]
    ) -> list[TagBucket]:
        """The calls of ``providers`` over ``[since, until)`` per UTC day, model and tag set,
        ordered by day, provider, model and tags."""
        ...

    def write_reconciliation(
        self,
        run: RunRecord,
        gaps: Sequence[GapRecord],
        settled: Sequence[SettledRecord] = (),
        settled_providers: Sequence[str] = (),
    ) -> None:
        """Record one run in one transaction: its gaps, and the settled amounts of
        ``settled_providers``, which replace theirs over the run's days."""
        ...

    def settled_aggregate(
        self,
        group_by: Sequence[str] = (),
        *,
        since_unix_nano: int | None = None,
        until_unix_nano: int | None = None,
        where: Mapping[str, str] | None = None,
    ) -> list[SettledTotals]:
        """Settled and estimated totals per distinct value of ``group_by`` (days whose start
        lies in ``[since, until)``). Without ``group_by``, one group holding the total, or
        none when nothing is settled."""
        ...

    def settled_runs(self) -> list[RunRecord]:
        """The runs whose settled amounts are still in the ledger, oldest first."""
        ...

    def latest_gaps(self) -> list[LatestGap]:
        """Billed and attributed cost per provider and model over the latest run of each
        provider, ordered by provider and model. Empty before any run."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> LedgerStore: ...

    def __exit__(self, *_exc: object) -> None: ...
