"""``spanledger price``: the breakdown of one call, as a table or JSON."""

from __future__ import annotations

import json
import subprocess
import sys

from spanledger.processor.cli.price import run_price


def test_table_shows_each_component_and_the_total(capsys):
    code = run_price(
        ["--model", "gpt-4o-mini", "--provider", "openai", "--input", "1000", "--output", "200"]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "openai/gpt-4o-mini" in out
    lines = dict(line.split(None, 1) for line in out.splitlines() if line and line[0] != " ")
    assert lines["input"].startswith("$0.00015 ")
    assert lines["output"].startswith("$0.00012 ")
    assert lines["total"] == "$0.00027"


def test_json_with_cache_reads_and_1h_writes(capsys):
    code = run_price(
        [
            "--model", "claude-sonnet-4-20250514", "--provider", "anthropic",
            "--input", "3510", "--output", "200", "--cache-read", "2000",
            "--cache-write", "500", "--cache-write-1h", "1000",
            "--at", "2025-09-01T12:00:00Z", "--format", "json",
        ]
    )  # fmt: skip
    document = json.loads(capsys.readouterr().out)
    assert code == 0
    assert document["status"] == "priced" and document["source"] == "price_table"
    assert document["input_usd"] == "0.00003"
    assert document["cache_read_usd"] == "0.0006"
    assert document["cache_write_usd"] == "0.007875"
    assert document["output_usd"] == "0.003"
    assert document["total_usd"] == "0.011505"
    assert document["billable_usd"] is None


def test_markup_and_reported_cost(capsys):
    code = run_price(
        [
            "--model", "gpt-4o-mini", "--provider", "openai", "--input", "1000000",
            "--reported-cost", "0.2", "--markup-percent", "10", "--format", "json",
        ]
    )  # fmt: skip
    document = json.loads(capsys.readouterr().out)
    assert code == 0
    assert document["source"] == "provider_reported"
    assert document["total_usd"] == "0.2" and document["billable_usd"] == "0.22"


def test_service_tier(capsys):
    args = ["--model", "gpt-5", "--provider", "openai", "--input", "1000000", "--format", "json"]
    code = run_price([*args, "--service-tier", "flex", "--at", "2026-11-02"])
    assert code == 0 and json.loads(capsys.readouterr().out)["total_usd"] == "0.625"


def test_overrides_file(tmp_path, capsys):
    prices = tmp_path / "prices.yaml"
    prices.write_text("models:\n  - model: acme-ft\n    input_mtok: 2\n    output_mtok: 4\n")
    code = run_price(
        ["--model", "acme-ft", "--input", "500000", "--overrides", str(prices), "--format", "json"]
    )
    document = json.loads(capsys.readouterr().out)
    assert code == 0 and document["source"] == "override" and document["total_usd"] == "1"


def test_unknown_model_exits_1_with_the_reason(capsys):
    code = run_price(["--model", "no-such-model-xyz", "--provider", "openai", "--input", "5"])
    out = capsys.readouterr().out
    assert code == 1
    assert out.startswith("unpriced:") and "'no-such-model-xyz'" in out


def test_bad_arguments_exit_2(capsys):
    assert run_price(["--model", "gpt-4o-mini", "--input", "-3"]) == 2
    assert "negative" in capsys.readouterr().err
    assert run_price(["--model", "gpt-4o-mini", "--at", "yesterday"]) == 2
    assert run_price(["--input", "3"]) == 2


def test_bad_overrides_file_exits_2(tmp_path, capsys):
    prices = tmp_path / "prices.yaml"
    prices.write_text("models:\n  - model: acme-ft\n")
    assert run_price(["--model", "acme-ft", "--overrides", str(prices)]) == 2
    assert "line 2" in capsys.readouterr().err


def test_the_installed_command_runs_it():
    result = subprocess.run(
        [sys.executable, "-m", "spanledger.processor.cli", "price", "--model", "gpt-4o-mini",
         "--provider", "openai", "--input", "1000", "--output", "200", "--format", "json"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["total_usd"] == "0.00027"
