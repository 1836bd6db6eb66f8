"""The memory limiter: refuse new data while the process uses too much memory (as the Collector).

``memory_limiter: {limit_mib, spike_limit_mib, check_interval}`` has the OpenTelemetry
Collector's meaning. Every ``check_interval`` the process's resident memory (RSS) is read. The
*soft limit* is ``limit_mib - spike_limit_mib``: at or above it the receivers refuse new data at
once with a retryable answer (HTTP 503 with ``Retry-After``, gRPC ``UNAVAILABLE`` with
``RetryInfo``), and accept again once a check finds memory below it. At or above ``limit_mib``
(the hard limit) a garbage collection is forced, and freed heap memory is handed back to the
system, before deciding; above the soft limit that is done at most every 10 seconds. From half
the spike limit below the soft limit on, what can be given up is given up before any data is
refused (``add_relief``: the pipeline forgets the older half of the span ids it remembers to
recognise late duplicates), at most every 10 seconds: those ids, and the heap they keep from
shrinking, are most of what a processor holds after a burst, and duplicate detection reaching
back less far is better than refusing data.

``spike_limit_mib`` is the headroom for what can arrive between two checks. The receivers also
reserve the memory a request will need while it is decoded (its bytes times the expansion of its
encoding) from a budget of that size before reading it, so large bodies and many concurrent
requests cannot push memory past ``limit_mib`` between checks: a request that does not fit is
refused at once as retryable, unless nothing else is being decoded and it fits under the hard
limit on its own; one that could never fit is refused as too large.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from spanledger.processor.config_schema import Duration

log = logging.getLogger("spanledger.processor.intake.memory_limiter")

MIB = 1024 * 1024
DEFAULT_LIMIT_MIB = 1024
"""The limit when the config says nothing. Taking 30,000-80,000 spans/s with the default
``rollup.remember_spans`` the processor holds 300-400 MiB on its own, which stays clear of the
refusing (768 MiB) and even of the forgetting (640 MiB); for a container of 1.2 GiB or more.
Smaller containers set ``limit_mib`` about 10% below their limit."""
SPIKE_SHARE = 4
"""Without ``spike_limit_mib``, the spike limit is ``limit_mib / 4`` (25%). The Collector takes 20%;
here memory also grows after refusing starts, while the pipeline prices, flushes and exports
what it holds: 150 MiB past the soft limit at 140,000 spans/s in ``bench/overload.py``."""
_MIN_GC_INTERVAL = 10.0
FRESH = 0.05
"""Seconds a reading serves the receivers' ``refusing`` before memory is read again."""
"""Seconds between forced collections while above the soft limit (a full collection is costly)."""
EXPANSION = {"protobuf": 8, "json": 14}
"""Memory needed to take a request in, as a multiple of its (uncompressed) size, measured on
OTLP trace requests: decoding a binary request peaks under 5 times its size, and holding its
spans and forwarding them takes about 3 times more before decoding memory is free again; an
OTLP/JSON one peaks at 13.5 times (the parsed document holds every value as a Python object)."""


@dataclass
class MemoryLimiterConfig:
    """``memory_limiter``: refuse data above ``limit_mib - spike_limit_mib`` of resident memory.

    ``null`` turns the limiter off.
    """

    limit_mib: int = DEFAULT_LIMIT_MIB
    """The most memory (RSS, MiB) the process should use."""
    spike_limit_mib: int | None = None
    """Headroom for what arrives between checks and what the pipeline still allocates once
    refusing starts; refusing starts at ``limit_mib`` minus this. Default: 25% of ``limit_mib``."""
    check_interval: Duration = 1.0
    """Seconds between measurements."""

    @property
    def spike_mib(self) -> int:
        return (
            self.spike_limit_mib
            if self.spike_limit_mib is not None
            else self.limit_mib // SPIKE_SHARE
        )

    def problems(self) -> list[str]:
        found = []
        if self.limit_mib < 32:
            found.append(f"limit_mib must be at least 32, got {self.limit_mib}")
        if self.spike_limit_mib is not None and not 0 < self.spike_limit_mib < self.limit_mib:
            found.append(
                f"spike_limit_mib must be above 0 and below limit_mib ({self.limit_mib}), "
                f"got {self.spike_limit_mib}"
            )
        if self.check_interval <= 0:
            found.append("check_interval must be positive")
        return found


def resident_bytes() -> int | None:
    """This process's resident memory in bytes, or None where it cannot be read.

    Read from ``/proc/self/statm`` (Linux); elsewhere through ``psutil`` when it is installed.
    """
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil  # type: ignore[import-untyped]
    except ImportError:
        return None
    return int(psutil.Process().memory_info().rss)


def _trimmer() -> Callable[[], None]:
    """A call that gives the C heap's free memory back to the system (glibc), else a no-op."""
    name = ctypes.util.find_library("c")
    with contextlib.suppress(OSError, AttributeError, TypeError):
        trim = ctypes.CDLL(name).malloc_trim
        trim.argtypes = [ctypes.c_size_t]
        return lambda: trim(0)
    return lambda: None


class MemoryLimiter:
    """Measures memory every ``check_interval`` and tells receivers when to refuse.

    ``read`` returns resident bytes (None: unknown, then nothing is ever refused) and ``clock``
    monotonic seconds; both exist for tests.
    """

    def __init__(
        self,
        config: MemoryLimiterConfig,
        *,
        read: Callable[[], int | None] = resident_bytes,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        problems = config.problems()
        if problems:
            raise ValueError("invalid memory_limiter configuration: " + "; ".join(problems))
        self.config = config
        self.limit = config.limit_mib * MIB
        self.soft_limit = (config.limit_mib - config.spike_mib) * MIB
        self.budget = config.spike_mib * MIB
        """Bytes of decoding requests may reserve at once (``reserve``)."""
        self.relief_at = self.soft_limit - self.budget // 2
        """From this much memory on, what can be given up is (``add_relief``), before data is
        refused: half the spike limit below the soft limit."""
        self._read = read
        self._clock = clock
        self._trim = _trimmer()
        self._refusing = False
        self._last_gc = -_MIN_GC_INTERVAL
        self._last_relief = -_MIN_GC_INTERVAL
        self._reliefs: list[Callable[[], None]] = []
        self._read_at = -FRESH
        self._lock = threading.Lock()
        self._reserved = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.usage: int | None = read()
        """Resident bytes at the last check."""
        self.peak = self.usage or 0
        """The most resident bytes any check found."""
        self.refusals = 0
        """Requests refused because memory was above the soft limit or the budget was spent."""
        if self.usage is None:
            log.warning("memory_limiter: this system does not say how much memory is in use; off")

    @property
    def refusing(self) -> bool:
        """Whether memory is at or above the soft limit.

        Besides the checks every ``check_interval``, memory is read again here when the last
        reading is older than ``FRESH`` seconds (reading it costs microseconds), so that a burst
        of requests between two checks cannot carry memory far past the soft limit.
        """
        now = self._clock()
        if now - self._read_at >= FRESH:
            usage = self._read()
            if usage is not None:
                self._read_at = now
                self.usage = usage
                self.peak = max(self.peak, usage)
                if usage >= self.soft_limit and not self._refusing:
                    self._refusing = True
                    log.warning(
                        "memory usage %d MiB is above the soft limit (%d MiB): refusing data",
                        usage // MIB,
                        self.soft_limit // MIB,
                    )
        return self._refusing

    @property
    def retry_after(self) -> float:
        """The delay to suggest to a refused sender: at least until the next check."""
        return max(1.0, self.config.check_interval)

    def start(self) -> None:
        """Check memory every ``check_interval`` seconds in a background thread."""
        if self._thread is not None or self.usage is None:
            return
        log.info(
            "memory limiter: limit %d MiB, refusing data above %d MiB, checked every %gs",
            self.limit // MIB,
            self.soft_limit // MIB,
            self.config.check_interval,
        )
        self._thread = threading.Thread(target=self._run, name="memory-limiter", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.config.check_interval + 1.0)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.config.check_interval):
            try:
                self.check()
            except Exception:
                log.exception("memory limiter: checking memory failed")

    def check(self) -> bool:
        """Measure memory now and decide whether to refuse; returns the decision.

        At or above the hard limit, and at most every 10 seconds above the soft limit, garbage is
        collected first. While above the soft limit, freed heap memory is handed back to the
        system at every check, so that memory freed as held data leaves shows in the reading.
        """
        usage = self._read()
        if usage is None:
            return False
        if usage >= self.limit:
            log.warning("memory usage %d MiB is above the hard limit; collecting", usage // MIB)
            usage = self._collect()
        elif usage >= self.soft_limit:
            if self._clock() - self._last_gc > _MIN_GC_INTERVAL:
                usage = self._collect()
            else:
                self._trim()
                usage = self._read() or usage
        if usage >= self.relief_at and self._clock() - self._last_relief > _MIN_GC_INTERVAL:
            usage = self._relieve()
        refusing = usage >= self.soft_limit
        self._read_at = self._clock()
        if refusing and not self._refusing:
            log.warning(
                "memory usage %d MiB is above the soft limit (%d MiB): refusing data",
                usage // MIB,
                self.soft_limit // MIB,
            )
        elif self._refusing and not refusing:
            log.info("memory usage %d MiB is back within limits: accepting data", usage // MIB)
        self._refusing = refusing
        self.usage = usage
        self.peak = max(self.peak, usage)
        return refusing

    def add_relief(self, relieve: Callable[[], None]) -> None:
        """Call ``relieve`` (which frees what can be given up, such as caches) when memory is
        within half the spike limit of the soft limit, or above it; at most every 10 seconds."""
        self._reliefs.append(relieve)

    def _relieve(self) -> int:
        self._last_relief = self._clock()
        if not self._reliefs:
            return self._read() or 0
        for relieve in self._reliefs:
            try:
                relieve()
            except Exception:
                log.exception("memory limiter: freeing memory failed")
        return self._collect()

    def _collect(self) -> int:
        gc.collect()
        self._trim()
        self._last_gc = self._clock()
        return self._read() or 0

    # -- the decoding budget ---------------------------------------------------------------------

    def reserve(self, size: int) -> bool:
        """Take ``size`` bytes of the decoding budget; False when they do not fit now.

        A reservation fits within the budget, or, when nothing else is reserved, under the hard
        limit given the memory in use right now.
        """
        with self._lock:
            if self._reserved + size <= self.budget or (
                self._reserved == 0 and (self._read() or 0) + size <= self.limit
            ):
                self._reserved += size
                return True
            self.refusals += 1
            return False

    def release(self, size: int) -> None:
        if size:
            with self._lock:
                self._reserved -= size

    def can_ever_fit(self, size: int) -> bool:
        """Whether a reservation of ``size`` may ever succeed: it fits the budget, or takes at
        most half the hard limit (to be let in alone, when memory in use leaves room for it)."""
        return size <= max(self.budget, self.limit // 2)

    def refused(self) -> None:
        """Count a request refused because memory is above the soft limit."""
        with self._lock:
            self.refusals += 1

    @property
    def reserved(self) -> int:
        return self._reserved
