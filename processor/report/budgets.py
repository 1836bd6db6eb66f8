"""``spanledger report --budgets``: spend against every budget in its current window, read
from the ledger exactly as the processor loads it at start-up."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal

from spanledger.processor.report.render import render
from spanledger.processor.sinks.budgets.config import BudgetsConfig
from spanledger.processor.sinks.budgets.evaluation import BudgetBook, ledger_spend

COLUMNS = [
    "budget",
    "scope",
    "window",
    "start",
    "end",
    "spend_usd",
    "amount_usd",
    "used_pct",
    "exceeded",
    "thresholds_crossed",
]


def budget_rows(
    config: BudgetsConfig, ledger: object, clock: Callable[[], float] = time.time
) -> list[dict[str, object]]:
    """One row per budget, scope and window, fullest first."""
    book = BudgetBook(config, clock=clock)
    book.rebuild(ledger_spend(ledger))
    rows = []
    for status in book.status():
        spend = Decimal(str(status["spend_usd"]))
        amount = Decimal(str(status["amount_usd"]))
        scope = status["scope"]
        assert isinstance(scope, dict)
        crossed = status["thresholds_crossed"]
        assert isinstance(crossed, list)
        rows.append(
            {
                "budget": status["budget"],
                "scope": ",".join(f"{k}={v}" for k, v in scope.items()) or "(all)",
                "window": status["window"],
                "start": status["start"] or "-",
                "end": status["end"] or "-",
                "spend_usd": spend,
                "amount_usd": amount,
                "used_pct": (spend * 100 / amount).quantize(Decimal("0.1")),
                "exceeded": "yes" if status["exceeded"] else "no",
                "thresholds_crossed": " ".join(f"{t:g}%" for t in crossed) or "-",
            }
        )
    rows.sort(key=lambda row: -row["used_pct"])  # type: ignore[operator]
    return rows


def budget_report(config: BudgetsConfig, ledger: object, fmt: str) -> str:
    """The ``--budgets`` report in ``fmt`` (table, json, csv)."""
    if not config.limits:
        raise ValueError("the configuration has no budgets.limits to report on")
    rows = budget_rows(config, ledger)
    footer = [f"{len(rows)} budget windows; spend is billable USD where a markup is set"]
    return render(rows, COLUMNS, fmt, footer)
