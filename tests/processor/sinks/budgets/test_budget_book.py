"""Spend against limits from counted calls: thresholds fire once per window, scopes, windows,
billable cost, a new period, and spend loaded from a real ledger file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from spanledger.processor.sinks.budgets import Alert, BudgetBook, BudgetsConfig, SpendLimit
from spanledger.processor.sinks.budgets.evaluation import ledger_spend
from spanledger.processor.sinks.ledger import Ledger

from .support import Clock, counted

NOV_10 = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)


def book(*limits: SpendLimit, clock: Clock, thresholds=(50, 80, 100)) -> tuple[BudgetBook, list]:
    fired: list[Alert] = []
    config = BudgetsConfig(limits=list(limits), thresholds=list(thresholds))
    for limit in limits:
        assert limit.problems() == []
    assert config.problems() == []
    return BudgetBook(config, clock=clock, on_alert=fired.append), fired


def crossed(alerts: list[Alert]) -> list[tuple[str, str, int]]:
    return [(a.budget, ",".join(a.scope.values()), int(a.threshold_percent)) for a in alerts]


def test_each_threshold_fires_once_and_the_check_denies_at_the_amount() -> None:
    clock = Clock(NOV_10)
    budgets, alerts = book(
        SpendLimit(name="acme", match={"customer": "acme"}, amount_usd=10, period="daily"),
        clock=clock,
    )
    spends = ["4", "0.99", "0.01", "2.5", "0.5", "1.99", "0.01", "3"]
    for index, cost in enumerate(spends):
        budgets.record([counted(index, NOV_10, cost, customer="acme")])
        if index == 5:
            assert budgets.check({"customer": "acme"}).allow  # 9.99 of 10
    assert crossed(alerts) == [("acme", "acme", 50), ("acme", "acme", 80), ("acme", "acme", 100)]
    assert [a.spend_usd for a in alerts] == [Decimal("5.00"), Decimal("8.00"), Decimal("10.00")]
    decision = budgets.check({"customer": "acme"})
    assert not decision.allow
    assert decision.reasons[0]["spend_usd"] == "13.00"
    assert decision.retry_after == pytest.approx(12 * 3600)
    assert budgets.check({"customer": "globex"}).allow


def test_one_call_crossing_several_thresholds_fires_each_of_them() -> None:
    clock = Clock(NOV_10)
    budgets, alerts = book(
        SpendLimit(name="all", amount_usd=1, period="monthly"), clock=clock, thresholds=(25, 50, 75)
    )
    budgets.record([counted(0, NOV_10, "0.8")])
    budgets.record([counted(1, NOV_10, "5")])
    assert [int(a.threshold_percent) for a in alerts] == [25, 50, 75]


def test_a_new_period_starts_at_zero_and_fires_again() -> None:
    clock = Clock(NOV_10)
    budgets, alerts = book(
        SpendLimit(name="acme", match={"customer": "acme"}, amount_usd=10, period="daily"),
        clock=clock,
        thresholds=(100,),
    )
    budgets.record([counted(0, NOV_10, "10", customer="acme")])
    assert not budgets.check({"customer": "acme"}).allow
    next_day = datetime(2026, 11, 11, 0, 0, 1, tzinfo=UTC)
    clock.set(next_day)
    assert budgets.check({"customer": "acme"}).allow
    # A late call of the previous day no longer counts; one of the new day does.
    budgets.record([counted(1, NOV_10, "10", customer="acme")])
    assert budgets.check({"customer": "acme"}).allow
    budgets.record([counted(2, next_day, "10", customer="acme")])
    assert not budgets.check({"customer": "acme"}).allow
    assert [a.start for a in alerts] == ["2026-11-10T00:00:00Z", "2026-11-11T00:00:00Z"]
    assert len({a.id for a in alerts}) == 2


def test_per_customer_limits_are_separate_and_skip_untagged_calls() -> None:
    clock = Clock(NOV_10)
    budgets, alerts = book(
        SpendLimit(name="each", per="customer", amount_usd=2, period="weekly"),
        clock=clock,
        thresholds=(100,),
    )
    budgets.record(
        [
            counted(0, NOV_10, "2", customer="acme"),
            counted(1, NOV_10, "1", customer="globex"),
            counted(2, NOV_10, "50"),
        ]
    )
    assert crossed(alerts) == [("each", "acme", 100)]
    assert not budgets.check({"customer": "acme"}).allow
    assert budgets.check({"customer": "globex"}).allow
    assert budgets.check({"customer": "(none)"}).allow
    rows = {tuple(r["scope"].values()): r for r in budgets.status()}
    assert set(rows) == {("acme",), ("globex",)}
    assert rows[("globex",)]["spend_usd"] == "1"
    assert rows[("acme",)]["start"] == "2026-11-09T00:00:00Z"  # the Monday


def test_custom_window_counts_only_calls_inside_it_and_applies_only_during_it() -> None:
    clock = Clock(datetime(2026, 10, 31, tzinfo=UTC))
    launch = SpendLimit(
        name="launch",
        match={"env": "staging"},
        amount_usd=5,
        start="2026-11-01",
        end="2026-11-15T00:00:00Z",
    )
    budgets, _ = book(launch, clock=clock, thresholds=(100,))
    budgets.record([counted(0, datetime(2026, 10, 31, tzinfo=UTC), "9", env="staging")])
    clock.set(NOV_10)
    assert budgets.check({"env": "staging"}).allow
    budgets.record([counted(1, NOV_10, "5", env="staging")])
    assert not budgets.check({"env": "staging"}).allow
    clock.set(datetime(2026, 11, 20, tzinfo=UTC))
    assert budgets.check({"env": "staging"}).allow


def test_lifetime_total_outlasts_periods() -> None:
    clock = Clock(NOV_10)
    budgets, alerts = book(
        SpendLimit(name="acme", match={"customer": "acme"}, amount_usd=10, lifetime_usd=15),
        clock=clock,
        thresholds=(100,),
    )
    budgets.record([counted(0, NOV_10, "9", customer="acme")])
    clock.advance(timedelta(days=31).total_seconds())
    budgets.record([counted(1, NOV_10 + timedelta(days=31), "6", customer="acme")])
    decision = budgets.check({"customer": "acme"})
    assert not decision.allow
    assert [r["window"] for r in decision.reasons] == ["lifetime"]
    assert decision.retry_after is None
    assert crossed(alerts) == [("acme", "acme", 100)]
    assert alerts[0].window == "lifetime"


def test_billable_cost_counts_when_marked_up_and_unpriced_calls_do_not() -> None:
    clock = Clock(NOV_10)
    budgets, _ = book(SpendLimit(name="all", amount_usd=100), clock=clock)
    budgets.record(
        [
            counted(0, NOV_10, "1", billable="1.25"),
            counted(1, NOV_10, "2"),
            counted(2, NOV_10, "0", status="unpriced"),
        ]
    )
    (row,) = budgets.status()
    assert row["spend_usd"] == "3.25"
    assert row["window"] == "monthly"


def test_alert_only_limits_never_deny() -> None:
    clock = Clock(NOV_10)
    budgets, alerts = book(
        SpendLimit(name="watch", amount_usd=1, enforce=False), clock=clock, thresholds=(100,)
    )
    budgets.record([counted(0, NOV_10, "3")])
    assert len(alerts) == 1
    assert budgets.check({}).allow


def test_spend_is_loaded_from_the_ledger_and_reached_thresholds_do_not_fire_again(
    tmp_path: Path,
) -> None:
    path = tmp_path / "spanledger.db"
    with Ledger(path, create=True) as ledger:
        ledger.write(
            [
                counted(0, NOV_10 - timedelta(days=1), "7", customer="acme"),  # yesterday
                counted(1, NOV_10, "6", billable="6.5", customer="acme"),
                counted(2, NOV_10, "1", customer="globex"),
            ]
        )
    clock = Clock(NOV_10)
    budgets, alerts = book(
        SpendLimit(name="each", per="customer", amount_usd=10, period="daily"), clock=clock
    )
    with Ledger(path) as ledger:
        assert budgets.rebuild(ledger_spend(ledger)) == 2
    rows = {r["scope"]["customer"]: r for r in budgets.status()}
    assert rows["acme"]["spend_usd"] == "6.5"
    assert rows["acme"]["thresholds_crossed"] == [50.0]
    budgets.record([counted(3, NOV_10, "1.5", customer="acme")])
    assert crossed(alerts) == [("each", "acme", 80)]
