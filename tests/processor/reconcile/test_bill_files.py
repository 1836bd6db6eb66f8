"""The bill from files: pages saved from the admin APIs and the providers' CSV exports read
like the APIs themselves; bad or partial input refused, naming the file and line, with nothing
written."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from spanledger.processor.reconcile.bill import Bill, Period
from spanledger.processor.reconcile.sources import fetch_bill
from spanledger.standin import StandIn

from .support import (
    Clock,
    at,
    both_apis,
    day,
    direct_chat,
    direct_message,
    ledger_state,
    priced_call,
    reconcile,
    write_ledger,
)

KEYS = {"OPENAI_ADMIN_KEY": "k", "ANTHROPIC_ADMIN_KEY": "k"}
PERIOD = ("--since", str(day(0)), "--until", str(day(3)))


@pytest.fixture
def llm() -> Iterator[StandIn]:
    """OpenAI and Anthropic calls on three days, the middle one missing from the ledger."""
    clock = Clock()
    with StandIn(clock=clock) as server:
        for offset in range(3):
            clock.set(at(day(offset)))
            direct_chat(server, "gpt-4o-mini", 20_000 + offset, 400)
            direct_message(server, "claude-haiku-4-5", 9_000, 700)
        yield server


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    calls = []
    for offset in (0, 2):
        calls.append(
            priced_call(
                len(calls),
                at(day(offset)),
                input_tokens=20_000 + offset,
                output_tokens=400,
                customer="acme",
            )
        )
        calls.append(
            priced_call(
                len(calls),
                at(day(offset)),
                provider="anthropic",
                model="claude-haiku-4-5",
                input_tokens=9_000,
                output_tokens=700,
                customer="globex",
            )
        )
    return write_ledger(tmp_path / "ledger.db", calls)


@pytest.fixture
def saved(tmp_path: Path, llm: StandIn) -> dict[str, Path]:
    """The admin APIs' pages, saved one day a page (to have several pages a file)."""
    folder = tmp_path / "saved"
    bill = Bill(Period(day(0), day(3)))
    urls = {"openai": llm.url, "anthropic": llm.url}
    fetch_bill(
        bill,
        ["openai", "anthropic"],
        by_project=False,
        urls=urls,
        environ=KEYS,
        save=folder,
        page_limit=1,
    )
    return {p.name.split("-2031")[0]: p for p in folder.iterdir()}


def _json_rows(run_args: list[str], ledger: Path) -> list[dict]:
    run = reconcile(
        "--ledger", str(ledger), *PERIOD, "--dry-run", "--format", "json", *run_args, environ=KEYS
    )
    assert run.code == 0, run.err
    return run.rows


def test_saved_pages_read_back_as_the_apis_gave_them(
    saved: dict[str, Path], ledger: Path, llm: StandIn
) -> None:
    assert set(saved) == {
        "openai-completions",
        "openai-embeddings",
        "openai-costs",
        "anthropic-usage_report",
        "anthropic-cost_report",
    }
    from_api = _json_rows(both_apis(llm), ledger)
    files = [a for path in saved.values() for a in ("--file", str(path))]
    assert _json_rows(files, ledger) == from_api
    missing = [r for r in from_api if r["day"] == str(day(1))]
    assert {r["cause"] for r in missing} == {"not_in_ledger"}
    assert {r["cause"] for r in from_api if r["day"] != str(day(1))} == {"match"}


def test_csv_exports_are_read_like_the_apis(tmp_path: Path, ledger: Path) -> None:
    openai_costs = tmp_path / "openai-costs.csv"
    openai_costs.write_text(
        "start_time,end_time,amount_value,amount_currency,line_item,project_id,"
        "organization_id,project_name,organization_name\n"
        + "".join(
            f"{int(at(day(n), 0).timestamp())},{int(at(day(n), 0).timestamp()) + 86400},"
            f'{cost},usd,"gpt-4o-mini-2024-07-18, {kind}",proj_1,org_1,Default,Acme\n'
            for n in (0, 2)
            for cost, kind in ((_mini(20_000 + n, 0), "input"), (_mini(0, 400), "output"))
        )
    )
    anthropic_usage = tmp_path / "anthropic-usage.csv"
    usage_row = "{day},claude-haiku-4-5-20251001,{key},Default,standard,≤ 200k,{fresh},0,0,0,{out}"
    anthropic_usage.write_text(
        "usage_date_utc,model_version,api_key,workspace,usage_type,context_window,"
        "usage_input_tokens_no_cache,usage_input_tokens_cache_write_5m,"
        "usage_input_tokens_cache_write_1h,usage_input_tokens_cache_read,usage_output_tokens,"
        "web_search_count,inference_geo,speed\n"
        + "".join(
            usage_row.format(day=when, key=key, fresh=fresh, out=out) + ",0,global,\n"
            for when, key, fresh, out in (
                (day(0), "prod", 9000, 700),
                (day(2), "prod", 9000, 700),
                (day(2), "ci", 1000, 0),
            )
        )
    )
    anthropic_costs = tmp_path / "anthropic-costs.csv"
    cost_row = "{day},Claude Haiku 4.5,Default,prod,message,≤ 200k,{kind},{usd},{usd},token,global,"
    anthropic_costs.write_text(
        "usage_date_utc,model,workspace,api_key,usage_type,context_window,token_type,cost_usd,"
        "list_price_usd,cost_type,inference_geo,speed\n"
        + cost_row.format(day=day(0), kind="input_no_cache", usd="0.009")
        + "\n"
        + cost_row.format(day=day(0), kind="output", usd="0.0035")
        + "\n"
    )
    rows = _json_rows(
        [
            "--file",
            str(openai_costs),
            "--file",
            str(anthropic_usage),
            "--file",
            str(anthropic_costs),
        ],
        ledger,
    )
    by_key = {(r["day"], r["provider"]): r for r in rows}
    # A dated model id, a console display name and the ledger's model all meet.
    assert by_key[(str(day(0)), "openai")]["cause"] == "match"
    assert by_key[(str(day(0)), "openai")]["model"] == "gpt-4o-mini-2024-07-18"
    assert by_key[(str(day(0)), "anthropic")]["cause"] == "match"
    assert by_key[(str(day(2)), "anthropic")]["cause"] == "unseen_calls"
    assert by_key[(str(day(2)), "anthropic")]["billed_input_tokens"] == 10_000


def _mini(prompt: int, completion: int) -> str:
    cost = priced_call(0, at(day(0)), input_tokens=prompt, output_tokens=completion).cost
    return format(cost.input if prompt else cost.output, "f")


def _bad_inputs(tmp_path: Path, saved: dict[str, Path]) -> Iterator[tuple[list[Path], str]]:
    """``(files, the error they must give)`` for each kind of bad or partial input."""
    costs = json.loads(saved["openai-costs"].read_text())
    assert len(costs) == 3  # a page per day
    cut = tmp_path / "cut.json"
    cut.write_text(json.dumps(costs[:2]))
    yield [cut], f"{cut}: page 2: has_more is true but no page follows"

    euros = json.loads(saved["openai-costs"].read_text())
    euros[1]["data"][0]["results"][0]["amount"]["currency"] = "eur"
    euro_file = tmp_path / "euros.json"
    euro_file.write_text(json.dumps(euros))
    yield (
        [euro_file],
        f"{euro_file}: page 2: data[0].results[0].amount.currency: currency 'eur' is not USD",
    )

    broken = tmp_path / "broken.json"
    broken.write_text('[\n {"data": [],\n  "has_more": false,,\n}]\n')
    yield [broken], f"{broken}:3: not valid JSON"

    header = "start_time,end_time,amount_value,amount_currency,line_item,project_id\n"
    start = int(at(day(0), 0).timestamp())
    rows = [f'{start},{start + 86400},0.01,usd,"gpt-4o-mini, input",proj\n'] * 2
    late = tmp_path / "late.csv"
    late.write_text(header + rows[0] + f'{start + 5 * 86400},,0.01,usd,"gpt-4o, input",p\n')
    yield [late], f"{late}:3: {day(5)} is outside the period"

    unknown = tmp_path / "unknown.csv"
    unknown.write_text(header.replace("project_id", "project_id,discount") + rows[0])
    yield [unknown], f"{unknown}:1: unknown column 'discount' in an OpenAI cost export"

    yen = tmp_path / "yen.csv"
    yen.write_text(header + rows[0] + rows[0].replace(",usd,", ",jpy,"))
    yield [yen], f"{yen}:3: amount_currency: currency 'jpy' is not USD"

    truncated = tmp_path / "truncated.csv"
    truncated.write_text(header + rows[0] + f"{start},{start + 86400},0.01\n")
    yield [truncated], f"{truncated}:3: 3 fields where the header has 6"

    twice = tmp_path / "twice.csv"
    twice.write_text(header + rows[0])
    yield [saved["openai-costs"], twice], f"{twice}:2: openai costs of {day(0)} was already read"


def test_bad_input_is_refused_naming_file_and_line_and_nothing_is_written(
    tmp_path: Path, saved: dict[str, Path], ledger: Path
) -> None:
    files = [a for path in saved.values() for a in ("--file", str(path))]
    first = reconcile("--ledger", str(ledger), *PERIOD, *files)
    assert first.code == 0, first.err
    before = ledger_state(ledger)
    assert before[0] and before[2]  # a run and its settlement are stored
    for bad, message in _bad_inputs(tmp_path, saved):
        run = reconcile(
            "--ledger",
            str(ledger),
            *PERIOD,
            *[a for p in bad for a in ("--file", str(p))],
            "--textfile",
            str(tmp_path / "gaps.prom"),
        )
        assert run.code == 2, message
        assert run.err.startswith(f"spanledger reconcile: {message}"), run.err
        assert run.out == ""
        assert ledger_state(ledger) == before
        assert not (tmp_path / "gaps.prom").exists()
