"""``spanledger report``: cost per tag, provider, model or calendar period, from the ledger."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TextIO

from spanledger.processor.report.periods import describe, parse_instant, to_unix_nano
from spanledger.processor.report.render import FORMATS, render
from spanledger.processor.report.rows import comparison_rows, merge, period_rows
from spanledger.processor.sinks.ledger import (
    GroupTotals,
    LedgerConfig,
    LedgerError,
    LedgerStore,
    config_for,
    open_ledger,
)
from spanledger.processor.sinks.ledger.base import BUILTIN_NAMES, TAG_PREFIX, TIME_NAMES, dimension

DEFAULT_LEDGER = "spanledger.db"

_EPILOG = f"""\
dimensions for --by and --where: any tag key (customer, feature, ...) or one of
{", ".join(BUILTIN_NAMES)}.
Write tag:NAME for a tag that shares a built-in name.
Times are UTC. With --since, every row also shows the change against the period of the
same length just before (e.g. --since 30d compares with the 30 days before that).

examples:
  spanledger report --config processor.yaml --by feature --since 30d
  spanledger report --ledger spanledger.db --by customer --by model --format json
  PGPASSWORD=... spanledger report --ledger postgresql://reader@db/spanledger --by team
  spanledger report --by month --by team --since 2026-01-01 --until 2026-07-01 --format csv
  spanledger report --by feature --compare version=v1,v2 --since 7d
  spanledger report --config processor.yaml --budgets
  spanledger report --config processor.yaml --settled --by customer --since 2026-11-01
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spanledger report",
        description="Cost per tag value from the processor's ledger; every grouping adds up to "
        "the ledger total.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_ledger_source(parser)
    parser.add_argument(
        "--by", metavar="KEY", action="append", default=[], help="group by KEY (repeatable)"
    )
    parser.add_argument("--since", metavar="WHEN", help="from (2026-11-01, 2026-11-01T09:00Z, 30d)")
    parser.add_argument("--until", metavar="WHEN", help="until, exclusive [now]")
    parser.add_argument(
        "--where",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="keep only calls where KEY is VALUE (repeatable)",
    )
    parser.add_argument(
        "--compare",
        metavar="TAG=A,B",
        help="cost per call of each TAG value against the first, e.g. version=v1,v2",
    )
    parser.add_argument(
        "--top", metavar="N", type=int, help="show the N costliest groups, the rest as (other)"
    )
    parser.add_argument(
        "--billable", action="store_true", help="use the marked-up cost where a markup was set"
    )
    parser.add_argument(
        "--budgets",
        action="store_true",
        help="spend against every budget of --config in its current window",
    )
    parser.add_argument(
        "--settled",
        action="store_true",
        help="the provider-settled cost that `spanledger reconcile` stored, not the estimate",
    )
    parser.add_argument("--format", choices=FORMATS, default="table", help="[table]")
    return parser


def add_ledger_source(parser: argparse.ArgumentParser) -> None:
    """``--config FILE`` or ``--ledger PATH``: where the ledger is."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--config", metavar="FILE", help="processor config naming the ledger")
    source.add_argument(
        "--ledger",
        metavar="PATH|URL",
        help=f"ledger file, or postgresql:// URL (password from PGPASSWORD) [{DEFAULT_LEDGER}]",
    )


def run_report(argv: Sequence[str], out: TextIO | None = None) -> int:
    """Run ``spanledger report`` with ``argv``; returns the exit status (0 ok, 2 bad input)."""
    out = out or sys.stdout
    parser = _parser()
    try:
        options = parser.parse_args(list(argv))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    try:
        request = _Request.from_options(options)
        with open_ledger(ledger_config(options.config, options.ledger)) as ledger:
            if options.budgets:
                text = _budgets(options, ledger)
            elif options.settled:
                text = _settled(request, ledger)
            else:
                _warn_unseen_tags(request.tag_keys(), ledger)
                text = request.run(ledger)
    except (ValueError, LedgerError) as exc:
        print(f"spanledger report: {exc}", file=sys.stderr)
        return 2
    out.write(text)
    return 0


def ledger_config(config_file: str | None, location: str | None) -> LedgerConfig:
    """The ledger named by ``--config FILE`` (its ``ledger`` section) or ``--ledger PATH|URL``
    (default ``spanledger.db``); ``ValueError`` for an unusable config."""
    if config_file:
        from spanledger.processor.config import ConfigError, load_config

        try:
            config = load_config(config_file)
        except ConfigError as exc:
            raise ValueError(str(exc)) from exc
        if not config.ledger.enabled:
            raise ValueError(f"{config_file} turns the ledger off (ledger.path is empty)")
        return config.ledger
    return config_for(location or DEFAULT_LEDGER)


def _warn_unseen_tags(keys: Sequence[str], ledger: LedgerStore) -> None:
    """A tag key no call carries groups everything under ``(none)``: most likely a typo."""
    seen = ledger.tag_keys()
    for key in keys:
        if key not in seen:
            print(
                f"spanledger report: warning: no call in {ledger.location} has the tag "
                f"{key!r}; tags it has seen: {', '.join(seen) or 'none'}",
                file=sys.stderr,
            )


def _budgets(options: argparse.Namespace, ledger: LedgerStore) -> str:
    from spanledger.processor.config import load_config
    from spanledger.processor.report.budgets import budget_report

    if not options.config:
        raise ValueError("--budgets reads the budgets from --config FILE")
    return budget_report(load_config(options.config).budgets, ledger, options.format)


def _settled(request: _Request, ledger: LedgerStore) -> str:
    from spanledger.processor.reconcile.settled_report import settled_report

    if request.compare or request.top is not None or request.billable:
        raise ValueError("--settled cannot be combined with --compare, --top or --billable")
    return settled_report(
        ledger,
        request.by,
        since=request.since,
        until=request.until,
        where=request.where,
        fmt=request.fmt,
    )


@dataclass
class _Request:
    """The parsed, checked report request."""

    by: list[str]
    since: datetime | None
    until: datetime | None
    where: dict[str, str]
    compare: tuple[str, list[str]] | None
    top: int | None
    billable: bool
    fmt: str

    @classmethod
    def from_options(cls, options: argparse.Namespace) -> _Request:
        now = datetime.now(UTC)
        by = list(dict.fromkeys(options.by))
        for name in by:
            dimension(name)
        since = parse_instant(options.since, now) if options.since else None
        until = parse_instant(options.until, now) if options.until else None
        if since and until and since >= until:
            raise ValueError(
                f"--since ({describe(since)}) must be before --until ({describe(until)})"
            )
        where = {}
        for item in options.where:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise ValueError(f"--where expects KEY=VALUE, got {item!r}")
            dimension(key)
            where[key] = value
        compare = None
        if options.compare:
            tag, sep, listed = options.compare.partition("=")
            values = [v for v in (s.strip() for s in listed.split(",")) if v]
            if not sep or len(values) < 2 or len(set(values)) != len(values):
                raise ValueError(
                    f"--compare expects TAG=A,B (two or more values), got {options.compare!r}"
                )
            dimension(tag)
            if tag in by:
                raise ValueError(f"--compare {tag} cannot also be a --by key")
            compare = (tag, values)
        if options.top is not None:
            if options.top < 1:
                raise ValueError("--top must be at least 1")
            if compare or any(name in TIME_NAMES for name in by):
                raise ValueError("--top cannot be combined with --compare or day/week/month")
        return cls(by, since, until, where, compare, options.top, options.billable, options.format)

    def tag_keys(self) -> list[str]:
        """The tag keys named by ``--by``, ``--where`` and ``--compare`` (built-ins left out)."""
        names = [*self.by, *self.where, *([self.compare[0]] if self.compare else [])]
        keys = [n.removeprefix(TAG_PREFIX) for n in names if n not in BUILTIN_NAMES]
        return list(dict.fromkeys(keys))

    def run(self, ledger: LedgerStore) -> str:
        if self.compare:
            return self._comparison(ledger)
        until = self.until or (datetime.now(UTC) if self.since else None)
        current = self._aggregate(ledger, self.by, self.since, until)
        previous = None
        if self.since is not None and until is not None:
            start = self.since - (until - self.since)
            previous = self._aggregate(ledger, self.by, start, self.since)
        rows = period_rows(self.by, current, previous, self.top)
        columns = [*self.by, *(rows[0] if rows else _period_columns(previous is not None))]
        columns = list(dict.fromkeys(columns))
        total = merge((), current)
        footer = self._footer(ledger, total, previous)
        return render(rows, columns, self.fmt, footer)

    def _comparison(self, ledger: LedgerStore) -> str:
        assert self.compare is not None
        tag, values = self.compare
        groups = [
            g
            for g in self._aggregate(ledger, [*self.by, tag], self.since, self.until)
            if g.key[-1] in values
        ]
        rows = comparison_rows(self.by, tag, values, groups)
        columns = [*self.by, tag, *_COMPARISON_COLUMNS]
        total = merge((), groups)
        footer = [f"{tag} {', '.join(values)}: {_money(total.cost_usd)} over {total.calls:,} calls"]
        return render(rows, columns, self.fmt, [self._header(ledger), *footer])

    def _aggregate(
        self, ledger: LedgerStore, by: list[str], since: datetime | None, until: datetime | None
    ) -> list[GroupTotals]:
        return ledger.aggregate(
            by,
            since_unix_nano=to_unix_nano(since) if since else None,
            until_unix_nano=to_unix_nano(until) if until else None,
            where=self.where,
            billable=self.billable,
        )

    def _header(self, ledger: LedgerStore) -> str:
        start = describe(self.since) if self.since else "start"
        end = describe(self.until) if self.until else "now"
        where = "".join(f", {k}={v}" for k, v in self.where.items())
        return f"ledger {ledger.location}, {start} .. {end} UTC{where}"

    def _footer(
        self, ledger: LedgerStore, total: GroupTotals, previous: list[GroupTotals] | None
    ) -> list[str]:
        lines = [
            self._header(ledger),
            f"total {_money(total.cost_usd)} over {total.calls:,} calls "
            f"({total.input_tokens:,} input, {total.output_tokens:,} output tokens)",
        ]
        if previous is not None:
            before = merge((), previous)
            lines.append(f"previous period {_money(before.cost_usd)} over {before.calls:,} calls")
        if total.unpriced_calls:
            lines.append(
                f"{total.unpriced_calls:,} unpriced calls are counted but carry no cost "
                "(see `spanledger price`)"
            )
        return lines


_COMPARISON_COLUMNS = [
    "calls",
    "cost_usd",
    "cost_per_call_usd",
    "cost_per_call_change_pct",
    "avg_input_tokens",
    "input_tokens",
    "output_tokens",
    "unpriced_calls",
]


def _period_columns(with_previous: bool) -> list[str]:
    rows = period_rows([], [merge((), [])], [] if with_previous else None)
    return list(rows[0])


def _money(value: Decimal) -> str:
    return f"${value.quantize(Decimal('0.000001')):,f}"
