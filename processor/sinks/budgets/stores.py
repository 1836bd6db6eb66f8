"""Where spend and request counts live: in this process, or in Redis shared by replicas.

A store keeps running totals under string keys that name the limit, the window and the scope,
so a new window is simply a new key. ``add`` is atomic and returns the new total: whichever
replica's addition carries a total across a threshold is the one that fires that alert, so
each threshold fires once across all replicas.

Redis holds spend as whole nano-dollars (``INCRBY``): each call's cost is rounded to 1e-9 USD
before it is added. Keys of a window expire a day after it ends, by the processor's clock (so a
test clock and Redis agree). The client is redis-py, over TLS for ``rediss://`` URLs.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # redis-py is loaded only when spend is shared
    import redis

NANO = Decimal("0.000000001")
# How long the totals of a window are kept after it ends, in seconds.
KEEP_AFTER_WINDOW = 86_400


class SpendStore(Protocol):
    def add(self, key: str, amount: Decimal, expire_at: float | None) -> Decimal:
        """Add ``amount`` to ``key`` and return the new total."""
        ...

    def get(self, key: str) -> Decimal: ...

    def put(self, key: str, amount: Decimal, expire_at: float | None) -> None:
        """Set ``key`` to ``amount`` (spend loaded from the ledger)."""
        ...

    @property
    def shared(self) -> bool: ...


class MemoryStore:
    """Totals in this process, exact; totals of windows that ended over a day ago (by
    ``clock``, unix seconds) are dropped as time passes."""

    shared = False

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._totals: dict[str, tuple[Decimal, float | None]] = {}
        self._lock = threading.Lock()
        self._next_sweep = 0.0

    def add(self, key: str, amount: Decimal, expire_at: float | None) -> Decimal:
        with self._lock:
            self._sweep()
            total = self._totals.get(key, (Decimal(0), None))[0] + amount
            self._totals[key] = (total, expire_at)
            return total

    def get(self, key: str) -> Decimal:
        with self._lock:
            return self._totals.get(key, (Decimal(0), None))[0]

    def put(self, key: str, amount: Decimal, expire_at: float | None) -> None:
        with self._lock:
            self._totals[key] = (amount, expire_at)

    def _sweep(self) -> None:
        now = self._clock()
        if now < self._next_sweep:
            return
        self._next_sweep = now + 3600
        self._totals = {
            k: v for k, v in self._totals.items() if v[1] is None or v[1] > now - KEEP_AFTER_WINDOW
        }


def redis_client(url: str, timeout: float = 2.0, ca_file: str | None = None) -> redis.Redis:
    """A redis-py client for ``redis://[[user]:password@]host:port/db`` or ``rediss://`` (TLS).

    ``ca_file`` replaces the system's trusted certificates for ``rediss://``. Replies are text.
    """
    import redis

    options: dict[str, object] = {}
    if ca_file is not None and url.startswith("rediss://"):
        options["ssl_ca_certs"] = ca_file
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        decode_responses=True,
        retry_on_timeout=False,
        **options,
    )


class RedisStore:
    """Spend totals and request counts in Redis, shared by every processor replica.

    A window's key expires a day after the window ends by ``clock`` (unix seconds, the clock
    the budgets are evaluated by): Redis is given the time left, not the moment, so the expiry
    agrees with the processor even when Redis's own clock differs.
    """

    shared = True

    def __init__(
        self,
        client: redis.Redis,
        prefix: str = "spanledger",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self._clock = clock

    def add(self, key: str, amount: Decimal, expire_at: float | None) -> Decimal:
        nanos = _nanos(amount)
        full = f"{self.prefix}:{key}"
        total = int(self.client.incrby(full, nanos))
        if expire_at is not None and total == nanos:
            self._expire(full, expire_at)
        return Decimal(total) * NANO

    def get(self, key: str) -> Decimal:
        value = self.client.get(f"{self.prefix}:{key}")
        return Decimal(int(value)) * NANO if value is not None else Decimal(0)  # type: ignore[arg-type]

    def put(self, key: str, amount: Decimal, expire_at: float | None) -> None:
        """Set ``key``; the evaluator does not load a shared store from one replica's ledger."""
        full = f"{self.prefix}:{key}"
        self.client.set(full, _nanos(amount))
        if expire_at is not None:
            self._expire(full, expire_at)

    def incr(self, key: str, ttl: int) -> int:
        """The rate counter: add one to ``key`` (expiring after ``ttl`` seconds)."""
        full = f"{self.prefix}:{key}"
        count = int(self.client.incr(full))
        if count == 1:
            self.client.expire(full, ttl)
        return count

    def close(self) -> None:
        self.client.close()

    def _expire(self, full: str, expire_at: float) -> None:
        """Let ``full`` live until a day after ``expire_at`` on the store's clock; a key whose
        day has passed goes at once (Redis deletes a key given a lifetime of 0 or less)."""
        self.client.expire(full, math.ceil(expire_at + 86_400 - self._clock()))


def _nanos(amount: Decimal) -> int:
    """``amount`` in whole billionths of a dollar, the unit Redis counters hold."""
    return int(amount.quantize(NANO, rounding=ROUND_HALF_EVEN) / NANO)
