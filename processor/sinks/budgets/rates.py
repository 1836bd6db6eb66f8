"""Request-rate limits: requests per UTC minute per limit and scope, counted at the check.

A fixed window per minute: the count of ``(limit, scope, minute)`` goes up by one for each
checked request, and a request is denied once the count passes ``requests_per_minute``. The
counts live in this process (``MemoryCounter``); replicas that must share them point every
check at one status endpoint, or use a shared store with the same ``incr`` (docs/budgets.md).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Protocol

from spanledger.processor.sinks.budgets.config import RateLimit


class Counter(Protocol):
    """Atomically add one to ``key`` (which expires after ``ttl`` seconds) and return it."""

    def incr(self, key: str, ttl: int) -> int: ...


class MemoryCounter:
    """Counts in this process; keys of past minutes are dropped as new minutes begin."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._minute: int | None = None
        self._lock = threading.Lock()

    def incr(self, key: str, ttl: int) -> int:
        minute = int(key.rsplit(":", 1)[1])
        with self._lock:
            if self._minute is None or minute > self._minute:
                self._counts = {k: v for k, v in self._counts.items() if k.endswith(f":{minute}")}
                self._minute = minute
            count = self._counts.get(key, 0) + 1
            self._counts[key] = count
            return count


class RateLimiter:
    """Counts one request against every rate limit covering its tags; says which are exceeded."""

    def __init__(self, limits: list[RateLimit], counter: Counter | None = None) -> None:
        self.limits = limits
        self.counter = counter or MemoryCounter()

    def applies(self, tags: Mapping[str, str]) -> bool:
        """Whether any rate limit covers ``tags`` (answers for them must not be cached)."""
        return any(limit.selector.scope_of(tags) is not None for limit in self.limits)

    def hit(self, tags: Mapping[str, str], now: float) -> tuple[list[dict[str, object]], float]:
        """Count one request at unix time ``now``; return the exceeded limits and the seconds
        until the minute ends."""
        minute = int(now // 60)
        retry_after = (minute + 1) * 60 - now
        exceeded = []
        for limit in self.limits:
            scope = limit.selector.scope_of(tags)
            if scope is None:
                continue
            count = self.counter.incr(f"rate:{limit.name}:{scope}:{minute}", ttl=120)
            if count > limit.requests_per_minute:
                exceeded.append(
                    {
                        "rate_limit": limit.name,
                        "scope": limit.selector.scope_tags(scope),
                        "requests_per_minute": limit.requests_per_minute,
                        "count": count,
                    }
                )
        return exceeded, retry_after
