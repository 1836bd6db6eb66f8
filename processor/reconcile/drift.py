"""Drift alerts: a provider and model whose bill and ledger part by more than a percentage.

Sent like budget alerts (docs/budgets.md): one structured log line ``budget alert {json}`` at
WARNING and, when the configuration has ``budgets.webhook``, a signed POST with
``x-spanledger-event: budget.drift``. The payload::

    {"event": "budget.drift", "id": "…", "provider": "openai", "model": "gpt-4o-mini",
     "period_start": "2026-11-01", "period_end": "2026-11-02", "billed_usd": "12.50",
     "attributed_usd": "10.00", "gap_usd": "2.50", "gap_percent": 20.0,
     "threshold_percent": 5.0, "causes": ["unseen_calls"], "at": "2026-11-02T06:00:03Z"}

The id is the same for the same provider, model, period and threshold, so a receiver drops the
repeat when a cron job runs twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from spanledger.processor.reconcile.bill import Period
from spanledger.processor.reconcile.matching import ModelTotal
from spanledger.processor.sinks.budgets.alerts import WebhookSender
from spanledger.processor.sinks.budgets.config import WebhookConfig

log = logging.getLogger("spanledger.budgets")

EVENT = "budget.drift"


@dataclass(frozen=True, slots=True)
class DriftAlert:
    """One provider and model over the threshold for one period."""

    total: ModelTotal
    period: Period
    threshold_percent: Decimal
    at: str

    @property
    def id(self) -> str:
        text = (
            f"{EVENT}|{self.total.provider}|{self.total.model}|{self.period.since}|"
            f"{self.period.until}|{self.threshold_percent}"
        )
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def payload(self) -> dict[str, object]:
        total = self.total
        gap_pct = total.gap_pct
        return {
            "event": EVENT,
            "id": self.id,
            "provider": total.provider,
            "model": total.model,
            "period_start": self.period.since.isoformat(),
            "period_end": self.period.until.isoformat(),
            "billed_usd": format(total.billed_usd, "f"),
            "attributed_usd": format(total.attributed_usd, "f"),
            "gap_usd": format(total.gap_usd, "f"),
            "gap_percent": None if gap_pct is None else float(gap_pct),
            "threshold_percent": float(self.threshold_percent),
            "causes": list(total.causes),
            "at": self.at,
        }


def over(totals: Sequence[ModelTotal], percent: Decimal) -> list[ModelTotal]:
    """The provider and model totals whose gap is more than ``percent`` of the billed cost."""
    return [t for t in totals if t.gap_pct is not None and abs(t.gap_pct) > percent]


def send_drift_alerts(
    totals: Sequence[ModelTotal],
    period: Period,
    threshold: Decimal,
    now: datetime,
    webhook: WebhookConfig | None,
    *,
    timeout: float = 30.0,
) -> list[DriftAlert]:
    """Log (and post, with ``webhook``) one alert per total over ``threshold``; waits up to
    ``timeout`` seconds for the webhook deliveries."""
    at = now.isoformat().replace("+00:00", "Z")
    alerts = [DriftAlert(t, period, threshold, at) for t in over(totals, threshold)]
    if not alerts:
        return alerts
    sender = WebhookSender(webhook) if webhook is not None else None
    try:
        for alert in alerts:
            log.warning("budget alert %s", json.dumps(alert.payload(), sort_keys=True))
            if sender is not None:
                sender.send(alert)  # type: ignore[arg-type]
    finally:
        if sender is not None:
            sender.shutdown(timeout)
    return alerts
