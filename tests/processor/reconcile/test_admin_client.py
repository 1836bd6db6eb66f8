"""Reading the bill from the admin APIs (the stand-in's): every page, rate limits waited out,
failures named by their request, the admin key never shown."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from spanledger.processor.reconcile.admin_api import AdminApi, endpoints
from spanledger.processor.reconcile.bill import Bill, BillError, Period
from spanledger.processor.reconcile.sources import fetch_bill
from spanledger.standin import Scenario, StandIn

from .support import Clock, at, day, direct_chat, reconcile, write_ledger

SECRET = "sk-admin-do-not-print-0123456789"
PERIOD = Period(day(0), day(5))


@pytest.fixture
def llm() -> Iterator[StandIn]:
    """A stand-in that answered one call on each of five days."""
    clock = Clock()
    with StandIn(clock=clock, admin_key=SECRET) as server:
        for offset in range(5):
            clock.set(at(day(offset)))
            direct_chat(server, "gpt-4o-mini", 1_000 * (offset + 1), 100)
        yield server


def _gets(llm: StandIn) -> list:
    return [r for r in llm.requests if r.method == "GET"]


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _costs(api: AdminApi) -> list[tuple[str, dict]]:
    (costs,) = [e for e in endpoints("openai", PERIOD, False) if e.source == "costs"]
    return api.pages(costs, len(PERIOD.days))


def test_every_page_is_read_following_next_page(llm: StandIn) -> None:
    with AdminApi("openai", SECRET, llm.url, page_limit=2) as api:
        pages = _costs(api)
    assert [len(page["data"]) for _, page in pages] == [2, 2, 1]
    assert [page["has_more"] for _, page in pages] == [True, True, False]
    queries = [r.query for r in _gets(llm)]
    assert [q.get("page") for q in queries] == [
        None,
        pages[0][1]["next_page"],
        pages[1][1]["next_page"],
    ]
    assert all(r.headers["authorization"] == f"Bearer {SECRET}" for r in _gets(llm))

    bill = Bill(PERIOD)
    fetch_bill(
        bill,
        ["openai"],
        by_project=False,
        urls={"openai": llm.url},
        environ={"OPENAI_ADMIN_KEY": SECRET},
        page_limit=2,
    )
    usage = sorted((ln.day, ln.tokens.input) for ln in bill.lines if ln.tokens is not None)
    assert usage == [(day(n), 1_000 * (n + 1)) for n in range(5)]


def test_a_rate_limit_answer_is_waited_out_as_the_provider_asks(llm: StandIn) -> None:
    llm.push(Scenario(error=429, retry_after=7), Scenario(error=503))
    sleeps = Sleeps()
    with AdminApi("openai", SECRET, llm.url, sleep=sleeps, backoff=0.5) as api:
        pages = _costs(api)
    # The 429 waits what retry-after says; the 503 then waits the backoff of a second attempt.
    assert sleeps == [7.0, 1.0]
    assert len(_gets(llm)) == 3
    assert sum(len(b["results"]) for _, p in pages for b in p["data"]) == 10  # input, output


def test_failures_name_the_request_and_never_the_key(llm: StandIn) -> None:
    api = AdminApi("openai", "sk-admin-wrong-key", llm.url, sleep=Sleeps())
    with api, pytest.raises(BillError) as refused:
        _costs(api)
    message = str(refused.value)
    assert message.startswith(f"GET {llm.url}/v1/organization/costs?start_time=")
    assert "HTTP 401" in message and "admin key" in message
    assert "sk-admin-wrong-key" not in message

    llm.push(Scenario(error=500, repeat=3))
    api = AdminApi("openai", SECRET, llm.url, sleep=Sleeps(), max_attempts=3)
    with api, pytest.raises(BillError, match=r"HTTP 500: .* \(gave up after 3 attempts\)"):
        _costs(api)


def test_the_command_needs_the_key_in_the_environment(tmp_path: Path, llm: StandIn) -> None:
    ledger = write_ledger(tmp_path / "l.db", [])
    args = [
        "--ledger",
        str(ledger),
        "--api",
        "openai",
        "--openai-url",
        llm.url,
        "--since",
        str(day(0)),
        "--until",
        str(day(5)),
        "--format",
        "json",
    ]
    missing = reconcile(*args)
    assert missing.code == 2 and "set OPENAI_ADMIN_KEY" in missing.err
    found = reconcile(*args, environ={"OPENAI_ADMIN_KEY": SECRET})
    assert found.code == 0, found.err
    assert [r["billed_input_tokens"] for r in found.rows] == [1_000 * (n + 1) for n in range(5)]


def test_the_console_script_keeps_the_key_out_of_its_output(tmp_path: Path, llm: StandIn) -> None:
    ledger = write_ledger(tmp_path / "l.db", [])
    env = {**os.environ, "OPENAI_ADMIN_KEY": "sk-admin-leaked-if-printed-42"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "spanledger.processor.cli",
            "reconcile",
            "--ledger",
            str(ledger),
            "--api",
            "openai",
            "--openai-url",
            llm.url,
            "--since",
            str(day(0)),
            "--until",
            str(day(1)),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "HTTP 401" in done.stderr
    assert "sk-admin-leaked-if-printed-42" not in done.stdout + done.stderr
