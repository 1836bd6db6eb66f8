"""The reconciliation on an SQLite file and on a real PostgreSQL database: the same calls and the
same bill give the same gaps, the same settled amounts and the same ``report --settled``, to the
cent, for every grouping; a rerun replaces the same days on both; the password of the database
is never printed; and a database at an older schema is refused until migrated."""

from __future__ import annotations

import io
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from spanledger.processor.cli.ledger import run_migrate
from spanledger.processor.model import CountedCall
from spanledger.processor.reconcile.gauge import textfile
from spanledger.processor.report.periods import to_unix_nano
from spanledger.processor.sinks.ledger import Ledger, LedgerStore
from spanledger.processor.sinks.ledger.postgres import MIGRATIONS, PostgresLedger
from spanledger.processor.sinks.ledger.reconciled import SETTLED_DIMENSIONS
from spanledger.standin import StandIn

from .support import (
    Clock,
    at,
    day,
    direct_chat,
    priced_call,
    reconcile,
    reconcile_openai,
    settled,
    settled_total,
    to_cent,
)

UNKNOWN = "spanledger-test-model-unknown-to-the-table"
GROUPINGS = [
    [],
    ["customer"],
    ["feature"],
    ["customer", "feature"],
    ["team", "env"],
    ["provider", "model"],
    ["project"],
    ["day"],
    ["week", "customer"],
    ["month", "model", "customer"],
    ["tag:model"],
]
WHERES = [[], ["--where", "model=gpt-4o"], ["--where", "customer=(unattributed)"]]
CUSTOMERS = ["acme", "globex", "Ünïcode & co", "(none)"]
"""Tag values, one with characters JSON escapes, and the untagged bucket."""


@pytest.fixture
def llm() -> Iterator[StandIn]:
    """A stand-in billing on the test's days, gpt-4o above the price table's price."""
    prices = {"gpt-4o": {"input": "3", "output": "12"}, UNKNOWN: {"input": "2", "output": "8"}}
    with StandIn(clock=Clock(), prices=prices) as server:
        yield server


def _traffic(llm: StandIn) -> list[CountedCall]:
    """Calls on three days, most of them billed by the stand-in as the ledger has them; besides
    those, billed calls the ledger never saw, a model the table cannot price, calls of another
    provider and a call the day before the period."""
    calls: list[CountedCall] = []
    for offset in range(3):
        llm.billing.clock.set(at(day(offset)))  # type: ignore[attr-defined]
        for n in range(8):
            model = ("gpt-4o-mini", "gpt-4o")[n % 2]
            prompt, completion = 3_000 + 997 * n + 131 * offset, 200 + 37 * n
            direct_chat(llm, model, prompt, completion)
            calls.append(
                priced_call(
                    len(calls),
                    at(day(offset), 1 + 2 * n),
                    model=model,
                    input_tokens=prompt,
                    output_tokens=completion,
                    customer=CUSTOMERS[(n + offset) % len(CUSTOMERS)],
                    feature=("search", "chat", "summary")[n % 3],
                    team=("growth", "platform")[offset % 2],
                )
            )
        direct_chat(llm, "gpt-4o-mini", 40_000 + offset, 900)  # never in the ledger
    llm.billing.clock.set(at(day(1)))  # type: ignore[attr-defined]
    direct_chat(llm, UNKNOWN, 5_000, 500)
    calls.append(
        priced_call(len(calls), at(day(1)), model=UNKNOWN, input_tokens=5_000, output_tokens=500)
    )
    calls.append(priced_call(len(calls), at(day(2)), provider="anthropic", model="claude-x"))
    calls.append(priced_call(len(calls), at(day(-1), 23), customer="acme"))
    return calls


@pytest.fixture
def ledgers(
    tmp_path: Path, llm: StandIn, postgres_url: str, postgres_server: Any, monkeypatch
) -> Iterator[list[tuple[LedgerStore, str]]]:
    """The same calls in an SQLite file and a PostgreSQL database, each with the location the
    commands take (PGPASSWORD holds the database's password)."""
    monkeypatch.setenv("PGPASSWORD", postgres_server.password)
    calls = _traffic(llm)
    sqlite = Ledger(tmp_path / "ledger.db", create=True)
    postgres = PostgresLedger(postgres_url, password=postgres_server.password, create=True)
    assert sqlite.write(calls) == postgres.write(calls) == len(calls)
    yield [(sqlite, str(sqlite.path)), (postgres, postgres_url)]
    sqlite.close()
    postgres.close()


def _settled_reports(location: str) -> dict[str, list[dict[str, Any]]]:
    return {
        f"{by} {where}": settled(location, *by, extra=where) for by in GROUPINGS for where in WHERES
    }


def _state(store: LedgerStore) -> tuple[Any, ...]:
    """What the stores hold about the runs, without the run ids (random per run)."""
    runs = [(r.since_day, r.until_day, r.providers) for r in store.settled_runs()]
    return runs, store.latest_gaps(), textfile(store.latest_gaps())


def test_reconcile_settle_and_report_agree_to_the_cent(ledgers, llm: StandIn) -> None:
    results = []
    for store, location in ledgers:
        first = reconcile_openai(location, llm, day(0), day(3))
        assert first.code == 0, first.err
        invoice = to_cent(sum((Decimal(str(r["billed_usd"] or 0)) for r in first.rows), Decimal(0)))
        reports = _settled_reports(location)
        for name, rows in reports.items():
            if "--where" not in name:
                assert settled_total(rows) == invoice, (location, name)
        # A rerun of one day, matched per project, replaces that day's settled amounts only.
        rerun = reconcile_openai(location, llm, day(1), day(2), "--project-tag", "project")
        assert rerun.code == 0, rerun.err
        again = _settled_reports(location)
        assert settled_total(again["[] []"]) == invoice
        results.append((first.rows, reports, rerun.rows, again, _state(store)))

    sqlite, postgres = results
    assert postgres[0] == sqlite[0]  # the gaps, row by row
    for name in sqlite[1]:
        assert postgres[1][name] == sqlite[1][name], name
        assert postgres[3][name] == sqlite[3][name], name
    assert postgres[2] == sqlite[2]
    assert postgres[4] == sqlite[4]

    # The flow found what the traffic holds, on both.
    causes = {(r["day"], r["model"]): r["cause"] for r in sqlite[0]}
    assert causes[(str(day(0)), "gpt-4o")] == "price"
    assert causes[(str(day(0)), "gpt-4o-mini")] == "unseen_calls"
    assert causes[(str(day(1)), UNKNOWN)] == "unpriced"
    by_customer = {r["customer"] for r in sqlite[1]["['customer'] []"]}
    assert by_customer == {*CUSTOMERS, "(unattributed)"}
    runs, gaps, _ = sqlite[4]
    assert [(since, until) for since, until, _ in runs] == [
        (str(day(0)), str(day(3))),
        (str(day(1)), str(day(2))),
    ]
    assert {g.model for g in gaps} == {"gpt-4o-mini", "gpt-4o", UNKNOWN}
    assert all(g.since_day == str(day(1)) for g in gaps)  # the latest run's


@pytest.mark.slow
def test_the_calls_of_partial_days_read_the_same(ledgers) -> None:
    """The reconcile reads whole days, from the rollup on PostgreSQL; any other bounds read the
    calls at the edges, and give the same buckets."""
    (sqlite, _), (postgres, _) = ledgers
    bounds = [
        (day(0), 0, day(3), 0),
        (day(-1), 12, day(1), 5),
        (day(1), 3, day(1), 17),
        (day(0), 6, day(2), 0),
    ]
    for first, first_hour, last, last_hour in bounds:
        since, until = to_unix_nano(at(first, first_hour)), to_unix_nano(at(last, last_hour))
        for providers in (["openai"], ["anthropic", "openai"], []):
            expected = sqlite.tag_buckets(since, until, providers)
            assert postgres.tag_buckets(since, until, providers) == expected
            if providers:
                assert expected
    assert set(SETTLED_DIMENSIONS) == {"day", "week", "month", "provider", "model", "project"}


@pytest.mark.slow
def test_the_database_password_is_never_printed(
    tmp_path: Path, ledgers, llm: StandIn, postgres_server: Any, monkeypatch
) -> None:
    monkeypatch.delenv("PGPASSWORD")
    (_, postgres_url), password = ledgers[1], postgres_server.password
    api = ["--api", "openai", "--openai-url", llm.url, "--since", str(day(0))]
    keys = {"OPENAI_ADMIN_KEY": "k"}
    in_url = postgres_url.replace("spanledger@", f"spanledger:{password}@")
    run = reconcile("--ledger", in_url, *api, "--until", str(day(3)), environ=keys)
    assert run.code == 0, run.err
    assert "ledger postgresql://spanledger:***@" in run.out
    assert password not in run.out + run.err

    # The processor's config: the URL and a password file, as replicas have them.
    (tmp_path / "secret").write_text(password + "\n")
    config = tmp_path / "processor.yaml"
    config.write_text(yaml.safe_dump({"ledger": {"url": postgres_url, "password_file": "secret"}}))
    run = reconcile("--config", str(config), *api, "--until", str(day(2)), environ=keys)
    assert run.code == 0, run.err
    assert f"ledger {postgres_url}, " in run.out
    assert password not in run.out + run.err
    assert {r.since_day for r in ledgers[1][0].settled_runs()} == {str(day(0))}

    wrong = postgres_url.replace("spanledger@", "spanledger:not-the-password@")
    run = reconcile("--ledger", wrong, *api, "--until", str(day(3)), environ=keys)
    assert run.code == 2
    (line,) = run.err.strip().splitlines()
    assert "cannot open ledger postgresql://spanledger:***@" in line
    assert "not-the-password" not in line


@pytest.mark.slow
def test_an_older_database_is_refused_until_migrated(
    tmp_path: Path, postgres_url: str, postgres_server: Any, llm: StandIn, monkeypatch
) -> None:
    monkeypatch.setenv("PGPASSWORD", postgres_server.password)
    calls = _traffic(llm)
    with PostgresLedger(
        postgres_url, password=postgres_server.password, create=True, migrations=MIGRATIONS[:1]
    ) as old:
        old.write(calls)
    run = reconcile_openai(postgres_url, llm, day(0), day(3))
    assert run.code == 2
    (line,) = run.err.strip().splitlines()
    assert f"has schema version 1, older than this spanledger's ({len(MIGRATIONS)})" in line
    assert "run `spanledger migrate`" in line

    out = io.StringIO()
    assert run_migrate(["--ledger", postgres_url], out=out) == 0
    assert f"schema version 1 -> {len(MIGRATIONS)}" in out.getvalue()
    run = reconcile_openai(postgres_url, llm, day(0), day(3))
    assert run.code == 0, run.err
    assert sum(r["calls"] for r in run.rows) == len(calls) - 2  # not anthropic, not day -1
    assert settled_total(settled(postgres_url)) > 0
