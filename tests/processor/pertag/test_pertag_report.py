"""``spanledger report`` over a filled ledger: every grouping and format, the period change,
the version comparison and the ``--top`` fold, each adding up exactly to the ledger total."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from spanledger.processor.cli.report import run_report
from spanledger.processor.report.periods import parse_instant, to_unix_nano
from spanledger.processor.sinks.ledger import Ledger
from spanledger.semconv import OVERFLOW, UNTAGGED

from .traffic import DAY_NS, call, mixed_traffic

OCT_1 = to_unix_nano(datetime(2026, 10, 1, tzinfo=UTC))


def _report(ledger: Path, *args: str) -> tuple[int, str]:
    out = io.StringIO()
    status = run_report(["--ledger", str(ledger), *args], out=out)
    return status, out.getvalue()


def _json(ledger: Path, *args: str) -> list[dict]:
    status, text = _report(ledger, *args, "--format", "json")
    assert status == 0
    return json.loads(text, parse_float=Decimal)


@pytest.fixture
def filled(ledger_path: Path) -> tuple[Path, Decimal, list]:
    calls = mixed_traffic(500, OCT_1, days=61, seed=21)
    with Ledger(ledger_path, create=True) as ledger:
        ledger.write(calls)
        (total,) = ledger.aggregate()
    assert total.cost_usd == sum((c.cost.total for c in calls), Decimal(0))
    return ledger_path, total.cost_usd, calls


@pytest.mark.parametrize(
    "by",
    [
        ["customer"],
        ["feature"],
        ["team"],
        ["env"],
        ["provider"],
        ["model"],
        ["operation"],
        ["cost_status"],
        ["cost_source"],
        ["day"],
        ["week"],
        ["month"],
        ["customer", "feature"],
        ["month", "feature"],
        ["provider", "model", "team"],
    ],
)
def test_every_grouping_adds_up_to_the_ledger_total(filled, by):
    ledger, total, calls = filled
    rows = _json(ledger, *(arg for key in by for arg in ("--by", key)))
    assert rows
    assert sum(row["cost_usd"] for row in rows) == total
    assert sum(row["calls"] for row in rows) == len(calls)
    assert sum(row["input_tokens"] for row in rows) == sum(c.usage.input_tokens for c in calls)
    assert sum(row["output_tokens"] for row in rows) == sum(c.usage.output_tokens for c in calls)
    for row in rows:
        assert set(by) <= set(row)
    keys = [tuple(row[k] for k in by) for row in rows]
    assert len(set(keys)) == len(keys)


def test_group_values_match_the_traffic(filled):
    ledger, _, calls = filled
    rows = {row["customer"]: row for row in _json(ledger, "--by", "customer")}
    assert set(rows) == {"acme", "globex", "initech", UNTAGGED}
    for name, row in rows.items():
        mine = [c for c in calls if c.tags["customer"] == name]
        assert row["cost_usd"] == sum((c.cost.total for c in mine), Decimal(0))
        assert row["calls"] == len(mine)
        assert row["unpriced_calls"] == len([c for c in mine if c.cost.status == "unpriced"])
    months = [row["month"] for row in _json(ledger, "--by", "month")]
    assert months == ["2026-10", "2026-11"]
    weeks = [row["week"] for row in _json(ledger, "--by", "week")]
    assert weeks == sorted(weeks)
    assert weeks[0] == "2026-09-28"  # the Monday of the week holding 2026-10-01
    assert all(datetime.fromisoformat(w).weekday() == 0 for w in weeks)


def test_costliest_first_and_shares(filled):
    ledger, _, _ = filled
    rows = _json(ledger, "--by", "feature")
    costs = [row["cost_usd"] for row in rows]
    assert costs == sorted(costs, reverse=True)
    assert abs(sum(row["share_pct"] for row in rows) - 100) <= Decimal("0.02")


def test_table_and_csv_show_the_same_rows(filled):
    ledger, total, _ = filled
    status, table = _report(ledger, "--by", "customer")
    assert status == 0
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["customer", "cost", "$"]
    assert f"total ${total.quantize(Decimal('0.000001')):,f} over 500 calls" in table
    assert "unpriced calls are counted but carry no cost" in table
    status, text = _report(ledger, "--by", "customer", "--format", "csv")
    assert status == 0
    records = list(csv.DictReader(io.StringIO(text)))
    json_rows = _json(ledger, "--by", "customer")
    assert [r["customer"] for r in records] == [r["customer"] for r in json_rows]
    assert sum(Decimal(r["cost_usd"]) for r in records) == total
    for record in records:
        assert record["customer"] in table
    assert list(records[0]) == [
        "customer",
        "cost_usd",
        "share_pct",
        "calls",
        "unpriced_calls",
        "input_tokens",
        "output_tokens",
        "avg_input_tokens",
    ]


def test_since_until_and_where_filter(filled):
    ledger, _, calls = filled
    since, until = "2026-10-10", "2026-10-20T12:00Z"
    low, high = to_unix_nano(parse_instant(since)), to_unix_nano(parse_instant(until))
    rows = _json(
        ledger, "--by", "feature", "--since", since, "--until", until, "--where", "team=growth"
    )
    mine = [c for c in calls if low <= c.start_time_unix_nano < high and c.tags["team"] == "growth"]
    assert sum(r["calls"] for r in rows) == len(mine) > 0
    assert sum(r["cost_usd"] for r in rows) == sum((c.cost.total for c in mine), Decimal(0))


def test_period_change_shows_which_feature_prompt_grew(ledger_path):
    before, now = OCT_1, OCT_1 + 10 * DAY_NS
    calls = []
    for i in range(10):
        tags = {"feature": "search"}
        calls.append(call(i, before + i * 1000, tags, input_tokens=1000, output_tokens=100))
        calls.append(call(100 + i, now + i * 1000, tags, input_tokens=3000, output_tokens=100))
        tags = {"feature": "chat"}
        calls.append(call(200 + i, before + i * 1000, tags, input_tokens=500, output_tokens=50))
        calls.append(call(300 + i, now + i * 1000, tags, input_tokens=500, output_tokens=50))
    calls.append(call(400, before, {"feature": "retired"}))
    with Ledger(ledger_path, create=True) as ledger:
        ledger.write(calls)
    rows = _json(ledger_path, "--by", "feature", "--since", "2026-10-11", "--until", "2026-10-21")
    by_feature = {row["feature"]: row for row in rows}
    search = by_feature["search"]
    # 10 calls x (3000 x $2.50/M + 100 x $10/M) now against 10 x (1000 x 2.5 + 100 x 10)/M.
    assert search["cost_usd"] == Decimal("0.085")
    assert search["previous_cost_usd"] == Decimal("0.035")
    assert search["change_usd"] == Decimal("0.05")
    assert search["change_pct"] == Decimal("142.9")
    assert search["avg_input_tokens"] == 3000
    assert search["previous_avg_input_tokens"] == 1000
    assert search["avg_input_tokens_change_pct"] == 200
    chat = by_feature["chat"]
    assert chat["change_usd"] == 0
    assert chat["avg_input_tokens_change_pct"] == 0
    retired = by_feature["retired"]
    assert retired["calls"] == 0
    assert retired["cost_usd"] == 0
    assert retired["previous_calls"] == 1
    assert retired["change_pct"] == -100
    assert sum(r["cost_usd"] for r in rows) == Decimal("0.085") + Decimal("0.0175")
    status, table = _report(
        ledger_path, "--by", "feature", "--since", "2026-10-11", "--until", "2026-10-21"
    )
    assert status == 0
    assert "+142.9%" in table
    assert "+200.0%" in table
    assert "previous period $0.056000 over 21 calls" in table


def test_version_comparison_is_cost_per_priced_call(ledger_path):
    calls = []
    for i in range(4):
        calls.append(
            call(
                i,
                OCT_1 + i,
                {"feature": "chat", "version": "v1"},
                input_tokens=1000,
                output_tokens=100,
            )
        )
        calls.append(
            call(
                10 + i,
                OCT_1 + i,
                {"feature": "chat", "version": "v2"},
                input_tokens=1600,
                output_tokens=100,
            )
        )
    calls.append(call(20, OCT_1, {"feature": "chat", "version": "v2"}, priced=False))
    calls.append(call(21, OCT_1, {"feature": "search", "version": "v1"}))
    calls.append(call(22, OCT_1, {"feature": "chat", "version": "v3"}))
    with Ledger(ledger_path, create=True) as ledger:
        ledger.write(calls)
    rows = _json(ledger_path, "--by", "feature", "--compare", "version=v1,v2")
    assert [(r["feature"], r["version"]) for r in rows] == [
        ("chat", "v1"),
        ("chat", "v2"),
        ("search", "v1"),
        ("search", "v2"),
    ]
    chat_v1, chat_v2, search_v1, search_v2 = rows
    assert chat_v1["cost_per_call_usd"] == Decimal("0.0035")
    assert chat_v1["cost_per_call_change_pct"] is None
    assert chat_v2["calls"] == 5
    assert chat_v2["unpriced_calls"] == 1
    assert chat_v2["cost_per_call_usd"] == Decimal("0.005")
    assert chat_v2["cost_per_call_change_pct"] == Decimal("42.9")
    assert search_v1["calls"] == 1
    assert search_v2["calls"] == 0
    assert search_v2["cost_per_call_usd"] is None
    # v3 is not part of the comparison.
    assert sum(r["calls"] for r in rows) == len(calls) - 1


def test_top_folds_the_tail_into_other(ledger_path):
    customers = tuple(f"customer-{i:02d}" for i in range(30))
    calls = mixed_traffic(600, OCT_1, customers=customers, seed=2)
    with Ledger(ledger_path, create=True) as ledger:
        ledger.write(calls)
        (total,) = ledger.aggregate()
        everyone = sorted(ledger.aggregate(["customer"]), key=lambda g: -g.cost_usd)
    rows = _json(ledger_path, "--by", "customer", "--top", "5")
    assert len(rows) == 6
    assert [r["customer"] for r in rows[:5]] == [g.key[0] for g in everyone[:5]]
    assert rows[5]["customer"] == OVERFLOW
    assert rows[5]["calls"] == sum(g.calls for g in everyone[5:])
    assert sum(r["cost_usd"] for r in rows) == total.cost_usd


def test_empty_period_and_empty_ledger(ledger_path):
    with Ledger(ledger_path, create=True):
        pass
    assert _json(ledger_path, "--by", "customer") == []
    status, table = _report(ledger_path, "--by", "customer", "--since", "7d")
    assert status == 0
    assert "(no calls in this period)" in table
    assert "total $0.000000 over 0 calls" in table


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--by", "not a key"], "is not a tag key"),
        (["--since", "last tuesday"], "is not a date"),
        (["--since", "2026-10-05", "--until", "2026-10-01"], "must be before"),
        (["--where", "customer"], "KEY=VALUE"),
        (["--compare", "version=v1"], "two or more values"),
        (["--compare", "version=v1,v2", "--by", "version"], "cannot also be a --by key"),
        (["--top", "0"], "at least 1"),
        (["--top", "3", "--by", "day"], "cannot be combined"),
    ],
)
def test_bad_input_is_a_clear_error(filled, capsys, args, message):
    ledger, _, _ = filled
    status, text = _report(ledger, *args)
    assert status == 2
    assert text == ""
    assert message in capsys.readouterr().err


def test_a_tag_the_ledger_never_saw_is_a_warning_beside_the_table(filled, capsys):
    ledger, _, _ = filled
    status, table = _report(ledger, "--by", "custmer", "--where", "model=gpt-4o")
    assert status == 0
    assert re.search(rf"^{re.escape(UNTAGGED)}\s", table, re.MULTILINE), table
    assert capsys.readouterr().err == (
        f"spanledger report: warning: no call in {ledger} has the tag 'custmer'; "
        "tags it has seen: customer, env, feature, team\n"
    )
    # Known tags, built-in dimensions and tag:NAME for a known tag warn of nothing.
    status, _ = _report(ledger, "--by", "customer", "--by", "model", "--where", "tag:env=prod")
    assert status == 0
    assert capsys.readouterr().err == ""
    # --where and --compare are checked too, once per key.
    status, _ = _report(ledger, "--compare", "version=v1,v2", "--where", "version=v1")
    assert status == 0
    assert capsys.readouterr().err.count("has the tag 'version'") == 1


def test_an_empty_ledger_has_seen_no_tags(ledger_path, capsys):
    with Ledger(ledger_path, create=True):
        pass
    assert _report(ledger_path, "--by", "customer")[0] == 0
    assert "tags it has seen: none" in capsys.readouterr().err


def test_missing_ledger_is_a_clear_error(tmp_path, capsys):
    status, _ = _report(tmp_path / "nowhere.db", "--by", "customer")
    assert status == 2
    assert "no ledger at" in capsys.readouterr().err


def test_the_spanledger_command_runs_the_report(filled):
    ledger, total, _ = filled
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "spanledger.processor.cli",
            "report",
            "--ledger",
            str(ledger),
            "--by",
            "team",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout, parse_float=Decimal)
    assert {r["team"] for r in rows} == {"growth", "platform"}
    assert sum(r["cost_usd"] for r in rows) == total


def test_config_naming_no_ledger_or_invalid_is_a_clear_error(tmp_path, capsys):
    off = tmp_path / "off.yaml"
    off.write_text("ledger: {path: ''}\n")
    assert run_report(["--config", str(off), "--by", "customer"]) == 2
    assert "turns the ledger off" in capsys.readouterr().err
    broken = tmp_path / "broken.yaml"
    broken.write_text("ledger: {retention_days: -3}\n")
    assert run_report(["--config", str(broken)]) == 2
    assert "retention_days" in capsys.readouterr().err


def test_config_ledger_path_is_relative_to_the_config_file(tmp_path, filled):
    ledger, total, _ = filled
    config = ledger.parent / "processor.yaml"
    config.write_text(f"ledger: {{path: {ledger.name}}}\n")
    out = io.StringIO()
    assert run_report(["--config", str(config), "--format", "json"], out=out) == 0
    (row,) = json.loads(out.getvalue(), parse_float=Decimal)
    assert row["cost_usd"] == total


def test_billable_uses_the_marked_up_cost_where_recorded(ledger_path):
    marked = call(0, OCT_1, {"customer": "acme"})  # $0.0035
    marked.cost.billable = Decimal("0.00385")
    plain = call(1, OCT_1, {"customer": "acme"})
    with Ledger(ledger_path, create=True) as ledger:
        ledger.write([marked, plain])
    (cost,) = _json(ledger_path, "--by", "customer")
    (billable,) = _json(ledger_path, "--by", "customer", "--billable")
    assert cost["cost_usd"] == Decimal("0.007")
    assert billable["cost_usd"] == Decimal("0.00735")
