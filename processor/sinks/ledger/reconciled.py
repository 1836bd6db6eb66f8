"""What ``spanledger reconcile`` keeps in the ledger, beside the estimates and never over them.

Three tables, on either backend (the calls and their rollup are never touched):

- runs: one row per run that wrote (when, which days, which providers, from what);
- gaps: per run, one row per day x provider x model (x project): billed against attributed
  cost and the cause of the difference. The processor's gap gauges read these;
- settled: the provider's billed amounts spread over the tag buckets, to the cent. A new run
  over the same days and providers replaces their settled rows, so each day is settled once.

This module holds the records both backends read and write and the dimensions a settled
report groups by; the SQL is in ``sqlite_reconciled`` and ``postgres_reconciled``, reached
through the ledger's ``LedgerStore`` methods (``tag_buckets``, ``write_reconciliation``,
``settled_aggregate``, ``settled_runs``, ``latest_gaps``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from spanledger.processor.sinks.ledger.base import COLUMN_NAMES, TIME_NAMES, dimension

UNATTRIBUTED = "(unattributed)"
"""The settled bucket of billed spend that no tagged call explains."""

SETTLED_COLUMNS = ("provider", "model", "project")
"""Columns of the settled amounts a report can group by."""
SETTLED_DIMENSIONS = (*TIME_NAMES, *SETTLED_COLUMNS)
"""Built-in dimensions a settled report can group by (besides tags)."""


@dataclass(slots=True)
class TagBucket:
    """The ledger's calls of one day, provider, model and exact tag set."""

    day: str
    provider: str
    model: str
    tags: str
    """The tag set as sorted JSON text (``rows.tags_json``), the same on both backends."""
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


def settled_dimension(name: str) -> tuple[str, str]:
    """``(kind, what)`` of a ``--by``/``--where`` name over the settled amounts: ``("time",
    "day")``, ``("column", "project")`` or ``("tag", "customer")``. ``ValueError`` for a name
    the settled amounts do not carry (``operation``, ``cost_status``, ``cost_source``)."""
    if name in SETTLED_COLUMNS:
        return "column", name
    if name in COLUMN_NAMES:
        raise ValueError(
            f"{name!r} is not kept per settled amount; group by a tag or one of "
            f"{', '.join(SETTLED_DIMENSIONS)}"
        )
    return dimension(name)


def check_settled_dimensions(names: Iterable[str]) -> None:
    """Raise ``ValueError`` for a dimension the settled amounts do not carry."""
    for name in names:
        settled_dimension(name)


def decimal_text(value: Decimal | None) -> str | None:
    """An amount as exact decimal text (None stays None)."""
    return None if value is None else format(value, "f")
