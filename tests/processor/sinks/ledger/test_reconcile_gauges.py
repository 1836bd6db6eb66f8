"""The reconcile gap gauges of a processor whose ledger is a real PostgreSQL database: they show
the latest run written there, and a /metrics scrape never waits on the database: while a lock
holds the gaps table, and while the server is stopped, scrapes answer at once with the last
values read, and the new values appear once the database answers again."""

from __future__ import annotations

import re
import time
import urllib.request
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pgserver
import psycopg
import pytest

from spanledger.processor.config import load_config
from spanledger.processor.service import Service
from spanledger.processor.sinks.ledger.postgres import PostgresLedger
from spanledger.processor.sinks.ledger.reconciled import GapRecord, RunRecord

from .configs import password_file, write_config

GAP = "spanledger_reconcile_gap_usd"
BILLED = "spanledger_reconcile_billed_usd"
SHARE = "spanledger_reconcile_gap_share"
QUICK = 2.0
"""Seconds a scrape may take at most while the database is locked or away (the gauges wait
0.5 s for a read)."""


def scrape(port: int) -> tuple[dict[tuple[str, str], float], float]:
    """The reconcile gauges on /metrics, by (name, model), and how long the scrape took."""
    started = time.monotonic()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
        text = response.read().decode()
    took = time.monotonic() - started
    found = {}
    pattern = r'^(spanledger_reconcile_\w+)\{[^}]*gen_ai_response_model="([^"]+)"[^}]*\} (\S+)$'
    for name, model, value in re.findall(pattern, text, re.MULTILINE):
        found[(name, model)] = float(value)
    return found, took


def record_run(ledger: PostgresLedger, at: int, gaps: dict[str, tuple[str, str]]) -> None:
    """A reconciliation of OpenAI over one day: billed and attributed dollars per model."""
    run = RunRecord(uuid.uuid4().hex, at, "2031-03-09", "2031-03-10", ("openai",), "test")
    ledger.write_reconciliation(
        run,
        [
            GapRecord("2031-03-09", "openai", model, "", Decimal(b), Decimal(a), "price")
            for model, (b, a) in gaps.items()
        ],
    )


def expected(gaps: dict[str, tuple[str, str]]) -> dict[tuple[str, str], float]:
    values = {}
    for model, (billed, attributed) in gaps.items():
        gap = Decimal(billed) - Decimal(attributed)
        values[(GAP, model)] = float(gap)
        values[(BILLED, model)] = float(Decimal(billed))
        values[(SHARE, model)] = float(gap / Decimal(billed))
    return values


def wait_for(port: int, values: dict[tuple[str, str], float], what: str) -> None:
    deadline = time.monotonic() + 20
    while (found := scrape(port)[0]) != values:
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {found}"
        time.sleep(0.2)


@pytest.fixture
def server() -> Iterator[pgserver.PostgresServer]:
    """A server of this test's own, as it is stopped and started again."""
    started = pgserver.temporary_server("spanledger-pg-gauges-")
    yield started
    started.remove()


@pytest.mark.slow
def test_gauges_read_postgres_and_never_block_a_scrape(tmp_path: Path, server) -> None:
    url = server.create_database("ledger")
    config = write_config(
        tmp_path,
        {"url": url, "password_file": password_file(tmp_path, server)},
        metrics={"prometheus": {"endpoint": "127.0.0.1:0"}},
    )
    service = Service(load_config(config))
    service.start()
    try:
        port = service.metrics.prometheus_port
        assert scrape(port)[0] == {}  # no run yet
        first = {"gpt-4o-mini": ("12.50", "10.00"), "gpt-4o": ("3.00", "3.00")}
        with PostgresLedger(url, password=server.password) as ledger:
            record_run(ledger, 1, first)
        wait_for(port, expected(first), "the first run")

        # A lock holds every read of the gaps: scrapes answer with the last values.
        second = {"gpt-4o-mini": ("20.00", "15.00")}
        with psycopg.connect(url, password=server.password) as blocker:
            blocker.execute("LOCK TABLE spanledger_reconcile_gaps IN ACCESS EXCLUSIVE MODE")
            for _ in range(3):
                time.sleep(1.1)  # older than the gauges keep values without reading
                found, took = scrape(port)
                assert took < QUICK
                assert found == expected(first)
            blocker.rollback()
        with PostgresLedger(url, password=server.password) as ledger:
            record_run(ledger, 2, second)
        wait_for(port, expected(second), "the second run once the lock is gone")

        # The server stops: scrapes still answer at once, with the last values read.
        server.stop("fast")
        for _ in range(3):
            time.sleep(1.1)
            found, took = scrape(port)
            assert took < QUICK
            assert found == expected(second)
        server.start()
        third = {"gpt-4o-mini": ("20.00", "19.00"), "o3-mini": ("1.00", "0.50")}
        with PostgresLedger(url, password=server.password) as ledger:
            record_run(ledger, 3, third)
        wait_for(port, expected(third), "the third run once the server is back")
    finally:
        service.stop()
