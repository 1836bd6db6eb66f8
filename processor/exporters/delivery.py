"""Queued, batched, retried delivery shared by the OTLP exporters.

An exporter carries one signal (traces, metrics or logs; ``signal``), counted in its items (spans,
data points, log records). ``export`` serializes the request and queues it (``Backpressure`` when
the queue is full). Worker threads take what is queued, merge it into one request (serialized
OTLP export requests concatenate into one request holding all their resources), and send it.
Retryable failures are retried with exponential backoff and jitter, or after the delay the server
asked for, until ``max_elapsed``; permanent failures are not retried. ``shutdown`` delivers what
is queued within its deadline and counts the rest as dropped, unless the queue is persistent
(``DiskQueue``): then it stays queued for the next start. Each batch is settled with the queue
once it is delivered or given up on.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import Enum

from google.protobuf.message import Message

from spanledger.processor.exporters.config import _ExporterConfig
from spanledger.processor.exporters.disk_queue import open_queue
from spanledger.processor.exporters.queue import ExportQueue, QueuedRequest
from spanledger.processor.otlp.signals import TRACES, Signal

log = logging.getLogger("spanledger.processor.exporters")

_IDLE_POLL = 0.5


class Verdict(Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    PERMANENT = "permanent"


@dataclass(frozen=True, slots=True)
class Attempt:
    """The outcome of sending one batch once."""

    verdict: Verdict
    detail: str = ""
    retry_after: float | None = None
    """Delay the server asked for (Retry-After, RetryInfo), if any."""
    response: Message | None = None
    """The signal's export response, when the destination sent one that could be read."""
    unsupported: bool = False
    """The destination answered that it does not serve the signal (HTTP 404, gRPC UNIMPLEMENTED)."""

    @classmethod
    def delivered(cls, response: Message | None = None) -> Attempt:
        return cls(Verdict.DELIVERED, response=response)

    @classmethod
    def retry(cls, detail: str, retry_after: float | None = None) -> Attempt:
        return cls(Verdict.RETRY, detail, retry_after)

    @classmethod
    def permanent(cls, detail: str, unsupported: bool = False) -> Attempt:
        return cls(Verdict.PERMANENT, detail, unsupported=unsupported)


@dataclass(frozen=True, slots=True)
class ExporterStats:
    """Counts since the exporter started, in items (spans, data points or log records, by the
    exporter's signal) except ``retried`` (attempts)."""

    sent: int = 0
    """Items the destination accepted."""
    failed: int = 0
    """Items the destination refused for good (permanent errors, partial-success rejections)."""
    retried: int = 0
    """Retry attempts made."""
    dropped: int = 0
    """Items given up on: retries exhausted, shutdown deadline, or exported after shutdown."""
    queued: int = 0
    """Items waiting in the queue now."""


class QueuedExporter(ABC):
    """Queue, batching, retries and drain; subclasses only know how to send one payload.

    One exporter carries one ``signal`` (traces unless given), whatever ``config.signals`` says:
    the service builds one exporter per signal an exporter config takes.
    """

    def __init__(
        self,
        config: _ExporterConfig,
        queue: ExportQueue | None = None,
        *,
        signal: Signal = TRACES,
    ) -> None:
        problems = config.all_problems()
        if problems:
            raise ValueError(f"invalid {type(self).__name__} config: " + "; ".join(problems))
        self.config = config
        self.signal = signal
        self._unit = signal.unit
        self._queue: ExportQueue = queue if queue is not None else open_queue(config, signal)
        self._told_unsupported = False
        self._lock = threading.Lock()
        self._counts = {"sent": 0, "failed": 0, "retried": 0, "dropped": 0}
        self._closing = False
        self._deadline: float | None = None
        self._abort = threading.Event()
        self._open_transport()
        self._workers = [
            threading.Thread(target=self._work, name=f"{type(self).__name__}-{i}", daemon=True)
            for i in range(config.workers)
        ]
        for worker in self._workers:
            worker.start()

    @property
    def stats(self) -> ExporterStats:
        with self._lock:
            return ExporterStats(**self._counts, queued=self._queue.spans)

    def export(self, request: Message) -> None:
        """Queue ``request`` (the signal's export request) for delivery.

        Raise ``Backpressure`` if the queue is full.
        """
        items = self.signal.count(request)
        if items and self._accepting(items):
            self._queue.put(QueuedRequest(request.SerializeToString(), items))

    def export_serialized(self, payload: bytes, spans: int) -> None:
        """Queue an already serialized export request holding ``spans`` items."""
        if spans and self._accepting(spans):
            self._queue.put(QueuedRequest(payload, spans))

    def _accepting(self, spans: int) -> bool:
        if self._closing:
            self._count("dropped", spans)
            log.warning(
                "%s: %d %s exported after shutdown were dropped", self.name, spans, self._unit
            )
            return False
        return True

    def shutdown(self, timeout: float) -> None:
        """Deliver what is queued within ``timeout`` seconds, then stop; the rest is dropped."""
        if self._closing:
            return
        self._deadline = time.monotonic() + max(0.0, timeout)
        self._closing = True
        self._queue.close()
        for worker in self._workers:
            worker.join(max(0.0, self._deadline - time.monotonic()))
        self._abort.set()
        for worker in self._workers:
            worker.join(min(self.config.timeout, 1.0))
        left = sum(item.spans for item in self._queue.drain())
        if left:
            self._count("dropped", left)
            log.error(
                "%s: shutdown deadline reached, %d queued %s dropped", self.name, left, self._unit
            )
        self._close_transport()
        stats = self.stats
        log.info(
            "%s stopped: %d %s sent, %d refused, %d dropped, %d retries",
            self.name,
            stats.sent,
            self._unit,
            stats.failed,
            stats.dropped,
            stats.retried,
        )

    @property
    def name(self) -> str:
        """How logs name this exporter (no credentials)."""
        return f"{type(self).__name__}({self._destination()})"

    # -- what subclasses provide -------------------------------------------------------------

    @abstractmethod
    def _open_transport(self) -> None:
        """Set up the connection(s) from the validated ``self.config``."""

    @abstractmethod
    def _destination(self) -> str:
        """The destination, for logs; it shows the signal unless that is traces."""

    def _prepare(self, payload: bytes) -> bytes:
        """Turn a merged payload into what is sent on every attempt (e.g. compress it once)."""
        return payload

    @abstractmethod
    def _send(self, body: bytes, timeout: float) -> Attempt:
        """Send ``body`` once within ``timeout`` seconds and classify the result."""

    @abstractmethod
    def _close_transport(self) -> None:
        """Release connections once the workers have stopped."""

    # -- the workers ----------------------------------------------------------------------------

    def _work(self) -> None:
        config = self.config
        while not self._abort.is_set():
            batch = self._queue.take(config.max_batch_spans, config.max_batch_bytes, _IDLE_POLL)
            if not batch:
                if self._closing:
                    return
                continue
            spans = sum(item.spans for item in batch)
            payload = batch[0].payload if len(batch) == 1 else b"".join(i.payload for i in batch)
            finished = True
            try:
                finished = self._deliver(self._prepare(payload), spans)
            except Exception:
                self._count("dropped", spans)
                log.exception("%s: unexpected failure, %d %s dropped", self.name, spans, self._unit)
            self._queue.settle(batch, finished)

    def _deliver(self, body: bytes, spans: int) -> bool:
        """Send until delivered, refused or given up on (True); False when shutdown interrupts."""
        config = self.config
        started = time.monotonic()
        retries = 0
        while True:
            attempt = self._send(body, self._attempt_timeout())
            if attempt.verdict is Verdict.DELIVERED:
                self._delivered(spans, attempt.response)
                return True
            if attempt.verdict is Verdict.PERMANENT:
                self._refused(spans, attempt)
                return True
            delay = self._backoff(retries, attempt.retry_after)
            now = time.monotonic()
            if now + delay - started > config.max_elapsed:
                self._give_up(spans, f"still failing after {now - started:.1f}s", attempt)
                return True
            if self._deadline is not None and now + delay > self._deadline:
                return self._interrupted(spans, attempt)
            log.warning(
                "%s: export of %d %s failed (%s), retrying in %.2fs",
                self.name,
                spans,
                self._unit,
                attempt.detail,
                delay,
            )
            self._count("retried", 1)
            retries += 1
            if self._abort.wait(delay):
                return self._interrupted(spans, attempt)

    def _attempt_timeout(self) -> float:
        if self._deadline is None:
            return self.config.timeout
        return max(0.05, min(self.config.timeout, self._deadline - time.monotonic()))

    def _backoff(self, retries: int, requested: float | None) -> float:
        if requested is not None and requested > 0:
            return requested
        config = self.config
        base = min(config.max_backoff, config.initial_backoff * (2 ** min(retries, 32)))
        return min(config.max_backoff, base * random.uniform(0.5, 1.5))

    def _delivered(self, spans: int, response: Message | None) -> None:
        partial = response.partial_success if response is not None else None  # type: ignore[attr-defined]
        reported = getattr(partial, self.signal.rejected_field, 0) if partial is not None else 0
        rejected = min(spans, reported)
        self._count("sent", spans - rejected)
        if rejected:
            self._count("failed", rejected)
        if partial is not None and (rejected or partial.error_message):
            log.warning(
                "%s accepted %d of %d %s: %s",
                self.name,
                spans - rejected,
                spans,
                self._unit,
                partial.error_message or "(no message)",
            )

    def _refused(self, spans: int, attempt: Attempt) -> None:
        """Count a permanent refusal and log it.

        A destination that does not serve metrics or logs (many tracing backends take traces
        only) would refuse every batch the same way: that is logged once, with the remedy, and
        then only at debug level.
        """
        self._count("failed", spans)
        if attempt.unsupported and self.signal is not TRACES:
            if self._told_unsupported:
                log.debug("%s refused %d %s: %s", self.name, spans, self._unit, attempt.detail)
                return
            self._told_unsupported = True
            log.error(
                "%s refused %d %s for good: %s. The destination seems not to take OTLP %s; "
                "leave %s out of this exporter's signals. Further refusals are logged at debug "
                "level only.",
                self.name,
                spans,
                self._unit,
                attempt.detail,
                self.signal.name,
                self.signal.name,
            )
            return
        log.error("%s refused %d %s for good: %s", self.name, spans, self._unit, attempt.detail)

    def _interrupted(self, spans: int, attempt: Attempt) -> bool:
        """Shutdown stopped a batch's retries: a persistent queue keeps it, else it is dropped."""
        if getattr(self._queue, "persistent", False):
            log.warning(
                "%s: shutdown deadline reached, %d %s stay queued for the next start "
                "(last error: %s)",
                self.name,
                spans,
                self._unit,
                attempt.detail,
            )
        else:
            self._give_up(spans, "shutdown deadline reached", attempt)
        return False

    def _give_up(self, spans: int, why: str, attempt: Attempt) -> None:
        self._count("dropped", spans)
        log.error(
            "%s: %s, %d %s dropped (last error: %s)",
            self.name,
            why,
            spans,
            self._unit,
            attempt.detail,
        )

    def _count(self, key: str, amount: int) -> None:
        with self._lock:
            self._counts[key] += amount
