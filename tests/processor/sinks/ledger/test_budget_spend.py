"""Budgets load the spend already recorded in a PostgreSQL ledger when the processor starts,
exactly as from an SQLite file: the same calls give the same spend per customer."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from spanledger.processor.sinks.budgets import BudgetsConfig, BudgetSink, SpendLimit
from spanledger.processor.sinks.ledger import Ledger, LedgerConfig
from spanledger.processor.sinks.ledger.postgres import PostgresLedger
from spanledger.semconv import UNTAGGED

from .configs import password_file
from .traffic import DAY_NS, START, calls

TAGS = ("customer", "feature", "team", "env")
NOW = datetime(2026, 3, 25, 12, tzinfo=UTC).timestamp()
"""Inside March 2026, the month the traffic fills (fixed, never today's date)."""


def _spend(ledger: LedgerConfig) -> dict[str, str]:
    config = BudgetsConfig(
        limits=[SpendLimit(name="monthly", per="customer", amount_usd=1000, period="monthly")]
    )
    sink = BudgetSink(config, TAGS, ledger=ledger, clock=lambda: NOW)
    try:
        return {
            row["scope"]["customer"]: row["spend_usd"]
            for row in sink.status()["budgets"]
            if row["window"] == "monthly"
        }
    finally:
        sink.shutdown(1)


def test_spend_loaded_from_postgres_equals_spend_loaded_from_sqlite(
    tmp_path, postgres_url, postgres_server
) -> None:
    traffic = calls(800, days=20)
    before_march = [c for c in calls(50, first=5000) if c.start_time_unix_nano > START]
    for call in before_march:
        call.start_time_unix_nano -= 40 * DAY_NS  # February: outside the window
    with Ledger(tmp_path / "ledger.db", create=True) as sqlite:
        sqlite.write(traffic + before_march)
    with PostgresLedger(postgres_url, password=postgres_server.password, create=True) as pg:
        pg.write(traffic + before_march)

    from_postgres = _spend(
        LedgerConfig(url=postgres_url, password_file=password_file(tmp_path, postgres_server))
    )
    assert from_postgres == _spend(LedgerConfig(path=str(tmp_path / "ledger.db")))
    expected = sum(  # per-customer budgets leave untagged spend out
        (
            c.cost.billable or c.cost.total
            for c in traffic
            if c.cost.status == "priced" and c.tags["customer"] != UNTAGGED
        ),
        Decimal(0),
    )
    assert sum(Decimal(v) for v in from_postgres.values()) == expected
