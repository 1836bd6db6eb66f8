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

from spanledger.processor.model import CountedCall
from spanledger.processor.sinks.budgets.alerts import Alert
from spanledger.processor.sinks.budgets.config import BudgetsConfig, SpendLimit
from spanledger.processor.sinks.budgets.periods import (
    CUSTOM,
    LIFETIME,
    Window,
    calendar_window,
    from_unix_nano,
    iso,
    to_unix_nano,
)
from spanledger.processor.sinks.budgets.stores import MemoryStore, SpendStore
from spanledger.processor.sinks.ledger import TAG_PREFIX
from spanledger.semconv import STATUS_PRICED, UNTAGGED

log = logging.getLogger("spanledger.budgets")

MAX_SCOPES = 10_000
"""Scopes tracked per ``per`` limit; calls of further scopes are logged and not tracked."""
_HUNDRED = Decimal(100)


@dataclass(slots=True)
class Tally:
    """Spend of one limit and scope in one window."""

    limit: SpendLimit
    scope: str
    window: Window
    amount: Decimal
    spend: Decimal = Decimal(0)

    @property
    def key(self) -> str:
        """The store key: limit, window kind and start, scope."""
        start = iso(self.window.start) or "-"
        return f"spend:{self.limit.name}:{self.window.kind}:{start}:{self.scope}"

    @property
    def expire_at(self) -> float | None:
        return self.window.end.timestamp() if self.window.end is not None else None

    @property
    def utilization(self) -> Decimal:
        return self.spend / self.amount

    def crossed(self, thresholds: Sequence[Decimal]) -> list[Decimal]:
        return [t for t in thresholds if self.spend >= self.amount * t / _HUNDRED]

    def status(self, now: datetime, thresholds: Sequence[Decimal]) -> dict[str, object]:
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
            "thresholds_crossed": [float(t) for t in self.crossed(thresholds)],
        }


@dataclass(slots=True)
class Decision:
    """Whether a call with some tags may go ahead, and for how long the answer holds."""

    allow: bool
    reasons: list[dict[str, object]] = field(default_factory=list)
    retry_after: float | None = None
    """Seconds until the first blocking window ends (None: not before a config change)."""


class BudgetBook:
    """Spend against every limit, updated from counted calls; thread-safe.

    ``store`` keeps the totals (``MemoryStore`` by default; ``RedisStore`` to share them between
    replicas). A threshold fires when an addition carries the total from below it to at or
    above it, which happens once per window, whichever replica adds.
    """

    def __init__(
        self,
        config: BudgetsConfig,
        *,
        clock: Callable[[], float] = time.time,
        on_alert: Callable[[Alert], None] = lambda alert: None,
        store: SpendStore | None = None,
    ) -> None:
        self.config = config
        self.store: SpendStore = store or MemoryStore(clock)
        self._clock = clock
        self._on_alert = on_alert
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
        for call in calls:
            if call.cost.status != STATUS_PRICED:
                continue
            cost = call.cost.billable if call.cost.billable is not None else call.cost.total
            started = from_unix_nano(call.start_time_unix_nano)
            for limit in self.config.limits:
                scope = limit.selector.scope_of(call.tags)
                if scope is None or not self._track(limit, scope):
                    continue
                for window, amount in self.windows(limit, now):
                    if _counts_in(window, started):
                        tally = Tally(limit, scope, window, amount)
                        alerts += self._add(tally, cost, now)
        for alert in alerts:
            self._on_alert(alert)

    def _track(self, limit: SpendLimit, scope: str) -> bool:
        with self._lock:
            scopes = self._scopes[limit.name]
            if scope in scopes:
                return True
            if len(scopes) < MAX_SCOPES:
                scopes.add(scope)
                return True
            if limit.name not in self._warned:
                self._warned.add(limit.name)
                log.warning(
                    "budget %s: %d scopes tracked; spend of further %s values is not tracked",
                    limit.name,
                    MAX_SCOPES,
                    limit.per,
                )
            return False

    def _add(self, tally: Tally, cost: Decimal, now: datetime) -> list[Alert]:
        tally.spend = self.store.add(tally.key, cost, tally.expire_at)
        before = tally.spend - cost
        alerts = []
        for threshold in self.config.thresholds_of(tally.limit):
            line = tally.amount * threshold / _HUNDRED
            if before < line <= tally.spend:
                alerts.append(Alert.crossed(tally, threshold, now))
        return alerts

    def rebuild(self, spend_of: Callable[[SpendLimit, Window], Mapping[str, Decimal]]) -> int:
        """Start from the spend already recorded (e.g. in the ledger) in each current window.

        ``spend_of(limit, window)`` returns spend per scope. Thresholds that spend has already
        reached do not fire again. Returns the scopes loaded. Does nothing with a shared store,
        which keeps the totals itself (a replica's ledger holds only its share).
        """
        if self.store.shared:
            return 0
        now = self.now()
        loaded = 0
        for limit in self.config.limits:
            for window, amount in self.windows(limit, now):
                for scope, spend in spend_of(limit, window).items():
                    if limit.per is not None and scope == UNTAGGED:
                        continue
                    if self._track(limit, scope):
                        tally = Tally(limit, scope, window, amount)
                        self.store.put(tally.key, spend, tally.expire_at)
                        loaded += 1
        return loaded

    # Reading.

    def _current(self, limit: SpendLimit, scope: str, window: Window, amount: Decimal) -> Tally:
        tally = Tally(limit, scope, window, amount)
        tally.spend = self.store.get(tally.key)
        return tally

    def check(self, tags: Mapping[str, str]) -> Decision:
        """Deny when an enforced limit covering ``tags`` has spent its amount in a window now."""
        now = self.now()
        decision = Decision(allow=True)
        for limit in self.config.limits:
            if not limit.enforce:
                continue
            scope = limit.selector.scope_of(tags)
            if scope is None:
                continue
            for window, amount in self.windows(limit, now):
                if not window.contains(now):
                    continue
                tally = self._current(limit, scope, window, amount)
                if tally.spend < amount:
                    continue
                decision.allow = False
                decision.reasons.append(
                    {
                        "budget": limit.name,
                        "scope": limit.selector.scope_tags(scope),
                        "window": window.kind,
                        "spend_usd": format(tally.spend, "f"),
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

    def _tallies(self, now: datetime) -> list[Tally]:
        """Every scope seen, in every current window; unsplit limits always have their row."""
        with self._lock:
            scopes = {name: sorted(seen) for name, seen in self._scopes.items()}
        found = []
        for limit in self.config.limits:
            for scope in scopes[limit.name] or ([""] if limit.per is None else []):
                for window, amount in self.windows(limit, now):
                    found.append(self._current(limit, scope, window, amount))
        return found

    def status(self) -> list[dict[str, object]]:
        """Every tracked scope's spend in its current windows."""
        now = self.now()
        return [
            tally.status(now, self.config.thresholds_of(tally.limit))
            for tally in self._tallies(now)
        ]

    def utilization(self) -> list[tuple[float, dict[str, str]]]:
        """``(spend / amount, labels)`` for every tracked scope and window, for the gauge."""
        return [
            (
                float(tally.utilization),
                {
                    "budget": tally.limit.name,
                    "budget.window": tally.window.kind,
                    **tally.limit.selector.scope_tags(tally.scope),
                },
            )
            for tally in self._tallies(self.now())
        ]


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
