"""Budget alerts: one structured log line each, and an optional signed webhook.

The webhook receives ``POST`` with a JSON body (see :meth:`Alert.payload`) and the headers
``content-type: application/json``, ``x-spanledger-event: budget.threshold``,
``x-spanledger-delivery: <alert id>`` (the same on every retry, to drop duplicates) and, with a
secret, ``x-spanledger-signature: sha256=<hex HMAC-SHA256 of the exact body bytes>``. A
network error, a timeout, 408, 429 or a 5xx is retried with exponential backoff up to
``max_attempts``; other answers are final. Requests go through one ``httpx`` client per webhook,
which keeps its connection alive between alerts; redirects are not followed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

import httpx

from spanledger.processor.sinks.budgets.config import WebhookConfig
from spanledger.processor.sinks.budgets.periods import iso

if TYPE_CHECKING:
    from spanledger.processor.sinks.budgets.evaluation import Tally

log = logging.getLogger("spanledger.budgets")

EVENT = "budget.threshold"
SIGNATURE_HEADER = "x-spanledger-signature"
DELIVERY_HEADER = "x-spanledger-delivery"
EVENT_HEADER = "x-spanledger-event"
MAX_QUEUED = 10_000
_RETRY_STATUSES = {408, 425, 429}


@dataclass(frozen=True, slots=True)
class Alert:
    """A threshold of one limit, scope and window, crossed once."""

    budget: str
    scope: dict[str, str]
    window: str
    start: str | None
    end: str | None
    threshold_percent: Decimal
    spend_usd: Decimal
    amount_usd: Decimal
    at: str

    @classmethod
    def crossed(cls, tally: Tally, threshold: Decimal, now: datetime) -> Alert:
        return cls(
            budget=tally.limit.name,
            scope=tally.limit.selector.scope_tags(tally.scope),
            window=tally.window.kind,
            start=iso(tally.window.start),
            end=iso(tally.window.end),
            threshold_percent=threshold,
            spend_usd=tally.spend,
            amount_usd=tally.amount,
            at=iso(now) or "",
        )

    @property
    def id(self) -> str:
        """Stable for one threshold of one window: the same alert never gets two ids."""
        scope = ",".join(f"{k}={v}" for k, v in sorted(self.scope.items()))
        text = f"{self.budget}|{scope}|{self.window}|{self.start}|{self.threshold_percent}"
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def payload(self) -> dict[str, object]:
        """The JSON document logged and POSTed; USD amounts are exact decimal strings."""
        return {
            "event": EVENT,
            "id": self.id,
            "budget": self.budget,
            "scope": self.scope,
            "window": self.window,
            "window_start": self.start,
            "window_end": self.end,
            "threshold_percent": float(self.threshold_percent),
            "spend_usd": format(self.spend_usd, "f"),
            "amount_usd": format(self.amount_usd, "f"),
            "utilization": float(self.spend_usd / self.amount_usd),
            "at": self.at,
        }


def log_alert(alert: Alert) -> None:
    """The structured log line: ``budget alert {json}`` at WARNING."""
    log.warning("budget alert %s", json.dumps(alert.payload(), sort_keys=True))


def sign(secret: str, body: bytes) -> str:
    """The signature header value for ``body``: ``sha256=<hex>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookSender:
    """Delivers alerts to one webhook from a background thread, in order, with retries."""

    def __init__(self, config: WebhookConfig, *, backoff: float = 1.0, max_backoff: float = 60.0):
        problems = config.problems()
        if problems:
            raise ValueError("invalid webhook configuration: " + "; ".join(problems))
        self.config = config
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.delivered = 0
        self.failed = 0
        self._queue: queue.Queue[Alert | None] = queue.Queue()
        self._client = httpx.Client(timeout=config.timeout, follow_redirects=False)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="spanledger-webhook", daemon=True)
        self._thread.start()

    def send(self, alert: Alert) -> None:
        """Queue ``alert``; never blocks. Past ``MAX_QUEUED`` waiting alerts, it is dropped."""
        if self._queue.qsize() >= MAX_QUEUED:
            log.error("budget webhook: %d alerts waiting; dropping alert %s", MAX_QUEUED, alert.id)
            self.failed += 1
            return
        self._queue.put(alert)

    def shutdown(self, timeout: float) -> None:
        """Deliver what is queued within ``timeout`` seconds, then stop."""
        deadline = time.monotonic() + max(timeout, 0.0)
        self._queue.put(None)
        self._thread.join(max(0.0, deadline - time.monotonic()))
        self._stop.set()
        self._thread.join(1.0)
        self._client.close()
        left = self._queue.qsize() - 1
        if left > 0:
            log.error("budget webhook: %d alerts were not delivered before shutdown", left)

    def _run(self) -> None:
        while True:
            alert = self._queue.get()
            if alert is None:
                return
            self._deliver(alert)

    def _deliver(self, alert: Alert) -> None:
        payload = alert.payload()
        body = json.dumps(payload, sort_keys=True).encode()
        headers = {
            **self.config.headers,
            "content-type": "application/json",
            EVENT_HEADER: str(payload.get("event", EVENT)),
            DELIVERY_HEADER: alert.id,
        }
        if self.config.secret:
            headers[SIGNATURE_HEADER] = sign(self.config.secret, body)
        delay = self.backoff
        for attempt in range(1, self.config.max_attempts + 1):
            outcome = self._post(body, headers)
            if outcome is None:
                self.delivered += 1
                return
            final = attempt == self.config.max_attempts or outcome.startswith("final")
            log.log(
                logging.ERROR if final else logging.WARNING,
                "budget webhook: alert %s attempt %d/%d failed: %s",
                alert.id,
                attempt,
                self.config.max_attempts,
                outcome,
            )
            if final or self._stop.wait(delay):
                break
            delay = min(delay * 2, self.max_backoff)
        self.failed += 1

    def _post(self, body: bytes, headers: dict[str, str]) -> str | None:
        """None when delivered; else why, starting with ``final`` when a retry cannot help."""
        try:
            response = self._client.post(self.config.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if response.is_success:
            return None
        code = response.status_code
        retry = code >= 500 or code in _RETRY_STATUSES
        return f"{'' if retry else 'final: '}HTTP {code}"
