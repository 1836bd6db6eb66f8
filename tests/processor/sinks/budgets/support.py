"""Helpers for the budget tests: a movable clock, a webhook receiver, counted calls."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from decimal import Decimal

from support.webhooks import Delivery, WebhookReceiver  # noqa: F401 - the budget tests import them from here

from spanledger.processor.model import Cost, CountedCall, Usage


class Clock:
    """Unix seconds that tests set and move; starts at ``start``."""

    def __init__(self, start: datetime) -> None:
        self.now = start.timestamp()
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def set(self, moment: datetime) -> None:
        with self._lock:
            self.now = moment.timestamp()

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


def counted(
    index: int,
    when: datetime,
    cost: str,
    *,
    billable: str | None = None,
    status: str = "priced",
    **tags: str,
) -> CountedCall:
    """A counted call at ``when`` costing ``cost`` USD, with the four default tag keys."""
    all_tags = {"customer": "(none)", "feature": "(none)", "team": "(none)", "env": "(none)"}
    all_tags.update(tags)
    return CountedCall(
        trace_id=f"{index + 1:032x}",
        span_id=f"{index + 1:016x}",
        start_time_unix_nano=int(when.astimezone(UTC).timestamp()) * 10**9,
        tags=all_tags,
        usage=Usage(operation="chat", provider="openai", request_model="gpt-4o-mini"),
        cost=Cost(
            status,
            "price_table" if status == "priced" else None,
            Decimal(cost),
            billable=Decimal(billable) if billable is not None else None,
        ),
    )
