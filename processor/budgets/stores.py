"""Where spend and request counts live: in this process, or in Redis shared by replicas.

A store keeps running totals under string keys that name the limit, the window and the scope,
so a new window is simply a new key. ``add`` is atomic and returns the new total: whichever
replica's addition carries a total across a threshold is the one that fires that alert, so
each threshold fires once across all replicas.

Redis holds spend as whole nano-dollars (``INCRBY``): each call's cost is rounded to 1e-9 USD
before it is added. Keys of a window expire a day after it ends, by the processor's clock.
"""

from __future__ import annotations

import math
import socket
import threading
import time
from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Protocol
from urllib.parse import unquote, urlsplit

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


class RedisError(Exception):
    """Redis answered with an error, or could not be reached."""


class RedisClient:
    """A small Redis (RESP2) client over one connection, for ``redis://[:password@]host:port/db``.

    Commands are serialised by a lock; a broken connection is reopened on the next command.
    """

    def __init__(self, url: str, timeout: float = 2.0) -> None:
        parts = urlsplit(url)
        if parts.scheme != "redis" or not parts.hostname:
            raise ValueError(f"expected redis://host:port/db, got {url!r}")
        self.host = parts.hostname
        self.port = parts.port or 6379
        self.password = unquote(parts.password) if parts.password else None
        self.username = unquote(parts.username) if parts.username else None
        path = parts.path.strip("/")
        if path and not path.isdigit():
            raise ValueError(f"the database in {url!r} must be a number")
        self.db = int(path) if path else 0
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._reader = None
        self._lock = threading.Lock()

    def command(self, *args: str | int) -> object:
        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._sock is None:
                        self._connect()
                    return self._call(args)
                except OSError as exc:
                    self._close()
                    if attempt == 2:
                        raise RedisError(f"redis {self.host}:{self.port}: {exc}") from exc
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            self._close()

    def _connect(self) -> None:
        self._sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        self._reader = self._sock.makefile("rb")
        if self.password is not None:
            auth = (self.username, self.password) if self.username else (self.password,)
            self._call(("AUTH", *auth))
        if self.db:
            self._call(("SELECT", self.db))

    def _close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
                self._reader = None

    def _call(self, args: tuple[str | int, ...]) -> object:
        assert self._sock is not None
        encoded = [str(a).encode() for a in args]
        payload = b"*%d\r\n" % len(encoded) + b"".join(
            b"$%d\r\n%s\r\n" % (len(a), a) for a in encoded
        )
        self._sock.sendall(payload)
        return self._reply()

    def _reply(self) -> object:
        assert self._reader is not None
        line = self._reader.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError("connection closed")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            data = self._reader.read(size + 2)
            return data[:-2].decode()
        if kind == b"*":
            return [self._reply() for _ in range(max(int(rest), 0))]
        raise ConnectionError(f"unexpected reply {line[:40]!r}")


class RedisStore:
    """Spend totals and request counts in Redis, shared by every processor replica.

    A window's key expires a day after the window ends by ``clock`` (unix seconds, the clock
    the budgets are evaluated by): Redis is given the time left, not the moment, so the expiry
    agrees with the processor even when Redis's own clock differs.
    """

    shared = True

    def __init__(
        self,
        client: RedisClient,
        prefix: str = "spanledger",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self._clock = clock

    def add(self, key: str, amount: Decimal, expire_at: float | None) -> Decimal:
        nanos = _nanos(amount)
        full = f"{self.prefix}:{key}"
        total = self.client.command("INCRBY", full, nanos)
        if expire_at is not None and total == nanos:
            self._expire(full, expire_at)
        return Decimal(int(total)) * NANO  # type: ignore[arg-type]

    def get(self, key: str) -> Decimal:
        value = self.client.command("GET", f"{self.prefix}:{key}")
        return Decimal(int(value)) * NANO if value is not None else Decimal(0)  # type: ignore[arg-type]

    def put(self, key: str, amount: Decimal, expire_at: float | None) -> None:
        """Set ``key``; the evaluator does not load a shared store from one replica's ledger."""
        full = f"{self.prefix}:{key}"
        self.client.command("SET", full, _nanos(amount))
        if expire_at is not None:
            self._expire(full, expire_at)

    def incr(self, key: str, ttl: int) -> int:
        """The rate counter: add one to ``key`` (expiring after ``ttl`` seconds)."""
        full = f"{self.prefix}:{key}"
        count = int(self.client.command("INCR", full))  # type: ignore[arg-type]
        if count == 1:
            self.client.command("EXPIRE", full, ttl)
        return count

    def _expire(self, full_key: str, window_end: float) -> None:
        """Expire ``full_key`` a day after ``window_end``; at once if that has passed."""
        seconds_left = math.ceil(window_end + KEEP_AFTER_WINDOW - self._clock())
        self.client.command("EXPIRE", full_key, seconds_left)


def _nanos(amount: Decimal) -> int:
    """``amount`` in whole billionths of a dollar, the unit Redis counters hold."""
    return int(amount.quantize(NANO, rounding=ROUND_HALF_EVEN) / NANO)
