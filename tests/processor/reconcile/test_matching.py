"""Matching the bill with the ledger: each kind of gap gets its cause in the right day,
provider, model and project; the exit status and the textfile watch the gap."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from spanledger.standin import StandIn

from .support import (
    Clock,
    Run,
    at,
    day,
    direct_chat,
    priced_call,
    reconcile_openai,
    write_ledger,
)

KEYS = {"OPENAI_ADMIN_KEY": "k"}
UNKNOWN = "spanledger-test-model-unknown-to-the-table"


def _run(ledger: Path, llm: StandIn, *extra: str) -> Run:
    run = reconcile_openai(ledger, llm, day(0), day(2), *extra)
    assert run.code in (0, 1), run.err
    return run


def test_each_gap_gets_its_cause(tmp_path: Path) -> None:
    clock = Clock()
    with StandIn(clock=clock, prices={UNKNOWN: {"input": "2", "output": "8"}}) as llm:
        clock.set(at(day(0)))
        direct_chat(llm, "gpt-4o-mini", 30_000, 1_000)  # the ledger saw a bigger call
        direct_chat(llm, UNKNOWN, 5_000, 500)  # the table has no price for it
        clock.set(at(day(1)))
        direct_chat(llm, "gpt-4o-mini", 30_000, 1_000)
        ledger = write_ledger(
            tmp_path / "l.db",
            [
                priced_call(0, at(day(0)), input_tokens=45_000, output_tokens=1_000),
                priced_call(1, at(day(0)), model=UNKNOWN, input_tokens=5_000, output_tokens=500),
                priced_call(2, at(day(0)), model="gpt-4o", input_tokens=1_000, output_tokens=10),
                priced_call(3, at(day(1)), input_tokens=30_000, output_tokens=1_000),
            ],
        )
        run = _run(ledger, llm)
    assert priced_call(0, at(day(0)), model=UNKNOWN).cost.status == "unpriced"
    extra = run.row(day=str(day(0)), model="gpt-4o-mini")
    assert extra["cause"] == "extra_in_ledger"
    assert (extra["billed_input_tokens"], extra["input_tokens"]) == (30_000, 45_000)
    assert extra["price_gap_usd"] == 0 and extra["token_gap_usd"] < 0
    assert "15,000 input and 0 output tokens more than the bill" in extra["explanation"]
    unpriced = run.row(day=str(day(0)), model=UNKNOWN)
    assert unpriced["cause"] == "unpriced" and unpriced["unpriced_calls"] == 1
    assert unpriced["billed_usd"] == Decimal("0.014") and unpriced["attributed_usd"] == 0
    not_billed = run.row(day=str(day(0)), model="gpt-4o")
    assert not_billed["cause"] == "not_billed" and not_billed["billed_usd"] is None
    assert not_billed["gap_usd"] == -not_billed["attributed_usd"]
    assert run.row(day=str(day(1)), model="gpt-4o-mini")["cause"] == "match"


def test_projects_are_matched_when_a_tag_holds_them(tmp_path: Path) -> None:
    clock = Clock(at(day(0)))
    with StandIn(clock=clock) as llm:
        direct_chat(llm, "gpt-4o-mini", 10_000, 100, project="proj_search")
        direct_chat(llm, "gpt-4o-mini", 20_000, 200, project="proj_chat")
        direct_chat(llm, "gpt-4o-mini", 7_000, 70, project="proj_chat")  # not instrumented
        ledger = write_ledger(
            tmp_path / "l.db",
            [
                priced_call(
                    0, at(day(0)), input_tokens=10_000, output_tokens=100, project="proj_search"
                ),
                priced_call(
                    1, at(day(0)), input_tokens=20_000, output_tokens=200, project="proj_chat"
                ),
            ],
        )
        per_project = _run(ledger, llm, "--project-tag", "project")
        together = _run(ledger, llm)
    assert per_project.row(project="proj_search")["cause"] == "match"
    chat = per_project.row(project="proj_chat")
    assert chat["cause"] == "unseen_calls"
    assert chat["billed_input_tokens"] - chat["input_tokens"] == 7_000
    assert chat["billed_requests"] == 2 and chat["calls"] == 1
    (row,) = together.rows
    assert "project" not in row and row["billed_input_tokens"] == 37_000


def test_the_gap_sets_the_exit_status_and_the_textfile(tmp_path: Path) -> None:
    clock = Clock(at(day(0)))
    with StandIn(clock=clock, prices={"gpt-4o": {"input": "2.75", "output": "11"}}) as llm:
        direct_chat(llm, "gpt-4o", 100_000, 5_000)
        direct_chat(llm, "gpt-4o-mini", 100_000, 5_000)
        ledger = write_ledger(
            tmp_path / "l.db",
            [
                priced_call(
                    0, at(day(0)), model="gpt-4o", input_tokens=100_000, output_tokens=5_000
                ),
                priced_call(1, at(day(0)), input_tokens=100_000, output_tokens=5_000),
            ],
        )
        prom = tmp_path / "metrics" / "reconcile.prom"
        over = _run(ledger, llm, "--fail-over", "5", "--textfile", str(prom), "--dry-run")
        under = _run(ledger, llm, "--fail-over", "15", "--dry-run")
        table = reconcile_openai(
            ledger, llm, day(0), day(1), "--fail-over", "5", "--format", "table"
        )
    gpt4o = over.row(model="gpt-4o")
    assert gpt4o["cause"] == "price" and gpt4o["gap_pct"] == Decimal("9.1")
    assert over.code == 1 and under.code == 0
    assert "over --fail-over 5%: openai gpt-4o (9.1%)" in table.out and table.code == 1
    lines = prom.read_text().splitlines()
    labels = 'gen_ai_provider_name="openai",gen_ai_response_model="gpt-4o"'
    assert f"spanledger_reconcile_gap_usd{{{labels}}} {float(gpt4o['gap_usd'])!r}" in lines
    share = float(gpt4o["gap_usd"] / gpt4o["billed_usd"])
    assert f"spanledger_reconcile_gap_share{{{labels}}} {share!r}" in lines
    assert "# TYPE spanledger_reconcile_gap_usd gauge" in lines
    mini = 'gen_ai_provider_name="openai",gen_ai_response_model="gpt-4o-mini"'
    assert f"spanledger_reconcile_gap_usd{{{mini}}} 0.0" in lines
