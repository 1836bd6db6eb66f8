"""Helpers for the budget tests: a movable clock, a webhook receiver, counted calls."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

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


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """A local HTTP endpoint recording every POST; answers ``fail_with`` to the first
    ``failures`` requests, 200 after that."""

    failures: int = 0
    fail_with: int = 503
    deliveries: list[Delivery] = field(default_factory=list)
    attempts: int = 0

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    receiver.attempts += 1
                    failing = receiver.attempts <= receiver.failures
                    if not failing:
                        headers = {k.lower(): v for k, v in self.headers.items()}
                        receiver.deliveries.append(Delivery(headers, body))
                self.send_response(receiver.fail_with if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks/budget"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


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
