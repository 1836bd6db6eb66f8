"""What the stand-in remembers: the requests it answered and the scenarios waiting in line."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from spanledger.standin.billing import Billing
from spanledger.standin.scenario import Scenario


@dataclass
class RecordedRequest:
    """One API request the stand-in received (control requests under ``/_standin`` are not)."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any
    query: dict[str, str] = field(default_factory=dict)
    scenario: Scenario | None = None
    """The scenario that answered it (from the header or the queue), if any."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "json": self.json,
            "scenario": self.scenario.to_dict() if self.scenario else None,
        }


class SharedState:
    """Recorded requests, queued scenarios and the bill, shared by the handler threads."""

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        prices: Mapping[str, Mapping[str, Any]] | None = None,
        admin_key: str | None = None,
    ) -> None:
        self.billing = Billing(clock, prices)
        """Every answered call, for the admin APIs (see :mod:`spanledger.standin.billing`)."""
        self.admin_key = admin_key
        """The admin key the admin APIs accept; None: any non-empty key."""
        self.lock = threading.Lock()
        self.requests: list[RecordedRequest] = []
        self.queue: deque[Scenario] = deque()
        self.remaining = 0
        """Requests the queue's head still answers (it leaves the queue at zero)."""
        self.count = 0
        """API requests numbered so far; numbers make response ids unique."""

    def push(self, scenarios: list[Scenario]) -> None:
        """Queue scenarios behind those already waiting."""
        with self.lock:
            self.queue.extend(scenarios)

    def clear(self) -> None:
        """Forget recorded requests, queued scenarios and the bill (the request numbering
        goes on)."""
        with self.lock:
            self.requests.clear()
            self.queue.clear()
            self.remaining = 0
        self.billing.clear()

    def take(self, header_scenario: Scenario | None) -> tuple[int, Scenario | None]:
        """A number for the request and its scenario: the header's, else the queue's head."""
        with self.lock:
            self.count += 1
            if header_scenario is not None or not self.queue:
                return self.count, header_scenario
            head = self.queue[0]
            self.remaining = self.remaining or head.repeat
            self.remaining -= 1
            if self.remaining == 0:
                self.queue.popleft()
            return self.count, head

    def record(self, request: RecordedRequest) -> None:
        """Remember an answered API request."""
        with self.lock:
            self.requests.append(request)
