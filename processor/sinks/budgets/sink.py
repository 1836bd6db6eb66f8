"""``BudgetSink``: the budgets' ``CallSink``, with their alerts, gauge and status endpoint."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from spanledger.processor.model import CountedCall
from spanledger.processor.redaction import redact
from spanledger.processor.sinks.budgets.alerts import Alert, WebhookSender, log_alert
from spanledger.processor.sinks.budgets.config import BudgetsConfig
from spanledger.processor.sinks.budgets.evaluation import BudgetBook, ledger_spend
from spanledger.processor.sinks.budgets.rates import Counter, RateLimiter
from spanledger.processor.sinks.budgets.status import StatusServer
from spanledger.processor.sinks.budgets.stores import RedisStore, redis_client
from spanledger.processor.sinks.ledger import LedgerConfig
from spanledger.semconv import UNTAGGED

log = logging.getLogger("spanledger.budgets")

UTILIZATION = "spanledger.budget.utilization"
RECENT_ALERTS = 100


class BudgetSink:
    """Counts spend against the configured limits as traces complete, fires threshold alerts,
    and (with ``status``) serves the status and pre-call check endpoints.

    With ``ledger`` (or ``ledger_path``, an SQLite file), spend already in the ledger for the
    current windows is loaded first, so a restart does not reset it. ``clock`` returns unix
    seconds (tests move it across period boundaries); ``counter`` replaces the in-process rate
    counter.
    """

    def __init__(
        self,
        config: BudgetsConfig,
        tag_keys: Sequence[str],
        *,
        ledger_path: str | None = None,
        ledger: LedgerConfig | None = None,
        clock: Callable[[], float] = time.time,
        counter: Counter | None = None,
    ) -> None:
        problems = config.problems() + config.tag_problems(tag_keys)
        if problems:
            raise ValueError("invalid budgets configuration: " + "; ".join(problems))
        self.config = config
        self.tag_keys = tuple(tag_keys)
        self._clock = clock
        self.recent_alerts: deque[dict[str, object]] = deque(maxlen=RECENT_ALERTS)
        self.failed_calls = 0
        """Calls that could not be counted (a store error, say), each logged with its span id."""
        self.webhook = WebhookSender(config.webhook) if config.webhook is not None else None
        store: RedisStore | None = None
        if config.shared is not None:
            shared = config.shared
            client = redis_client(shared.redis, timeout=shared.timeout, ca_file=shared.ca_file)
            store = RedisStore(client, shared.key_prefix, clock=clock)
        self.book = BudgetBook(config, clock=clock, on_alert=self._alert, store=store)
        self.rates = RateLimiter(config.rate_limits, counter or store)
        if ledger is None and ledger_path:
            ledger = LedgerConfig(path=ledger_path)
        if ledger is not None and store is None and (ledger.url or _is_file(ledger.path)):
            self._rebuild(ledger)
        self.server: StatusServer | None = None
        if config.status is not None:
            try:
                self.server = StatusServer(config.status, self.status, self.check)
            except Exception:
                self.shutdown(1.0)
                raise

    def record(self, calls: Sequence[CountedCall]) -> None:
        """Count ``calls`` against every limit they fall under; never raises.

        A call that cannot be counted is logged with its span id and skipped; the others are
        counted all the same.
        """
        for call in calls:
            try:
                self.book.record([call])
            except Exception as exc:
                self.failed_calls += 1
                log.error(
                    "budgets: could not count the call in span %s of trace %s: %s",
                    call.span_id,
                    call.trace_id,
                    redact(str(exc)) or type(exc).__name__,
                )

    def check(self, tags: dict[str, str]) -> tuple[bool, dict[str, Any]]:
        """Decide whether a call with ``tags`` may go ahead; counts it against rate limits."""
        tags = {key: tags.get(key) or UNTAGGED for key in self.tag_keys}
        decision = self.book.check(tags)
        reasons: list[dict[str, object]] = list(decision.reasons)
        retry_after = decision.retry_after
        rated = self.rates.applies(tags)
        if decision.allow and rated:
            exceeded, minute_left = self.rates.hit(tags, self._clock())
            if exceeded:
                reasons += exceeded
                retry_after = minute_left
        allowed = not reasons
        cache = self.config.status.cache_seconds if self.config.status else 0.0
        if allowed:
            cache_for = 0.0 if rated else cache
        else:
            cache_for = min(cache, retry_after) if retry_after is not None else cache
        answer: dict[str, Any] = {"allow": allowed, "cache_for": cache_for}
        if not allowed:
            answer |= {"reasons": reasons, "retry_after": retry_after}
        return allowed, answer

    def status(self) -> dict[str, Any]:
        """Spend against every limit, the rate limits, and the latest alerts."""
        return {
            "now": self.book.now().isoformat().replace("+00:00", "Z"),
            "budgets": self.book.status(),
            "rate_limits": [
                {
                    "rate_limit": limit.name,
                    "match": limit.match,
                    "per": limit.per,
                    "requests_per_minute": limit.requests_per_minute,
                }
                for limit in self.config.rate_limits
            ],
            "recent_alerts": list(self.recent_alerts),
        }

    def register_gauge(self, meter: Meter) -> None:
        """Report ``spanledger.budget.utilization`` (spend / amount, 1.0 = 100%) on ``meter``."""
        meter.create_observable_gauge(
            UTILIZATION,
            [self._utilization_points],
            unit="1",
            description="Spend over the budget amount in the current window (1 = 100%)",
        )

    def shutdown(self, timeout: float) -> None:
        """Stop serving; deliver the queued webhook alerts within ``timeout`` seconds."""
        if getattr(self, "server", None) is not None:
            assert self.server is not None
            self.server.stop()
            self.server = None
        if self.webhook is not None:
            self.webhook.shutdown(timeout)
            self.webhook = None
        store = getattr(getattr(self, "book", None), "store", None)
        if isinstance(store, RedisStore):
            store.close()

    def _alert(self, alert: Alert) -> None:
        log_alert(alert)
        self.recent_alerts.append(alert.payload())
        if self.webhook is not None:
            self.webhook.send(alert)

    def _utilization_points(self, _options: CallbackOptions | None = None) -> list[Observation]:
        return [Observation(value, labels) for value, labels in self.book.utilization()]

    def _rebuild(self, config: LedgerConfig) -> None:
        from spanledger.processor.sinks.ledger import LedgerError, open_ledger

        try:
            with open_ledger(config) as ledger:
                loaded = self.book.rebuild(ledger_spend(ledger))
        except (LedgerError, OSError, ValueError) as exc:
            log.error(
                "budgets: could not load spend from the ledger %s: %s", config.location(), exc
            )
            return
        log.info(
            "budgets: loaded current spend of %d budget scopes from %s", loaded, config.location()
        )


def _is_file(path: str | None) -> bool:
    return bool(path) and Path(path).is_file()  # type: ignore[arg-type]
