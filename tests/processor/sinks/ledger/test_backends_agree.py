"""The same calls in an SQLite file and in a real PostgreSQL database read the same: every
grouping, period, filter and the marked-up cost, through the store and through
``spanledger report``, before and after pruning."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path

import pytest

from spanledger.processor.cli.ledger import run_prune
from spanledger.processor.cli.report import run_report
from spanledger.processor.sinks.ledger import Ledger, LedgerStore
from spanledger.processor.sinks.ledger.postgres import PostgresLedger, day_spans

from .traffic import DAY_NS, START, calls

GROUPINGS = [
    [],
    ["customer"],
    ["feature", "team"],
    ["provider", "model"],
    ["operation", "cost_status", "cost_source"],
    ["day"],
    ["week", "env"],
    ["month", "customer"],
    ["tag:model"],
]
PERIODS = [
    (None, None),
    (START + 3 * DAY_NS + 12_345, None),
    (None, START + 11 * DAY_NS + 999),
    (START + 2 * DAY_NS, START + 9 * DAY_NS),
    (START + 4 * DAY_NS + 3600 * 10**9, START + 4 * DAY_NS + 7200 * 10**9),
    (START + 30 * DAY_NS, None),
]


def snapshot(store: LedgerStore, by: list[str], **options: object) -> list[tuple]:
    """Every field of every group, costs as their exact text, in a stable order."""
    return sorted(
        (
            g.key,
            str(g.cost_usd),
            g.calls,
            g.unpriced_calls,
            g.input_tokens,
            g.output_tokens,
            g.cache_read_tokens,
            g.cache_write_tokens,
            g.reasoning_tokens,
        )
        for g in store.aggregate(by, **options)  # type: ignore[arg-type]
    )


@pytest.fixture
def both(tmp_path: Path, postgres_url: str, postgres_server) -> tuple[Ledger, PostgresLedger]:
    traffic = calls(3000)
    sqlite = Ledger(tmp_path / "ledger.db", create=True)
    postgres = PostgresLedger(postgres_url, password=postgres_server.password, create=True)
    assert sqlite.write(traffic) == postgres.write(traffic) == len(traffic)
    yield sqlite, postgres
    sqlite.close()
    postgres.close()


@pytest.mark.parametrize("by", GROUPINGS, ids=lambda by: "-".join(by) or "total")
def test_every_grouping_and_period_reads_the_same(both, by: list[str]) -> None:
    sqlite, postgres = both
    for since, until in PERIODS:
        for billable in (False, True):
            for where in (None, {"env": "prod"}, {"customer": "(none)", "model": "gpt-4o"}):
                options = {
                    "since_unix_nano": since,
                    "until_unix_nano": until,
                    "billable": billable,
                    "where": where,
                }
                expected = snapshot(sqlite, by, **options)
                assert snapshot(postgres, by, **options) == expected, options
                if not by:
                    assert len(expected) == 1  # the total, even when nothing matches


def test_the_report_command_prints_the_same(
    both, postgres_url, postgres_server, monkeypatch
) -> None:
    sqlite, _ = both
    monkeypatch.setenv("PGPASSWORD", postgres_server.password)
    for args in (
        ["--by", "customer", "--by", "model"],
        ["--by", "day", "--since", "2026-03-04T06:00Z", "--until", "2026-03-12"],
        ["--by", "feature", "--compare", "team=growth,platform"],
        ["--by", "customer", "--top", "2", "--billable"],
    ):
        outputs = []
        for location in (str(sqlite.path), postgres_url):
            out = io.StringIO()
            assert run_report(["--ledger", location, *args, "--format", "json"], out=out) == 0
            outputs.append(json.loads(out.getvalue(), parse_float=Decimal))
        assert outputs[0] == outputs[1], args
        assert outputs[0]


def test_pruning_leaves_both_reading_the_same(
    both, postgres_url, postgres_server, monkeypatch
) -> None:
    sqlite, postgres = both
    monkeypatch.setenv("PGPASSWORD", postgres_server.password)
    before = "2026-03-06T15:30Z"  # not midnight: the rollup of that day is recomputed
    for location in (str(sqlite.path), postgres_url):
        out = io.StringIO()
        assert run_prune(["--ledger", location, "--before", before], out=out) == 0
        assert "deleted" in out.getvalue()
    assert sqlite.time_range() == postgres.time_range()
    for by in (["day"], ["customer", "month"], []):
        assert snapshot(postgres, by) == snapshot(sqlite, by)
        assert snapshot(postgres, by, since_unix_nano=START) == snapshot(sqlite, by)
    (total,) = postgres.aggregate()
    assert 0 < total.calls < 3000


def test_periods_split_into_whole_days_and_partial_edges() -> None:
    assert day_spans(None, None) == [("daily", None, None)]
    assert day_spans(START + 5, START + 2 * DAY_NS) == [
        ("calls", START + 5, START + DAY_NS),
        ("daily", START // DAY_NS + 1, START // DAY_NS + 2),
    ]
    assert day_spans(START + 5, START + 10) == [("calls", START + 5, START + 10)]
    assert day_spans(START, None) == [("daily", START // DAY_NS, None)]
