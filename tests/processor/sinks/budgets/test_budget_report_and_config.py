"""``spanledger report --budgets`` reads the ledger the processor writes; the ``budgets`` config
section reports every problem with its place."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import yaml

from spanledger.processor.cli.report import run_report
from spanledger.processor.config import check_config
from spanledger.processor.sinks.ledger import Ledger

from .support import counted


def test_report_budgets_shows_spend_against_every_budget(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    with Ledger(tmp_path / "ledger.db", create=True) as ledger:
        ledger.write(
            [
                counted(0, now, "3", customer="acme"),
                counted(1, now, "1.5", customer="acme"),
                counted(2, now - timedelta(days=400), "100", customer="acme"),
                counted(3, now, "0.25", customer="globex", env="staging"),
            ]
        )
    config = tmp_path / "processor.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "ledger": {"path": "ledger.db"},
                "budgets": {
                    "limits": [
                        {"name": "acme", "match": {"customer": "acme"}, "amount_usd": 4},
                        {"name": "each", "per": "customer", "lifetime_usd": 1000},
                        {"name": "staging", "match": {"env": "staging"}, "amount_usd": 1},
                    ]
                },
            }
        )
    )
    out = io.StringIO()
    assert run_report(["--config", str(config), "--budgets", "--format", "json"], out=out) == 0
    rows = json.loads(out.getvalue(), parse_float=Decimal)
    by_key = {(r["budget"], r["scope"], r["window"]): r for r in rows}
    assert set(by_key) == {
        ("acme", "customer=acme", "monthly"),
        ("each", "customer=acme", "lifetime"),
        ("each", "customer=globex", "lifetime"),
        ("staging", "env=staging", "monthly"),
    }
    acme = by_key[("acme", "customer=acme", "monthly")]
    assert acme["spend_usd"] == Decimal("4.5")
    assert acme["used_pct"] == Decimal("112.5")
    assert acme["exceeded"] == "yes"
    assert acme["thresholds_crossed"] == "50% 80% 100%"
    assert by_key[("each", "customer=acme", "lifetime")]["spend_usd"] == Decimal("104.5")
    assert by_key[("staging", "env=staging", "monthly")]["used_pct"] == Decimal("25.0")
    assert rows[0] is acme or rows[0]["used_pct"] >= acme["used_pct"]

    table = io.StringIO()
    assert run_report(["--config", str(config), "--budgets"], out=table) == 0
    assert "customer=acme" in table.getvalue() and "112.5" in table.getvalue()
    assert run_report(["--ledger", str(tmp_path / "ledger.db"), "--budgets"]) == 2


def _problems(tmp_path: Path, budgets: object, **extra: object) -> list[str]:
    config = tmp_path / "processor.yaml"
    config.write_text(yaml.safe_dump({"budgets": budgets, **extra}))
    _config, problems = check_config(config)
    return [p.split(": ", 1)[1] for p in problems]


def test_budget_config_problems_are_reported_with_their_place(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        {
            "limits": [
                {"name": "a", "amount_usd": -5, "period": "hourly"},
                {"name": "a", "match": {"region": "eu"}, "lifetime_usd": 10},
                {"name": "c", "amount_usd": 5, "period": "daily", "start": "2026-11-01"},
                {"name": "d", "amount_usd": 5, "start": "2026-12-01", "end": "2026-11-01"},
                {"name": "e", "per": "customer", "match": {"customer": "x"}, "amount_usd": 1},
                {"amount_usd": 1, "thresholds": [0, 50, 50]},
            ],
            "rate_limits": [{"name": "r", "requests_per_minute": 0}],
            "webhook": {"url": "ftp://example", "max_attempts": 0},
        },
    )
    text = "\n".join(problems)
    for expected in (
        "budgets.limits[0] (line 3): amount_usd must be more than 0",
        "budgets.limits[0] (line 3): period must be one of daily, weekly, monthly, yearly",
        "budgets.limits[1]: tag 'region' is not in tags",
        "budgets.limits[2] (line 10): give either a period or a custom start/end",
        "budgets.limits[3] (line 14): start must be before end",
        "budgets.limits[4] (line 18): per: 'customer' is also in match",
        "budgets.limits[5] (line 23): name is required",
        "thresholds: 0.0 is not a percentage above 0",
        "thresholds: a percentage is listed twice",
        "budgets (line 2): limits: the name 'a' is used twice",
        "requests_per_minute must be at least 1",
        "rate_limits are counted by the status endpoint's check: set status.endpoint",
        "budgets.webhook (line 32): url: expected an http(s) URL",
        "max_attempts must be at least 1",
    ):
        assert expected in text, (expected, text)


def test_a_good_budgets_section_has_no_problems(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        {
            "limits": [
                {"name": "acme", "match": {"customer": "acme"}, "amount_usd": 500},
                {"name": "each", "per": "customer", "amount_usd": 20, "period": "daily"},
                {"name": "launch", "amount_usd": 5, "start": "2026-11-01", "end": None},
            ],
            "rate_limits": [{"name": "rpm", "per": "team", "requests_per_minute": 30}],
            "status": {"endpoint": "127.0.0.1:4319", "bearer_token": "t"},
            "webhook": {"url": "https://hooks.example/b", "secret": "s", "timeout": "2s"},
        },
    )
    assert problems == []
