"""The ``budgets`` section of the processor configuration.

```yaml
budgets:
  limits:                                   # spend limits, in USD (billable USD under a markup)
    - {name: acme, match: {customer: acme}, amount_usd: 500, period: monthly, lifetime_usd: 5000}
    - {name: every-customer, per: customer, amount_usd: 20, period: daily, thresholds: [80, 100]}
    - {name: launch, match: {env: staging}, amount_usd: 50, start: 2026-11-01, end: 2026-12-01}
  rate_limits:                              # requests per minute, counted by /v1/budget/check
    - {name: acme-rpm, match: {customer: acme}, requests_per_minute: 60}
  thresholds: [50, 80, 100]                 # default alert thresholds, percent of the amount
  status: {endpoint: 127.0.0.1:4319, bearer_token: ...}   # null: no status endpoint
  webhook: {url: https://hooks.example/budgets, secret: ..., timeout: 5s, max_attempts: 6}
  shared: {redis: "redis://127.0.0.1:6379/0", key_prefix: spanledger}   # for several replicas
```
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from spanledger.processor.config_schema import Duration
from spanledger.processor.redaction import redact_url
from spanledger.semconv import UNTAGGED

PERIODS = ("daily", "weekly", "monthly", "yearly")
DEFAULT_THRESHOLDS = (50.0, 80.0, 100.0)
MAX_AMOUNT_USD = 1e12
_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


def parse_moment(value: object) -> datetime:
    """A UTC datetime from a YAML date, datetime or ISO 8601 text (naive means UTC)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(
                f"expected a date (2026-11-01) or a date-time (2026-11-01T09:00Z), got {value!r}"
            ) from None
    else:
        raise ValueError(f"expected a date or a date-time, got {value!r}")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _usd(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _amount_problems(name: str, value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, bool) or not isinstance(value, int | float):
        return [f"{name} must be a number of USD, got {value!r}"]
    if not math.isfinite(value) or not 0 < value <= MAX_AMOUNT_USD:
        return [f"{name} must be more than 0 and at most {MAX_AMOUNT_USD:g}, got {value!r}"]
    return []


def _selector_problems(match: Mapping[str, str], per: str | None) -> list[str]:
    found = []
    if per is not None and per in match:
        found.append(f"per: {per!r} is also in match; a budget splits by a tag or fixes it")
    for key, value in match.items():
        if value == UNTAGGED:
            found.append(f"match.{key}: {UNTAGGED} cannot be matched; untagged calls have no owner")
    return found


@dataclass
class Selector:
    """Which calls a limit covers: every ``match`` tag equal; with ``per``, one limit per value.

    ``per: customer`` gives each customer its own limit (a default for every customer); calls
    without that tag are not covered. Returns the scope key a call falls under, or None.
    """

    match: dict[str, str] = field(default_factory=dict)
    per: str | None = None

    def scope_of(self, tags: Mapping[str, str]) -> str | None:
        """``""`` for a plain match, the ``per`` tag's value, or None when not covered."""
        for key, value in self.match.items():
            if tags.get(key) != value:
                return None
        if self.per is None:
            return ""
        value = tags.get(self.per)
        return None if value is None or value == UNTAGGED else value

    def scope_tags(self, scope: str) -> dict[str, str]:
        """The tags that name one scope: the match plus the ``per`` tag's value."""
        return {**self.match, **({self.per: scope} if self.per is not None else {})}

    def tag_keys(self) -> list[str]:
        return [*self.match, *([self.per] if self.per is not None else [])]


@dataclass
class SpendLimit:
    """A spend budget over a selector: per period, for a custom window, and/or in total.

    ``period`` is one of daily, weekly (from Monday), monthly, yearly, all in UTC; ``start``
    and ``end`` instead give a custom window (either may be open). ``lifetime_usd`` caps all
    spend ever recorded. ``enforce: false`` makes it alert-only.
    """

    name: str = ""
    match: dict[str, str] = field(default_factory=dict)
    per: str | None = None
    amount_usd: float | None = None
    period: str | None = None
    start: Any = None
    end: Any = None
    lifetime_usd: float | None = None
    thresholds: list[float] | None = None
    enforce: bool = True

    @property
    def selector(self) -> Selector:
        return Selector(self.match, self.per)

    @property
    def amount(self) -> Decimal | None:
        return _usd(self.amount_usd)

    @property
    def lifetime(self) -> Decimal | None:
        return _usd(self.lifetime_usd)

    @property
    def custom(self) -> bool:
        return self.start is not None or self.end is not None

    @property
    def effective_period(self) -> str | None:
        """The calendar period of ``amount_usd`` (monthly when unsaid), None for a custom window."""
        if self.amount_usd is None or self.custom:
            return None
        return self.period or "monthly"

    def window_bounds(self) -> tuple[datetime | None, datetime | None]:
        """The custom window, ``(start, end)``, either open (None)."""
        start = parse_moment(self.start) if self.start is not None else None
        end = parse_moment(self.end) if self.end is not None else None
        return start, end

    def problems(self) -> list[str]:
        found = []
        if not _NAME.match(self.name or ""):
            found.append(f"name is required: letters, digits, _ . - (got {self.name!r})")
        found += _amount_problems("amount_usd", self.amount_usd)
        found += _amount_problems("lifetime_usd", self.lifetime_usd)
        found += _selector_problems(self.match, self.per)
        if self.amount_usd is None and self.lifetime_usd is None:
            found.append("give amount_usd (per period or window) and/or lifetime_usd")
        if self.period is not None and self.period not in PERIODS:
            found.append(f"period must be one of {', '.join(PERIODS)}, got {self.period!r}")
        if self.custom:
            if self.period is not None:
                found.append("give either a period or a custom start/end, not both")
            if self.amount_usd is None:
                found.append("a custom start/end needs amount_usd")
            try:
                start, end = self.window_bounds()
            except ValueError as exc:
                found.append(f"start/end: {exc}")
            else:
                if start is not None and end is not None and start >= end:
                    found.append("start must be before end")
        elif self.period is not None and self.amount_usd is None:
            found.append("a period needs amount_usd")
        found += threshold_problems(self.thresholds)
        return found


@dataclass
class RateLimit:
    """At most ``requests_per_minute`` LLM requests per UTC minute for the selector's calls."""

    name: str = ""
    match: dict[str, str] = field(default_factory=dict)
    per: str | None = None
    requests_per_minute: int = 0

    @property
    def selector(self) -> Selector:
        return Selector(self.match, self.per)

    def problems(self) -> list[str]:
        found = []
        if not _NAME.match(self.name or ""):
            found.append(f"name is required: letters, digits, _ . - (got {self.name!r})")
        if self.requests_per_minute < 1:
            found.append("requests_per_minute must be at least 1")
        return found + _selector_problems(self.match, self.per)


@dataclass
class StatusConfig:
    """Where budget status and the pre-call check are served (``GET /v1/budget/status``,
    ``POST /v1/budget/check``); with ``bearer_token``, requests must carry it."""

    endpoint: str = "127.0.0.1:4319"
    bearer_token: str | None = field(default=None, repr=False)
    cache_seconds: Duration = 2.0
    """How long a client may reuse an answer that no rate limit depends on."""
    insecure: bool = False
    """Allow listening beyond loopback without ``bearer_token``."""

    def problems(self) -> list[str]:
        found = []
        _host, sep, port = self.endpoint.rpartition(":")
        if not sep or not port.isdigit() or int(port) > 65535:
            found.append(
                f"endpoint: expected host:port such as 127.0.0.1:4319, not {self.endpoint!r}"
            )
        if self.bearer_token is not None and not self.bearer_token.strip():
            found.append("bearer_token is empty")
        if self.cache_seconds < 0:
            found.append("cache_seconds cannot be negative")
        return found


@dataclass
class WebhookConfig:
    """Alerts are POSTed as JSON to ``url``, signed with ``x-spanledger-signature:
    sha256=<hex HMAC-SHA256 of the body with secret>``, retried with backoff."""

    url: str = ""
    secret: str | None = field(default=None, repr=False)
    timeout: Duration = 5.0
    max_attempts: int = 6
    headers: dict[str, str] = field(default_factory=dict, repr=False)

    def problems(self) -> list[str]:
        found = []
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            found.append(f"url: expected an http(s) URL, got {self.url!r}")
        if self.secret is not None and not self.secret:
            found.append("secret is empty")
        if self.timeout <= 0:
            found.append("timeout must be positive")
        if self.max_attempts < 1:
            found.append("max_attempts must be at least 1")
        return found


@dataclass
class SharedConfig:
    """Keep spend totals and request counts in Redis, shared by every processor replica."""

    redis: str = field(default="", repr=False)
    """``redis://[[user]:password@]host:port/db``, or ``rediss://`` for TLS."""
    key_prefix: str = "spanledger"
    timeout: Duration = 2.0
    ca_file: str | None = None
    """With ``rediss://``: trust this CA instead of the system's certificates."""

    def problems(self) -> list[str]:
        found = []
        parts = urlsplit(self.redis)
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            found.append(
                f"redis: expected redis://host:port/db or rediss://host:port/db, got "
                f"{redact_url(self.redis)!r}"
            )
        if self.ca_file is not None and not os.access(self.ca_file, os.R_OK):
            found.append(f"ca_file {self.ca_file!r} cannot be read")
        if not _NAME.match(self.key_prefix):
            found.append(f"key_prefix: letters, digits, _ . - only, got {self.key_prefix!r}")
        if self.timeout <= 0:
            found.append("timeout must be positive")
        return found


def threshold_problems(thresholds: Sequence[float] | None) -> list[str]:
    if thresholds is None:
        return []
    found = []
    if not thresholds:
        found.append("thresholds: give at least one percentage, such as [50, 80, 100]")
    for value in thresholds:
        if not math.isfinite(value) or not 0 < value <= 10_000:
            found.append(f"thresholds: {value!r} is not a percentage above 0 (at most 10000)")
    if len(set(thresholds)) != len(thresholds):
        found.append("thresholds: a percentage is listed twice")
    return found


@dataclass
class BudgetsConfig:
    """Spend limits, rate limits, their alerts and the status endpoint. Empty: budgets off."""

    limits: list[SpendLimit] = field(default_factory=list)
    rate_limits: list[RateLimit] = field(default_factory=list)
    thresholds: list[float] = field(default_factory=lambda: list(DEFAULT_THRESHOLDS))
    status: StatusConfig | None = None
    webhook: WebhookConfig | None = None
    shared: SharedConfig | None = None

    @property
    def active(self) -> bool:
        return bool(self.limits or self.rate_limits)

    def thresholds_of(self, limit: SpendLimit) -> tuple[Decimal, ...]:
        """The limit's alert thresholds in percent, ascending."""
        chosen = limit.thresholds if limit.thresholds is not None else self.thresholds
        return tuple(sorted(Decimal(str(t)) for t in chosen))

    def problems(self) -> list[str]:
        found = threshold_problems(self.thresholds)
        for kind, items in (("limits", self.limits), ("rate_limits", self.rate_limits)):
            names = [item.name for item in items]
            for name in sorted({n for n in names if names.count(n) > 1}):
                found.append(f"{kind}: the name {name!r} is used twice")
        if self.rate_limits and self.status is None:
            found.append(
                "rate_limits are counted by the status endpoint's check: set status.endpoint"
            )
        return found

    def tag_problems(self, tag_keys: Sequence[str]) -> list[str]:
        """Selectors naming a tag the processor does not keep (``tags:``) can never match."""
        found = []
        for kind, items in (("limits", self.limits), ("rate_limits", self.rate_limits)):
            for index, item in enumerate(items):
                for key in item.selector.tag_keys():
                    if key not in tag_keys:
                        found.append(
                            f"budgets.{kind}[{index}]: tag {key!r} is not in tags "
                            f"({', '.join(tag_keys)}), so no call would ever carry it"
                        )
        return found
