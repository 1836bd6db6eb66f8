"""The provider's bill as ``spanledger reconcile`` reads it: usage and cost lines per UTC day,
provider, model and project, whatever they came from (admin API, saved file, CSV export)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from spanledger.semconv import UNTAGGED

USAGE = "usage"
COST = "cost"


class BillError(Exception):
    """The bill cannot be read: the message names the file and line (or the request) and why."""


@dataclass(frozen=True, slots=True)
class Period:
    """Whole UTC days ``[since, until)``."""

    since: date
    until: date

    def __post_init__(self) -> None:
        if self.since >= self.until:
            raise ValueError(f"the period must end after it starts ({self.since} .. {self.until})")

    @property
    def days(self) -> list[date]:
        return [self.since + timedelta(days=n) for n in range((self.until - self.since).days)]

    def contains(self, day: date) -> bool:
        return self.since <= day < self.until

    @property
    def start(self) -> datetime:
        return datetime(self.since.year, self.since.month, self.since.day, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return datetime(self.until.year, self.until.month, self.until.day, tzinfo=UTC)

    def __str__(self) -> str:
        return f"{self.since} .. {self.until} (UTC, end exclusive)"


@dataclass(slots=True)
class Tokens:
    """Billed token counts. ``input`` counts ALL input tokens, cached and cache-written
    included, as the ledger does; ``None`` marks a figure the source does not report."""

    input: int = 0
    output: int = 0
    cache_read: int | None = 0
    cache_write: int | None = 0
    """Cache writes at the 5-minute (or unknown) lifetime."""
    cache_write_1h: int | None = 0

    def add(self, other: Tokens) -> None:
        self.input += other.input
        self.output += other.output
        self.cache_read = _add(self.cache_read, other.cache_read)
        self.cache_write = _add(self.cache_write, other.cache_write)
        self.cache_write_1h = _add(self.cache_write_1h, other.cache_write_1h)

    @property
    def cache_writes(self) -> int | None:
        if self.cache_write is None or self.cache_write_1h is None:
            return None
        return self.cache_write + self.cache_write_1h


def _add(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else a + b


@dataclass(slots=True)
class BillLine:
    """One figure of the bill: tokens and/or cost of a model on a day.

    ``kind`` is ``usage`` or ``cost``; ``source`` names the usage or cost record it came from
    (``openai/completions``, ``anthropic/cost_report`` …) so that the same day is never read
    twice from two sources. ``where`` says where it was read, for error messages.
    """

    kind: str
    source: str
    day: date
    provider: str
    model: str
    project: str | None
    where: str
    operation: str = "chat"
    tokens: Tokens | None = None
    requests: int | None = None
    cost: Decimal | None = None


@dataclass(slots=True)
class Bill:
    """Every line read, and the providers the bill speaks for (a provider read with no line
    billed nothing)."""

    period: Period
    lines: list[BillLine] = field(default_factory=list)
    providers: set[str] = field(default_factory=set)
    sources: list[str] = field(default_factory=list)
    """Human-readable names of what was read (files, API endpoints)."""
    _seen: dict[tuple[str, str, date], str] = field(default_factory=dict)

    def add(self, lines: Iterable[BillLine], provider: str, origin: str) -> None:
        """Add ``lines`` read from ``origin``; raise when a day of the same record was already
        read from another origin, or lies outside the period."""
        self.providers.add(provider)
        self.sources.append(origin)
        batch = list(lines)
        for line in batch:
            if not self.period.contains(line.day):
                raise BillError(
                    f"{line.where}: {line.day} is outside the period {self.period}; "
                    "reconcile a period that covers it, or save the bill for this period only"
                )
            key = (line.provider, line.source, line.day)
            first = self._seen.setdefault(key, origin)
            if first != origin:
                raise BillError(
                    f"{line.where}: {line.provider} {line.source} of {line.day} was already read "
                    f"from {first}; give each day of a record once"
                )
        self.lines.extend(batch)


_DATE_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8})$")
_SEPARATORS = re.compile(r"[\s._]+")


def model_key(name: str) -> str:
    """The name both sides of a reconciliation are matched on: lower case, ``-`` for spaces,
    dots and underscores, without a trailing snapshot date. ``gpt-4o-mini-2024-07-18`` and
    ``gpt-4o-mini`` match, as do ``Claude Haiku 4.5`` (a console export) and
    ``claude-haiku-4-5-20251001``."""
    text = _SEPARATORS.sub("-", name.strip().lower())
    return _DATE_SUFFIX.sub("", text)


def project_key(project: str | None) -> str:
    return project if project else UNTAGGED


def day_of_unix(seconds: int | float | Decimal, where: str) -> date:
    """The UTC day a bucket starting at ``seconds`` covers; it must start at midnight."""
    try:
        moment = datetime.fromtimestamp(int(seconds), UTC)
    except (OverflowError, OSError, ValueError, TypeError) as exc:
        raise BillError(f"{where}: {seconds!r} is not a Unix time: {exc}") from None
    if (moment.hour, moment.minute, moment.second) != (0, 0, 0) or seconds != int(seconds):
        raise BillError(
            f"{where}: the bucket starts at {moment.isoformat()}, not at midnight UTC; "
            "ask for daily buckets (bucket_width=1d)"
        )
    return moment.date()


def day_of_text(text: object, where: str) -> date:
    """The UTC day of an RFC 3339 bucket start (``2026-11-01T00:00:00Z``) or a plain date."""
    if not isinstance(text, str):
        raise BillError(f"{where}: expected a date or an RFC 3339 time, got {text!r}")
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BillError(f"{where}: {text!r} is not a date or an RFC 3339 time") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    if (moment.hour, moment.minute, moment.second, moment.microsecond) != (0, 0, 0, 0):
        raise BillError(
            f"{where}: the bucket starts at {text}, not at midnight UTC; ask for daily buckets"
        )
    return moment.date()
