"""``spanledger reconcile``: the provider's bill against the ledger, per day, provider and model;
the settled amounts stored beside the estimates; the gap watched (gauge, exit code, alert)."""

from __future__ import annotations

import argparse
import logging
import sys
import textwrap
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TextIO

from spanledger.processor.cli.report import DEFAULT_LEDGER, add_ledger_source
from spanledger.processor.pricing import PriceBook, PricingConfig
from spanledger.processor.reconcile.admin_api import DEFAULT_URLS
from spanledger.processor.reconcile.bill import COST, Bill, BillError, Period
from spanledger.processor.reconcile.drift import over, send_drift_alerts
from spanledger.processor.reconcile.gauge import write_textfile
from spanledger.processor.reconcile.matching import (
    CAUSES,
    MATCH,
    Match,
    ModelTotal,
    match,
    model_totals,
)
from spanledger.processor.reconcile.settlement import CENT, UNITS, Settlement, settle
from spanledger.processor.reconcile.sources import fetch_bill, read_files
from spanledger.processor.report.periods import to_unix_nano
from spanledger.processor.report.render import FORMATS, render
from spanledger.processor.sinks.budgets.config import WebhookConfig
from spanledger.processor.sinks.ledger import (
    LedgerConfig,
    LedgerError,
    LedgerStore,
    config_for,
    open_ledger,
)
from spanledger.processor.sinks.ledger.reconciled import GapRecord, LatestGap, RunRecord

EXIT_OK, EXIT_OVER, EXIT_USAGE = 0, 1, 2

_EPILOG = (
    """\
The bill comes from the providers' admin APIs (--api, with the admin key in OPENAI_ADMIN_KEY or
ANTHROPIC_ADMIN_KEY; never in a file) or from files (--file): pages saved from those APIs
(--save writes them) and the providers' CSV exports. Days are UTC; --until is exclusive.

causes:
"""
    + "\n".join(
        textwrap.fill(text, 92, initial_indent=f"  {name:<17}", subsequent_indent=" " * 19)
        for name, text in CAUSES.items()
    )
    + """

exit status: 0 done, 1 a gap over --fail-over, 2 bad input (nothing written).

examples:
  spanledger reconcile --config processor.yaml --api openai --api anthropic \\
      --since 2026-11-01 --until 2026-12-01
  spanledger reconcile --ledger spanledger.db --file costs.csv --file usage.csv --format json
  PGPASSWORD=... spanledger reconcile --ledger postgresql://spanledger@db/spanledger --api openai
  spanledger reconcile --config processor.yaml --api openai --fail-over 5 --alert-over 5
"""
)

_HEADINGS = {
    "billed_usd": "billed $",
    "attributed_usd": "attributed $",
    "gap_usd": "gap $",
    "gap_pct": "gap",
    "token_gap_usd": "token gap $",
    "price_gap_usd": "price gap $",
}
_MONEY = ("billed_usd", "attributed_usd", "gap_usd", "token_gap_usd", "price_gap_usd")
_TABLE_COLUMNS = ("day", "provider", "model", "project", *_HEADINGS, "cause")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spanledger reconcile",
        description="Match the provider's bill with the ledger per day, provider and model, "
        "explain the gaps, and settle the bill over the tags to the cent.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_ledger_source(parser)
    parser.add_argument("--since", metavar="DAY", help="first day, e.g. 2026-11-01 [yesterday]")
    parser.add_argument("--until", metavar="DAY", help="day after the last [today]")
    parser.add_argument(
        "--api",
        metavar="PROVIDER",
        action="append",
        default=[],
        choices=sorted(DEFAULT_URLS),
        help="read the bill from this provider's admin API (repeatable: openai, anthropic)",
    )
    parser.add_argument(
        "--file",
        metavar="PATH",
        action="append",
        default=[],
        help="read the bill from saved API pages (.json) or a CSV export (repeatable)",
    )
    for provider, url in sorted(DEFAULT_URLS.items()):
        parser.add_argument(f"--{provider}-url", metavar="URL", help=f"admin API root [{url}]")
    parser.add_argument("--save", metavar="DIR", help="also save the pages read from the APIs")
    parser.add_argument(
        "--project-tag",
        metavar="KEY",
        help="the tag holding the OpenAI project id / Anthropic workspace id: match per project",
    )
    parser.add_argument(
        "--tolerance",
        metavar="PERCENT",
        type=_percent,
        default=Decimal("0.5"),
        help="cost difference (percent of billed) below which a price counts as right [0.5]",
    )
    parser.add_argument(
        "--settle-unit",
        metavar="USD",
        type=_unit,
        default=CENT,
        help="settle in whole units of this: 0.01 (cents) down to 0.000001 [0.01]",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="report only: write no gaps and no settlement"
    )
    parser.add_argument(
        "--fail-over",
        metavar="PERCENT",
        type=_percent,
        help="exit 1 when a provider and model's gap over the period exceeds PERCENT",
    )
    parser.add_argument(
        "--alert-over",
        metavar="PERCENT",
        type=_percent,
        help="send a budget.drift alert (log line, budgets.webhook of --config) above PERCENT",
    )
    parser.add_argument(
        "--textfile", metavar="PATH", help="write the gap gauges in Prometheus text format"
    )
    parser.add_argument("--format", choices=FORMATS, default="table", help="[table]")
    return parser


def _percent(text: str) -> Decimal:
    try:
        value = Decimal(text.strip().rstrip("%"))
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not a percentage") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a percentage >= 0")
    return value


def _unit(text: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        value = None
    if value not in UNITS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not one of {', '.join(format(u, 'f') for u in UNITS)}"
        )
    return value


def _day(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{name} expects a day such as 2026-11-01, got {text!r}") from None


@dataclass
class _Setup:
    ledger: LedgerConfig
    pricing: PricingConfig
    webhook: WebhookConfig | None


def _setup(options: argparse.Namespace) -> _Setup:
    """The ledger (an SQLite file or a PostgreSQL database), the prices and the alert webhook,
    from ``--config FILE`` or ``--ledger PATH|URL``."""
    if not options.config:
        return _Setup(config_for(options.ledger or DEFAULT_LEDGER), PricingConfig(), None)
    from spanledger.processor.config import ConfigError, load_config

    try:
        config = load_config(options.config)
    except ConfigError as exc:
        raise ValueError(str(exc)) from exc
    if not config.ledger.enabled:
        raise ValueError(f"{options.config} turns the ledger off (ledger.path is empty)")
    return _Setup(config.ledger, config.pricing, config.budgets.webhook)


def run_reconcile(
    argv: Sequence[str],
    out: TextIO | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> int:
    """Run ``spanledger reconcile``; returns the exit status (0, 1 over --fail-over, 2 bad
    input). ``environ`` holds the admin keys (the process environment by default)."""
    out = out or sys.stdout
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = _parser()
    try:
        options = parser.parse_args(list(argv))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    now = now or datetime.now(UTC)
    try:
        period = _period(options, now)
        if not options.api and not options.file:
            raise ValueError("say where the bill comes from: --api PROVIDER and/or --file PATH")
        setup = _setup(options)
        book = PriceBook(setup.pricing)
        bill = Bill(period)
        read_files(bill, options.file)
        if options.api:
            urls = {p: getattr(options, f"{p}_url") for p in DEFAULT_URLS}
            fetch_bill(
                bill,
                list(dict.fromkeys(options.api)),
                by_project=options.project_tag is not None,
                urls={p: u for p, u in urls.items() if u},
                environ=environ,
                save=Path(options.save) if options.save else None,
            )
        with open_ledger(setup.ledger) as ledger:
            location = ledger.location
            providers = sorted(bill.providers)
            buckets = ledger.tag_buckets(
                to_unix_nano(period.start), to_unix_nano(period.end), providers
            )
            matches = match(
                bill,
                buckets,
                book,
                project_tag=options.project_tag,
                tolerance_pct=options.tolerance,
            )
            cost_providers = {line.provider for line in bill.lines if line.kind == COST}
            settlement = settle(matches, cost_providers, options.settle_unit)
            totals = model_totals(matches)
            if not options.dry_run:
                _write(ledger, bill, matches, settlement, now)
    except (ValueError, BillError, LedgerError, OSError) as exc:
        print(f"spanledger reconcile: {exc}", file=sys.stderr)
        return EXIT_USAGE
    by_project = options.project_tag is not None
    rows = [m.row(by_project) for m in matches]
    columns = list(rows[0]) if rows else _columns(by_project)
    if options.format == "table":
        columns = [c for c in _TABLE_COLUMNS if c in columns]
    footer = _footer(
        location,
        bill,
        matches=matches,
        totals=totals,
        settlement=settlement,
        options=options,
    )
    out.write(
        render(
            rows,
            columns,
            options.format,
            footer,
            headings=_HEADINGS,
            money=_MONEY,
            percent=("gap_pct",),
        )
    )
    if options.textfile:
        write_textfile(Path(options.textfile), _latest(totals, period))
    if options.alert_over is not None:
        send_drift_alerts(totals, period, options.alert_over, now, setup.webhook)
    if options.fail_over is not None and over(totals, options.fail_over):
        return EXIT_OVER
    return EXIT_OK


def _period(options: argparse.Namespace, now: datetime) -> Period:
    today = now.astimezone(UTC).date()
    until = _day(options.until, "--until") if options.until else None
    since = _day(options.since, "--since") if options.since else None
    if until is None:
        until = today if since is None or since < today else since + timedelta(days=1)
    if since is None:
        since = until - timedelta(days=1)
    return Period(since, until)


def _columns(by_project: bool) -> list[str]:
    names = ["day", "provider", "model", *(["project"] if by_project else [])]
    return [*names, *_HEADINGS, "cause", "explanation"]


def _latest(totals: Sequence[ModelTotal], period: Period) -> list[LatestGap]:
    return [
        LatestGap(
            t.provider,
            t.model,
            t.billed_usd,
            t.attributed_usd,
            period.since.isoformat(),
            period.until.isoformat(),
        )
        for t in totals
    ]


def _write(
    ledger: LedgerStore, bill: Bill, matches: Sequence[Match], settlement: Settlement, now: datetime
) -> None:
    run = RunRecord(
        run_id=uuid.uuid4().hex,
        at_unix_nano=to_unix_nano(now),
        since_day=bill.period.since.isoformat(),
        until_day=bill.period.until.isoformat(),
        providers=tuple(sorted(bill.providers)),
        sources="; ".join(bill.sources),
    )
    gaps = [
        GapRecord(
            day=m.day.isoformat(),
            provider=m.provider,
            model=m.model,
            project=m.project,
            billed_usd=m.reference_usd,
            attributed_usd=m.attributed.cost,
            cause=m.cause,
        )
        for m in matches
    ]
    settled_providers = sorted(settlement.invoices)
    ledger.write_reconciliation(run, gaps, settlement.records, settled_providers)


def _money(value: Decimal | None) -> str:
    return "-" if value is None else f"${value.quantize(Decimal('0.000001')):,f}"


def _footer(
    location: str,
    bill: Bill,
    *,
    matches: Sequence[Match],
    totals: Sequence[ModelTotal],
    settlement: Settlement,
    options: argparse.Namespace,
) -> list[str]:
    lines = [f"ledger {location}, {bill.period}", f"bill: {'; '.join(bill.sources)}"]
    for provider in sorted(bill.providers):
        mine = [t for t in totals if t.provider == provider]
        billed = sum((t.billed_usd for t in mine), Decimal(0))
        attributed = sum((t.attributed_usd for t in mine), Decimal(0))
        invoice = settlement.invoices.get(provider)
        lines.append(
            f"{provider}: billed {_money(billed)}"
            + (f" (invoice ${invoice:,f})" if invoice is not None else " (usage only)")
            + f", attributed {_money(attributed)}, gap {_money(billed - attributed)}"
        )
    explained = [m for m in matches if m.causes != [MATCH]]
    if explained:
        lines.append("gaps:")
        lines += [
            f"  {m.day} {m.provider} {m.model}: {m.cause}: {m.explanation}" for m in explained
        ]
    if options.dry_run:
        lines.append("nothing written (--dry-run)")
    elif settlement.invoices:
        settled = ", ".join(sorted(settlement.invoices))
        lines.append(
            f"settled {len(settlement.records):,} amounts of {settled} into the ledger: "
            "spanledger report --settled"
        )
    for provider in settlement.unsettled:
        lines.append(f"{provider}: the bill has no costs, only usage, so it is not settled")
    if options.fail_over is not None:
        failing = over(totals, options.fail_over)
        lines += [
            f"over --fail-over {options.fail_over}%: {t.provider} {t.model} ({t.gap_pct}%)"
            for t in failing
        ]
    return lines
