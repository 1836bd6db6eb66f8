"""Helpers for the reconciliation tests: priced ledger calls on fixed days, a movable clock for
the stand-in's bill, and the commands run in-process with their output parsed."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import httpx

from spanledger.processor.cli.reconcile import run_reconcile
from spanledger.processor.cli.report import run_report
from spanledger.processor.model import CountedCall, Usage
from spanledger.processor.pricing import PriceBook
from spanledger.processor.sinks.ledger import Ledger
from spanledger.standin import SCENARIO_HEADER, StandIn

FIRST_DAY = date(2031, 3, 9)
"""The first day of the fixed periods (the stand-in's clock is injected, so any day will do)."""
TAG_KEYS = ("customer", "feature", "team", "env")
BOOK = PriceBook()
CENT = Decimal("0.01")


def at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def day(offset: int) -> date:
    return FIRST_DAY + timedelta(days=offset)


class Clock:
    """Unix seconds for the stand-in's bill; tests move it from day to day."""

    def __init__(self, moment: datetime | None = None) -> None:
        self.now = (moment or at(FIRST_DAY)).timestamp()

    def __call__(self) -> float:
        return self.now

    def set(self, moment: datetime) -> None:
        self.now = moment.timestamp()


def priced_call(
    index: int,
    when: datetime,
    *,
    provider: str = "openai",
    model: str = "gpt-4o-mini",
    input_tokens: int = 10_000,
    output_tokens: int = 500,
    cache_read: int = 0,
    operation: str = "chat",
    **tags: str,
) -> CountedCall:
    """A counted call priced by the price table, as the processor would have priced it."""
    usage = Usage(
        operation=operation,
        provider=provider,
        request_model=model,
        response_model=model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cache_read,
    )
    start = int(when.timestamp()) * 10**9 + index
    all_tags = dict.fromkeys(TAG_KEYS, "(none)") | tags
    return CountedCall(
        f"{index + 1:032x}", f"{index + 1:016x}", start, all_tags, usage, BOOK.price(usage, start)
    )


def write_ledger(path: Path, calls: Sequence[CountedCall]) -> Path:
    with Ledger(path, create=True) as ledger:
        ledger.write(calls)
    return path


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def rows(self) -> list[dict[str, Any]]:
        return json.loads(self.out, parse_float=Decimal)

    def row(self, **match: object) -> dict[str, Any]:
        (found,) = [r for r in self.rows if all(r.get(k) == v for k, v in match.items())]
        return found


def reconcile(*argv: str, environ: Mapping[str, str] | None = None) -> Run:
    """``spanledger reconcile ARGV`` in-process; stdout and stderr captured."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err):
        code = run_reconcile(list(argv), out, environ=environ or {})
    return Run(code, out.getvalue(), err.getvalue())


def direct_chat(
    llm: StandIn, model: str, prompt: int, completion: int, *, project: str | None = None
) -> None:
    """One OpenAI chat call straight to the stand-in, by no instrumented code: billed, and in
    the ledger only if the test writes it there."""
    usage = {"prompt_tokens": prompt, "completion_tokens": completion}
    headers = {SCENARIO_HEADER: json.dumps({"usage": usage})}
    if project:
        headers["openai-project"] = project
    httpx.post(
        f"{llm.openai_base_url}/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "x"}]},
        headers=headers,
    ).raise_for_status()


def direct_message(llm: StandIn, model: str, fresh_input: int, output: int) -> None:
    """One Anthropic Messages call straight to the stand-in (see ``direct_chat``)."""
    usage = {"input_tokens": fresh_input, "output_tokens": output}
    httpx.post(
        f"{llm.anthropic_base_url}/v1/messages",
        json={"model": model, "max_tokens": 9, "messages": []},
        headers={SCENARIO_HEADER: json.dumps({"usage": usage})},
    ).raise_for_status()


def both_apis(llm: StandIn) -> list[str]:
    """The options reading both providers' bills from the stand-in's admin APIs."""
    return [
        "--api",
        "openai",
        "--api",
        "anthropic",
        "--openai-url",
        llm.url,
        "--anthropic-url",
        llm.url,
    ]


def reconcile_openai(
    ledger: Path | str, llm: StandIn, since: date, until: date, *extra: str
) -> Run:
    """``spanledger reconcile`` of the stand-in's OpenAI bill over ``[since, until)``, JSON.
    ``ledger`` is a file or a ``postgresql://`` URL (password from PGPASSWORD)."""
    return reconcile(
        *("--ledger", str(ledger), "--api", "openai", "--openai-url", llm.url),
        *("--since", str(since), "--until", str(until), "--format", "json", *extra),
        environ={"OPENAI_ADMIN_KEY": "k"},
    )


def settled(ledger: Path | str, *by: str, extra: Sequence[str] = ()) -> list[dict[str, Any]]:
    """``spanledger report --settled --by ...`` as JSON rows (``ledger`` a file or a URL)."""
    out, err = io.StringIO(), io.StringIO()
    args = ["--ledger", str(ledger), "--settled", *[a for b in by for a in ("--by", b)]]
    with contextlib.redirect_stderr(err):
        code = run_report([*args, *extra, "--format", "json"], out)
    assert code == 0, err.getvalue()
    return json.loads(out.getvalue(), parse_float=Decimal)


def settled_total(rows: Sequence[Mapping[str, Any]]) -> Decimal:
    return sum((Decimal(str(r["cost_usd"])) for r in rows), Decimal(0))


def to_cent(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def ledger_state(path: Path) -> tuple[Any, ...]:
    """Everything reconcile may have written, to check that a failed run wrote nothing."""
    with Ledger(path) as ledger:
        return (
            [(r.run_id, r.since_day) for r in ledger.settled_runs()],
            [(g.provider, g.model, g.billed_usd) for g in ledger.latest_gaps()],
            [(t.key, t.settled_usd) for t in ledger.settled_aggregate(["day", "customer"])],
            ledger.aggregate()[0].calls,
        )
