"""Settlement: the bill spread over the tag buckets to the cent, every grouping adding up to the
invoice, a price gap absorbed by the buckets and unseen calls left (unattributed)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spanledger.processor.pricing import PriceBook
from spanledger.processor.reconcile.bill import COST, USAGE, Bill, BillLine, Period, Tokens
from spanledger.processor.reconcile.matching import match
from spanledger.processor.reconcile.settlement import UNITS, apportion, explained_share, settle
from spanledger.processor.sinks.ledger.reconciled import TagBucket
from spanledger.standin import StandIn

from .support import (
    CENT,
    Clock,
    at,
    day,
    direct_chat,
    priced_call,
    reconcile_openai,
    settled,
    settled_total,
    to_cent,
    write_ledger,
)

BOOK = PriceBook()


@given(
    st.integers(-10_000, 10_000),
    st.lists(st.fractions(min_value=0, max_value=1000), min_size=1, max_size=12),
)
def test_apportion_adds_up_and_stays_within_one_unit(target: int, weights: list[Fraction]) -> None:
    total = sum(weights, Fraction(0))
    if total == 0:
        weights = [Fraction(1)] * len(weights)
        total = Fraction(len(weights))
    quotas = [target * w / total for w in weights]
    shares = apportion(target, quotas)
    assert sum(shares) == target
    assert all(abs(share - quota) < 1 for share, quota in zip(shares, quotas, strict=True))


money = st.decimals(min_value=0, max_value=50, places=9, allow_nan=False, allow_infinity=False)


@st.composite
def bills_and_buckets(draw: st.DrawFn) -> tuple[Bill, list[TagBucket]]:
    days = [day(n) for n in range(draw(st.integers(1, 3)))]
    models = ["gpt-4o-mini", "gpt-4o", "o3-mini"]
    customers = ["acme", "globex", "initech", "(none)"]
    bill = Bill(Period(days[0], day(len(days))))
    buckets = []
    lines = []
    for when in days:
        for model in draw(st.lists(st.sampled_from(models), unique=True, max_size=3)):
            billed_in, billed_out = draw(st.integers(0, 10**6)), draw(st.integers(0, 10**5))
            lines.append(
                BillLine(
                    USAGE,
                    "completions",
                    when,
                    "openai",
                    model,
                    None,
                    "t",
                    tokens=Tokens(billed_in, billed_out),
                )
            )
            lines.append(
                BillLine(COST, "costs", when, "openai", model, None, "t", cost=draw(money))
            )
        for model in draw(st.lists(st.sampled_from(models), unique=True, max_size=3)):
            for customer in draw(st.lists(st.sampled_from(customers), unique=True, min_size=1)):
                buckets.append(
                    TagBucket(
                        when.isoformat(),
                        "openai",
                        model,
                        json.dumps({"customer": customer}),
                        draw(money),
                        draw(st.integers(1, 9)),
                        0,
                        draw(st.integers(0, 10**6)),
                        draw(st.integers(0, 10**5)),
                        0,
                        0,
                    )
                )
    bill.add(lines, "openai", "generated")
    return bill, buckets


@settings(max_examples=80, deadline=None)
@given(bills_and_buckets(), st.sampled_from(UNITS))
def test_every_settled_grouping_adds_up_to_the_invoice(
    case: tuple[Bill, list[TagBucket]], unit: Decimal
) -> None:
    bill, buckets = case
    matches = match(bill, buckets, BOOK)
    settlement = settle(matches, {"openai"}, unit)
    records = settlement.records
    invoice = to_cent(sum((ln.cost for ln in bill.lines if ln.cost is not None), Decimal(0)))
    assert settlement.invoices == {"openai": invoice}
    assert sum((r.settled_usd for r in records), Decimal(0)) == invoice
    assert all(r.settled_usd == r.settled_usd.quantize(unit) for r in records)
    for m in matches:
        mine = [r for r in records if (r.day, r.model) == (m.day.isoformat(), m.model)]
        line = sum((r.settled_usd for r in mine), Decimal(0))
        # Each line is its billed amount to within a unit, give or take its part of the
        # invoice's rounding (at most half a cent); each bucket is its exact share to a unit.
        assert abs(line - (m.billed_usd or 0)) < unit + CENT / 2
        explained = sum((r.settled_usd for r in mine if r.attributed), Decimal(0))
        share = explained_share(m)
        weights = sum((b.cost_usd for b in m.attributed.buckets), Decimal(0))
        for r in (r for r in mine if r.attributed and weights):
            exact = Fraction(explained) * Fraction(r.estimated_usd) / Fraction(weights)
            assert abs(Fraction(r.settled_usd) - exact) < Fraction(unit)
        if m.attributed.buckets:
            assert abs(Fraction(explained) - Fraction(line) * share) <= Fraction(unit) / 2


@pytest.fixture
def llm() -> Iterator[StandIn]:
    with StandIn(clock=Clock(), prices={"gpt-4o": {"input": "3", "output": "12"}}) as server:
        yield server


def _bill_calls(llm: StandIn, model: str, when: date, calls: list[tuple[int, int]]) -> None:
    llm.billing.clock.set(at(when))  # type: ignore[attr-defined]
    for prompt, completion in calls:
        direct_chat(llm, model, prompt, completion)


def test_report_settled_sums_to_the_invoice_for_every_grouping(
    tmp_path: Path, llm: StandIn
) -> None:
    # Three customers' calls, the same on both sides, on two days; gpt-4o billed above the
    # table's price; one gpt-4o-mini call the ledger never saw.
    calls = []
    specs = [
        ("acme", "search", 41_000, 900),
        ("globex", "chat", 23_000, 1_700),
        ("initech", "search", 7_000, 300),
        ("acme", "chat", 66_000, 2_100),
    ]
    for offset in range(2):
        when = day(offset)
        for model in ("gpt-4o-mini", "gpt-4o"):
            _bill_calls(llm, model, when, [(p, c) for _, _, p, c in specs])
            for n, (customer, feature, prompt, completion) in enumerate(specs):
                calls.append(
                    priced_call(
                        len(calls),
                        at(when, 9 + n),
                        model=model,
                        input_tokens=prompt,
                        output_tokens=completion,
                        customer=customer,
                        feature=feature,
                    )
                )
    _bill_calls(llm, "gpt-4o-mini", day(1), [(300_000, 5_000)])
    ledger = write_ledger(tmp_path / "ledger.db", calls)

    run = reconcile_openai(ledger, llm, day(0), day(2))
    assert run.code == 0, run.err
    invoice = to_cent(sum((Decimal(str(r["billed_usd"])) for r in run.rows), Decimal(0)))
    assert invoice > Decimal("0.10")
    for by in (
        [],
        ["customer"],
        ["feature"],
        ["customer", "feature"],
        ["model"],
        ["provider"],
        ["day"],
        ["day", "customer"],
        ["month", "model", "customer"],
    ):
        assert settled_total(settled(ledger, *by)) == invoice, by

    gpt4o = {
        r["customer"]: r for r in settled(ledger, "customer", extra=["--where", "model=gpt-4o"])
    }
    assert "(unattributed)" not in gpt4o  # a price gap only: the buckets absorb it
    for row in gpt4o.values():
        assert row["cost_usd"] > row["estimated_cost_usd"]
    mini = {
        r["customer"]: r
        for r in settled(ledger, "customer", extra=["--where", "model=gpt-4o-mini"])
    }
    unattributed = mini.pop("(unattributed)")
    # The unseen call's share of the bill: its tokens at the table's price, to the cent.
    unseen = priced_call(0, at(day(1)), input_tokens=300_000, output_tokens=5_000).cost.total
    assert abs(Decimal(str(unattributed["cost_usd"])) - unseen) <= CENT
    for customer, row in mini.items():
        assert (
            abs(Decimal(str(row["cost_usd"])) - Decimal(str(row["estimated_cost_usd"]))) <= CENT
        ), customer


def test_a_rerun_replaces_the_settlement_of_its_days(tmp_path: Path, llm: StandIn) -> None:
    _bill_calls(llm, "gpt-4o-mini", day(0), [(50_000, 1_000)])
    _bill_calls(llm, "gpt-4o-mini", day(1), [(80_000, 1_000)])
    ledger = write_ledger(
        tmp_path / "ledger.db",
        [
            priced_call(0, at(day(0)), input_tokens=50_000, output_tokens=1_000, customer="acme"),
            priced_call(1, at(day(1)), input_tokens=80_000, output_tokens=1_000, customer="acme"),
        ],
    )
    for since, until in ((day(0), day(2)), (day(1), day(2)), (day(0), day(2))):
        run = reconcile_openai(ledger, llm, since, until)
        assert run.code == 0, run.err
    by_day = {r["day"]: r["cost_usd"] for r in settled(ledger, "day")}
    assert set(by_day) == {str(day(0)), str(day(1))}
    assert sum(by_day.values()) == settled_total(settled(ledger))
