"""``BudgetBook``: spend per limit, scope and window, threshold crossings, and the pre-call
decision.

Spend is counted in the window that contains each call's start time, so a call that started
before midnight counts for the day it started, as in ``spanledger report``. The clock (an
injectable ``() -> unix seconds``) says which window is current: calls of an earlier window
no longer count, and a new window starts at zero.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from spanledger.processor.budgets.alerts import Alert
from spanledger.processor.budgets.config import BudgetsConfig, SpendLimit
from spanledger.processor.budgets.periods import (
    CUSTOM,
    LIFETIME,
    Window,
    calendar_window,
    from_unix_nano,
    iso,
    to_unix_nano,
)
from spanledger.processor.ledger.store import TAG_PREFIX
from spanledger.processor.model import CountedCall
from spanledger.semconv import STATUS_PRICED, UNTAGGED

log = logging.getLogger("spanledger.budgets")

MAX_SCOPES = 10_000
"""Scopes tracked per ``per`` limit; calls of further scopes are logged and not tracked."""
_HUNDRED = Decimal(100)


@dataclass(slots=True)
class Tally:
    """Spend of one limit, scope and window kind, in the current window."""

    limit: SpendLimit
    scope: str
    window: Window
    amount: Decimal
    spend: Decimal = Decimal(0)
    fired: set[Decimal] = field(default_factory=set)

    @property
    def utilization(self) -> Decimal:
        return self.spend / self.amount

    def status(self, now: datetime) -> dict[str, object]:
        """The tally as the status endpoint and the report show it."""
        return {
            "budget": self.limit.name,
            "scope": self.limit.selector.scope_tags(self.scope),
            "window": self.window.kind,
            "start": iso(self.window.start),
            "end": iso(self.window.end),
            "active": self.window.contains(now),
            "spend_usd": format(self.spend, "f"),
            "amount_usd": format(self.amount, "f"),
            "utilization": float(self.utilization),
            "exceeded": self.spend >= self.amount,
            "enforced": self.limit.enforce,
            "thresholds_crossed": [float(t) for t in sorted(self.fired)],
        }


@dataclass(slots=True)
class Decision:
    """Whether a call with some tags may go ahead, and for how long the answer holds."""

    allow: bool
    reasons: list[dict[str, object]] = field(default_factory=list)
    retry_after: float | None = None
    """Seconds until the first blocking window ends (None: not before a config change)."""


Key = tuple[str, str, str]
"""(limit name, scope, window kind)"""


class BudgetBook:
    """Spend against every limit, updated from counted calls; thread-safe."""

    def __init__(
        self,
        config: BudgetsConfig,
        *,
        clock: Callable[[], float] = time.time,
        on_alert: Callable[[Alert], None] = lambda alert: None,
    ) -> None:
        self.config = config
        self._clock = clock
        self._on_alert = on_alert
        self._tallies: dict[Key, Tally] = {}
        self._scopes: dict[str, set[str]] = {limit.name: set() for limit in config.limits}
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def windows(self, limit: SpendLimit, now: datetime) -> list[tuple[Window, Decimal]]:
        """The windows of ``limit`` that are current at ``now``, each with its amount."""
        found = []
        period = limit.effective_period
        if period is not None and limit.amount is not None:
            found.append((calendar_window(period, now), limit.amount))
        if limit.custom and limit.amount is not None:
            start, end = limit.window_bounds()
            found.append((Window(CUSTOM, start, end), limit.amount))
        if limit.lifetime is not None:
            found.append((Window(LIFETIME, None, None), limit.lifetime))
        return found

    # Counting.

    def record(self, calls: Sequence[CountedCall]) -> None:
        """Add each priced call's cost (billable when marked up) to every limit it falls under;
        fire each threshold crossed, once per window."""
        now = self.now()
        alerts: list[Alert] = []
        with self._lock:
            for call in calls:
                if call.cost.status != STATUS_PRICED:
                    continue
                cost = call.cost.billable if call.cost.billable is not None else call.cost.total
                started = from_unix_nano(call.start_time_unix_nano)
                for limit in self.config.limits:
                    scope = limit.selector.scope_of(call.tags)
                    if scope is None:
                        continue
                    for window, amount in self.windows(limit, now):
                        if not _counts_in(window, started):
                            continue
                        tally = self._tally(limit, scope, window, amount)
                        if tally is not None:
                            alerts += self._add(tally, cost, now)
        for alert in alerts:
            self._on_alert(alert)

    def _tally(
        self, limit: SpendLimit, scope: str, window: Window, amount: Decimal
    ) -> Tally | None:
        key = (limit.name, scope, window.kind)
        tally = self._tallies.get(key)
        if tally is None:
            scopes = self._scopes[limit.name]
            if scope not in scopes and len(scopes) >= MAX_SCOPES:
                if limit.name not in self._warned:
                    self._warned.add(limit.name)
                    log.warning(
                        "budget %s: %d scopes tracked; spend of further %s values is not tracked",
                        limit.name,
                        MAX_SCOPES,
                        limit.per,
                    )
                return None
            scopes.add(scope)
            tally = self._tallies[key] = Tally(limit, scope, window, amount)
        elif tally.window != window or tally.amount != amount:
            if tally.window != window:
                tally.spend = Decimal(0)
                tally.fired.clear()
            tally.window, tally.amount = window, amount
        return tally

    def _add(self, tally: Tally, cost: Decimal, now: datetime) -> list[Alert]:
        before = tally.spend
        tally.spend += cost
        alerts = []
        for threshold in self.config.thresholds_of(tally.limit):
            line = tally.amount * threshold / _HUNDRED
            if threshold in tally.fired or tally.spend < line:
                continue
            tally.fired.add(threshold)
            if before < line:
                alerts.append(Alert.crossed(tally, threshold, now))
        return alerts

    def rebuild(self, spend_of: Callable[[SpendLimit, Window], Mapping[str, Decimal]]) -> int:
        """Start from the spend already recorded (e.g. in the ledger) in each current window.

        ``spend_of(limit, window)`` returns spend per scope. Thresholds that spend has already
        reached count as fired, so a restart does not repeat alerts. Returns the scopes loaded.
        """
        now = self.now()
        loaded = 0
        with self._lock:
            for limit in self.config.limits:
                for window, amount in self.windows(limit, now):
                    for scope, spend in spend_of(limit, window).items():
                        if limit.per is not None and scope == UNTAGGED:
                            continue
                        tally = self._tally(limit, scope, window, amount)
                        if tally is None:
                            continue
                        tally.spend = spend
                        tally.fired = {
                            t
                            for t in self.config.thresholds_of(limit)
                            if spend >= amount * t / _HUNDRED
                        }
                        loaded += 1
        return loaded

    # Reading.

    def check(self, tags: Mapping[str, str]) -> Decision:
        """Deny when an enforced limit covering ``tags`` has spent its amount in a window now."""
        now = self.now()
        decision = Decision(allow=True)
        with self._lock:
            for limit in self.config.limits:
                if not limit.enforce:
                    continue
                scope = limit.selector.scope_of(tags)
                if scope is None:
                    continue
                for window, amount in self.windows(limit, now):
                    if not window.contains(now):
                        continue
                    tally = self._tallies.get((limit.name, scope, window.kind))
                    spend = tally.spend if tally is not None and tally.window == window else 0
                    if spend < amount:
                        continue
                    decision.allow = False
                    decision.reasons.append(
                        {
                            "budget": limit.name,
                            "scope": limit.selector.scope_tags(scope),
                            "window": window.kind,
                            "spend_usd": format(spend, "f"),
                            "amount_usd": format(amount, "f"),
                            "end": iso(window.end),
                        }
                    )
                    left = window.seconds_left(now)
                    if left is not None and (
                        decision.retry_after is None or left < decision.retry_after
                    ):
                        decision.retry_after = left
        return decision

    def status(self) -> list[dict[str, object]]:
        """Every tracked tally in its current window, plus zero rows for unsplit limits."""
        now = self.now()
        rows = []
        with self._lock:
            for limit in self.config.limits:
                scopes = sorted(self._scopes[limit.name]) or ([""] if limit.per is None else [])
                for scope in scopes:
                    for window, amount in self.windows(limit, now):
                        tally = self._tallies.get((limit.name, scope, window.kind))
                        if tally is None or tally.window != window:
                            tally = Tally(limit, scope, window, amount)
                        rows.append(tally.status(now))
        return rows

    def utilization(self) -> list[tuple[float, dict[str, str]]]:
        """``(spend / amount, labels)`` for every tally in its current window, for the gauge."""
        now = self.now()
        points = []
        with self._lock:
            for limit in self.config.limits:
                current = {window.kind: window for window, _ in self.windows(limit, now)}
                for scope in self._scopes[limit.name]:
                    for kind, window in current.items():
                        tally = self._tallies.get((limit.name, scope, kind))
                        value = tally.utilization if tally and tally.window == window else 0
                        labels = {
                            "budget": limit.name,
                            "budget.window": kind,
                            **limit.selector.scope_tags(scope),
                        }
                        points.append((float(value), labels))
        return points


def _counts_in(window: Window, started: datetime) -> bool:
    """Whether a call that started at ``started`` counts in the current ``window``.

    Calendar windows take calls of the current period and, from hosts whose clock runs ahead,
    of later ones; custom windows take calls inside them; lifetime takes every call.
    """
    if window.kind == LIFETIME:
        return True
    if window.kind == CUSTOM:
        return window.contains(started)
    return window.start is None or started >= window.start


def ledger_spend(ledger: object) -> Callable[[SpendLimit, Window], dict[str, Decimal]]:
    """A ``spend_of`` for :meth:`BudgetBook.rebuild` reading a ``Ledger`` (billable cost)."""

    def spend_of(limit: SpendLimit, window: Window) -> dict[str, Decimal]:
        groups = ledger.aggregate(  # type: ignore[attr-defined]
            [f"{TAG_PREFIX}{limit.per}"] if limit.per is not None else [],
            since_unix_nano=to_unix_nano(window.start) if window.start else None,
            until_unix_nano=to_unix_nano(window.end) if window.end else None,
            where={f"{TAG_PREFIX}{key}": value for key, value in limit.match.items()},
            billable=True,
        )
        return {(g.key[0] if g.key else ""): g.cost_usd for g in groups if g.calls}

    return spend_of
