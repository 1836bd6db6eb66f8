"""Write-ahead of accepted requests, so an acknowledged span survives the processor being killed.

The pipeline holds spans in memory while it waits for the rest of their trace. ``WriteAhead``
sits between the receivers and the pipeline: once the pipeline accepted a request, the request
is appended to a log file *before* the receiver acknowledges it. A log segment is deleted once
every span accepted up to its last record has left the pipeline (``Pipeline.settled_before``),
that is, was handed to the exporters, whose on-disk queues keep it from there. On start,
``replay`` feeds what an earlier process left back into the pipeline.

Together with a disk queue on every exporter this gives at-least-once delivery across SIGKILL:
a request is either unacknowledged (the client retries it) or in the log, or in a disk queue.
Replayed spans may reach a backend twice; the ledger and the pipeline count each
(trace_id, span_id) once.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from spanledger.processor.components import (
    Backpressure,
    ConsumeResult,
    PermanentError,
    SettlingConsumer,
)
from spanledger.processor.config_schema import storage_problems
from spanledger.processor.record_files import lock_directory, read_records, write_record

log = logging.getLogger("spanledger.processor.intake.write_ahead")

DEFAULT_WRITE_AHEAD_BYTES = 512 * 1024 * 1024
_SEGMENT_BYTES = 8 * 1024 * 1024
_SEGMENT_SECONDS = 0.5
"""A segment takes records for this long at most, so it can be retired soon after."""
_CHECK_INTERVAL = 0.25
_REPLAY_PATIENCE = 30.0


@dataclass
class WriteAheadConfig:
    """``service.write_ahead``: log accepted requests under ``directory`` before answering.

    At most ``max_bytes`` are logged; beyond it requests are refused with backpressure until
    the pipeline catches up. ``sync`` flushes every record to the device (power loss).
    """

    directory: str = ""
    max_bytes: int = DEFAULT_WRITE_AHEAD_BYTES
    sync: bool = False

    def problems(self) -> list[str]:
        return storage_problems(self.directory, self.max_bytes)


@dataclass(slots=True)
class _Segment:
    number: int
    path: Path
    size: int = 0
    first_write: float = 0.0
    last_write: float = 0.0


class WriteAhead:
    """A ``TraceConsumer`` that logs each request ``consumer`` accepted before it is answered.

    ``clock`` must be the pipeline's clock (both default to ``time.monotonic``).
    """

    def __init__(
        self,
        config: WriteAheadConfig,
        consumer: SettlingConsumer,
        *,
        clock: Callable[[], float] = time.monotonic,
        segment_bytes: int = _SEGMENT_BYTES,
    ) -> None:
        problems = config.problems()
        if problems:
            raise ValueError("invalid write_ahead config: " + "; ".join(problems))
        self.config = config
        self.consumer = consumer
        self.directory = Path(config.directory)
        self.segment_bytes = segment_bytes
        self._clock = clock
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd: int | None = lock_directory(self.directory)
        self._lock = threading.Lock()
        self._closed: list[_Segment] = []
        self._open: _Segment | None = None
        self._fd: int | None = None
        self._bytes = 0
        self._next = 1 + max((_number(p) for p in self.directory.glob("*.wal")), default=0)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.replayed_requests = 0
        self.write_failures = 0

    @property
    def logged_bytes(self) -> int:
        """Bytes in log segments not deleted yet."""
        return self._bytes

    def replay(self) -> int:
        """Feed requests an earlier process logged to the consumer; returns how many.

        Their segments are kept until what they hold has left the pipeline.
        """
        replayed = 0
        for path in sorted(self.directory.glob("*.wal"), key=_number):
            segment = _Segment(_number(path), path, path.stat().st_size)
            for _offset, _spans, payload in read_records(path):
                try:
                    request = ExportTraceServiceRequest.FromString(payload)
                except Exception:
                    log.error("%s: skipping a logged request that cannot be decoded", path)
                    continue
                if self._replay_one(request):
                    replayed += 1
            segment.last_write = self._clock()
            with self._lock:
                self._closed.append(segment)
                self._bytes += segment.size
        self.replayed_requests = replayed
        if replayed:
            log.info("write-ahead %s: replayed %d logged requests", self.directory, replayed)
        return replayed

    def _replay_one(self, request: ExportTraceServiceRequest) -> bool:
        deadline = time.monotonic() + _REPLAY_PATIENCE
        while True:
            try:
                self.consumer.consume(request)
                return True
            except Backpressure as exc:
                if time.monotonic() >= deadline:
                    log.error("write-ahead: the pipeline stayed full, a logged request was lost")
                    return False
                time.sleep(min(max(exc.retry_after, 0.05), 1.0))
            except PermanentError as exc:
                log.error("write-ahead: a logged request was refused: %s", exc)
                return False

    def consume(self, request: ExportTraceServiceRequest) -> ConsumeResult:
        """Hand ``request`` to the consumer, then log it; refuse it when the log is full."""
        if self._bytes >= self.config.max_bytes:
            self.retire()
            if self._bytes >= self.config.max_bytes:
                raise Backpressure(
                    f"write-ahead log {self.directory} is full ({self._bytes} bytes); "
                    "the pipeline is behind",
                    retry_after=1.0,
                )
        result = self.consumer.consume(request)
        payload = request.SerializeToString()
        with self._lock:
            try:
                self._append(payload, _span_count(request))
            except OSError as exc:
                self.write_failures += 1
                # The spans are in the pipeline already; a retry of this request is recognised
                # as a duplicate. Asking for it is safer than acknowledging what is not logged.
                raise Backpressure(
                    f"write-ahead log {self.directory} cannot write: {exc}", retry_after=1.0
                ) from None
        return result

    def _append(self, payload: bytes, spans: int) -> None:
        segment = self._open
        if segment is None or (
            segment.size
            and (
                segment.size >= self.segment_bytes
                or self._clock() - segment.first_write >= _SEGMENT_SECONDS
            )
        ):
            segment = self._rotate()
        assert self._fd is not None
        start = segment.size
        try:
            written = write_record(self._fd, payload, spans)
            if self.config.sync:
                os.fsync(self._fd)
        except OSError:
            os.ftruncate(self._fd, start)
            raise
        if not segment.size:
            segment.first_write = self._clock()
        segment.size += written
        self._bytes += written
        segment.last_write = self._clock()

    def _rotate(self) -> _Segment:
        if self._fd is not None and self._open is not None:
            os.close(self._fd)
            self._closed.append(self._open)
        path = self.directory / f"{self._next:016d}.wal"
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._open = _Segment(self._next, path)
        self._next += 1
        return self._open

    def retire(self) -> int:
        """Delete segments whose spans have all left the pipeline; returns how many."""
        settled = self.consumer.settled_before()
        if settled is None:
            return 0
        deleted = 0
        with self._lock:
            keep = []
            for segment in self._closed:
                if segment.last_write < settled:
                    self._delete(segment)
                    deleted += 1
                else:
                    keep.append(segment)
            self._closed = keep
            segment = self._open
            if segment is not None and segment.size and segment.last_write < settled:
                assert self._fd is not None
                os.close(self._fd)
                self._fd, self._open = None, None
                self._delete(segment)
                deleted += 1
        return deleted

    def _delete(self, segment: _Segment) -> None:
        segment.path.unlink(missing_ok=True)
        self._bytes -= segment.size

    # Lifecycle.

    def start(self) -> None:
        """Start the thread that deletes settled segments."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="spanledger-wal", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(_CHECK_INTERVAL):
            try:
                self.retire()
            except Exception:
                log.exception("write-ahead: deleting settled segments failed")

    def close(self) -> None:
        """Stop; delete what has settled (after a drained pipeline: everything) and let go."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
        try:
            self.retire()
        finally:
            with self._lock:
                if self._fd is not None:
                    os.close(self._fd)
                    self._fd = None
                if self._open is not None:
                    self._closed.append(self._open)
                    self._open = None
                left = len(self._closed)
                if self._lock_fd is not None:
                    os.close(self._lock_fd)
                    self._lock_fd = None
        if left:
            log.warning(
                "write-ahead %s: %d segments kept; they are replayed at the next start",
                self.directory,
                left,
            )


def _number(path: Path) -> int:
    try:
        return int(path.stem)
    except ValueError:
        return 0


def _span_count(request: ExportTraceServiceRequest) -> int:
    return sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
