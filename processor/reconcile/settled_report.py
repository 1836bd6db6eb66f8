"""``spanledger report --settled``: the provider-settled cost per tag, from what ``spanledger
reconcile`` stored beside the estimates. Every grouping adds up to the invoices to the cent."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal

from spanledger.processor.report.periods import describe, to_unix_nano
from spanledger.processor.report.render import render
from spanledger.processor.sinks.ledger import LedgerStore
from spanledger.processor.sinks.ledger.base import TIME_NAMES
from spanledger.processor.sinks.ledger.reconciled import (
    SETTLED_DIMENSIONS,
    check_settled_dimensions,
)

COLUMNS = [
    "cost_usd",
    "estimated_cost_usd",
    "adjustment_usd",
    "share_pct",
    "calls",
    "input_tokens",
    "output_tokens",
]
_HEADINGS = {
    "cost_usd": "settled $",
    "estimated_cost_usd": "estimated $",
    "adjustment_usd": "adjustment $",
}
_HUNDRED = Decimal(100)


def settled_report(
    ledger: LedgerStore,
    by: Sequence[str],
    *,
    since: datetime | None,
    until: datetime | None,
    where: Mapping[str, str],
    fmt: str,
) -> str:
    """Settled cost per ``by`` group over the days starting in ``[since, until)``."""
    check_settled_dimensions([*by, *where])
    groups = ledger.settled_aggregate(
        by,
        since_unix_nano=to_unix_nano(since) if since else None,
        until_unix_nano=to_unix_nano(until) if until else None,
        where=where,
    )
    total = sum((g.settled_usd for g in groups), Decimal(0))
    groups.sort(key=lambda g: (-g.settled_usd, -g.calls, g.key))
    time_positions = [i for i, name in enumerate(by) if name in TIME_NAMES]
    if time_positions:
        groups.sort(key=lambda g: tuple(g.key[i] for i in time_positions))
    rows = []
    for group in groups:
        row: dict[str, object] = dict(zip(by, group.key, strict=True))
        share = None
        if total:
            share = (group.settled_usd * _HUNDRED / total).quantize(Decimal("0.01"))
        row |= {
            "cost_usd": group.settled_usd,
            "estimated_cost_usd": group.estimated_usd,
            "adjustment_usd": group.settled_usd - group.estimated_usd,
            "share_pct": share,
            "calls": group.calls,
            "input_tokens": group.input_tokens,
            "output_tokens": group.output_tokens,
        }
        rows.append(row)
    runs = ledger.settled_runs()
    if since or until:
        start = describe(since) if since else "the first"
        end = describe(until) if until else "the last"
        days = f"the settled days starting {start} .. {end} UTC"
    else:
        days = "every settled day"
    estimated = sum((g.estimated_usd for g in groups), Decimal(0))
    footer = [
        f"ledger {ledger.location}, {days}",
        f"settled total ${total.quantize(Decimal('0.01')):,f} (the providers' invoices for "
        "those days); estimated "
        f"${estimated.quantize(Decimal('0.000001')):,f}",
    ]
    if runs:
        providers = sorted({p for run in runs for p in run.providers})
        footer.append(
            f"from {len(runs)} reconciliation(s) of {', '.join(providers)}, the latest over "
            f"{runs[-1].since_day} .. {runs[-1].until_day}"
        )
    else:
        footer.append("nothing settled yet: run `spanledger reconcile` first")
    return render(
        rows,
        [*by, *COLUMNS],
        fmt,
        footer,
        headings=_HEADINGS,
        money=("estimated_cost_usd", "adjustment_usd"),
    )


__all__ = ["SETTLED_DIMENSIONS", "settled_report"]
