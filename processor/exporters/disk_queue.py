"""A persistent exporter queue: requests kept in segment files until they are settled.

``put`` appends one record (header and serialized request) to the open segment file with a
single ``write`` before returning, so a request the queue took survives the process being killed
(``sync`` also survives power loss). ``take`` reads records back in order; only ``settle`` with
``done`` forgets them, by appending their offsets to the segment's ``.ack`` file. A segment whose
records are all settled is deleted. On start the queue reads what an earlier process left,
skipping settled records and stopping at a torn or corrupt tail. Delivery is at-least-once: a
batch sent but not yet settled when the process dies is sent again after the restart.

Layout of ``directory``: ``<sequence>.seg`` (records), ``<sequence>.ack`` (settled offsets, 8
bytes each), ``lock`` (held with ``flock`` so two processes never share a queue).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from spanledger.processor.components import Backpressure
from spanledger.processor.exporters.config import DiskQueueConfig
from spanledger.processor.exporters.queue import ExportQueue, MemoryQueue, QueuedRequest
from spanledger.processor.otlp.signals import TRACES, Signal
from spanledger.processor.record_files import (
    RECORD_HEADER,
    lock_directory,
    read_records,
    write_record,
)

if TYPE_CHECKING:
    from spanledger.processor.exporters.config import _ExporterConfig

log = logging.getLogger("spanledger.processor.exporters")

_ACK = struct.Struct("<Q")
SEGMENT_BYTES = 16 * 1024 * 1024
"""A new segment file is started once the open one holds this much."""


def open_queue(config: _ExporterConfig, signal: Signal = TRACES) -> ExportQueue:
    """The queue an exporter config asks for: on disk with ``queue``, else in memory.

    On disk, traces are queued in ``queue.directory`` itself and the other signals each in a
    subdirectory named after the signal, so every signal has a queue of its own.
    """
    if config.queue is None:
        return MemoryQueue(config.queue_size)
    if signal is TRACES:
        return DiskQueue(config.queue)
    directory = os.path.join(config.queue.directory, signal.name)
    return DiskQueue(dataclasses.replace(config.queue, directory=directory))


@dataclass(slots=True)
class _Entry:
    segment: int
    offset: int
    length: int
    spans: int


class _Segment:
    """One segment file: how many of its records are not settled yet."""

    __slots__ = ("ack_fd", "open", "path", "size", "unsettled")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = 0
        self.unsettled = 0
        self.open = False
        self.ack_fd: int | None = None


class DiskQueue:
    """An ``ExportQueue`` in files under ``config.directory``, bounded by ``config.max_bytes``."""

    persistent = True

    def __init__(
        self,
        config: DiskQueueConfig,
        *,
        segment_bytes: int = SEGMENT_BYTES,
        retry_after: float = 1.0,
    ) -> None:
        problems = config.problems()
        if problems:
            raise ValueError("invalid disk queue config: " + "; ".join(problems))
        self.config = config
        self.directory = Path(config.directory)
        self.segment_bytes = segment_bytes
        self.retry_after = retry_after
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd: int | None = lock_directory(self.directory)
        self._ready = threading.Condition()
        self._waiting: deque[_Entry] = deque()
        self._segments: dict[int, _Segment] = {}
        self._bytes = 0
        self._spans = 0
        self._closed = False
        self._write_fd: int | None = None
        self._write_segment = 0
        self._readers: dict[int, int] = {}
        self._recover()

    # -- the ExportQueue protocol --------------------------------------------------------------

    @property
    def spans(self) -> int:
        """Spans waiting to be taken (on disk; those taken but not settled are not counted)."""
        return self._spans

    @property
    def queued_bytes(self) -> int:
        """Bytes of records not settled yet, headers included."""
        return self._bytes

    def put(self, item: QueuedRequest) -> None:
        size = RECORD_HEADER.size + len(item.payload)
        with self._ready:
            if self._closed:
                raise Backpressure("exporter queue is closed", self.retry_after)
            if self._bytes and self._bytes + size > self.config.max_bytes:
                raise Backpressure(
                    f"disk queue {self.directory} is full ({self._bytes} of "
                    f"{self.config.max_bytes} bytes)",
                    self.retry_after,
                )
            segment = self._segment_for(size)
            offset = segment.size
            try:
                write_record(self._write_fd, item.payload, item.spans)  # type: ignore[arg-type]
                if self.config.sync:
                    os.fsync(self._write_fd)  # type: ignore[arg-type]
            except OSError as exc:
                self._abandon_write_segment(offset)
                raise Backpressure(
                    f"disk queue {self.directory} cannot write: {exc}", self.retry_after
                ) from None
            segment.size += size
            segment.unsettled += 1
            self._waiting.append(_Entry(self._write_segment, offset, len(item.payload), item.spans))
            self._bytes += size
            self._spans += item.spans
            self._ready.notify()

    def take(self, max_spans: int, max_bytes: int, timeout: float) -> list[QueuedRequest]:
        deadline = time.monotonic() + timeout
        with self._ready:
            while not self._waiting:
                left = deadline - time.monotonic()
                if self._closed or left <= 0:
                    return []
                self._ready.wait(left)
            batch = [self._read(self._waiting.popleft())]
            spans, size = batch[0].spans, len(batch[0].payload)
            while self._waiting:
                head = self._waiting[0]
                if spans + head.spans > max_spans or size + head.length > max_bytes:
                    break
                batch.append(self._read(self._waiting.popleft()))
                spans += head.spans
                size += head.length
            self._spans -= spans
            return batch

    def settle(self, batch: list[QueuedRequest], done: bool) -> None:
        if not done:
            return  # stays on disk, unsettled: the next start sends it again
        with self._ready:
            for item in batch:
                entry: _Entry = item.position  # type: ignore[assignment]
                segment = self._segments.get(entry.segment)
                if segment is None:
                    continue
                self._acknowledge(entry.segment, segment, entry.offset)
                segment.unsettled -= 1
                self._bytes -= RECORD_HEADER.size + entry.length
                if segment.unsettled == 0 and not segment.open:
                    self._delete(entry.segment)

    def close(self) -> None:
        """Refuse new items; what is not settled stays on disk for the next start."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()

    def drain(self) -> list[QueuedRequest]:
        """Release the files; nothing is returned, everything not settled stays on disk."""
        with self._ready:
            self._closed = True
            left = sum(s.unsettled for s in self._segments.values())
            if left:
                log.info(
                    "disk queue %s: %d requests (%d bytes) stay queued for the next start",
                    self.directory,
                    left,
                    self._bytes,
                )
            if self._write_fd is not None:
                os.close(self._write_fd)
                self._write_fd = None
            for number in list(self._segments):
                segment = self._segments[number]
                segment.open = False
                if segment.unsettled == 0:
                    self._delete(number)
                else:
                    self._close_files(number, segment)
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # releases the flock: another queue may open the directory
                self._lock_fd = None
            self._ready.notify_all()
        return []

    # -- files ---------------------------------------------------------------------------------

    def _recover(self) -> None:
        recovered = 0
        for path in sorted(self.directory.glob("*.seg")):
            try:
                number = int(path.stem)
            except ValueError:
                continue
            settled = _read_acks(path.with_suffix(".ack"))
            segment = _Segment(path)
            self._segments[number] = segment
            for offset, spans, payload in read_records(path):
                segment.size = offset + RECORD_HEADER.size + len(payload)
                if offset in settled:
                    continue
                self._waiting.append(_Entry(number, offset, len(payload), spans))
                segment.unsettled += 1
                self._bytes += RECORD_HEADER.size + len(payload)
                self._spans += spans
                recovered += 1
            if segment.unsettled == 0:
                self._delete(number)
            self._write_segment = max(self._write_segment, number)
        if recovered:
            log.info(
                "disk queue %s: %d requests (%d spans) left by an earlier run will be sent",
                self.directory,
                recovered,
                self._spans,
            )

    def _segment_for(self, size: int) -> _Segment:
        """The open segment, after starting a new one if this record would overfill it."""
        current = self._segments.get(self._write_segment)
        if self._write_fd is not None and current is not None:
            if current.size == 0 or current.size + size <= self.segment_bytes:
                return current
            os.close(self._write_fd)
            self._write_fd = None
            current.open = False
            if current.unsettled == 0:
                self._delete(self._write_segment)
        self._write_segment += 1
        path = self.directory / f"{self._write_segment:016d}.seg"
        self._write_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        segment = self._segments[self._write_segment] = _Segment(path)
        segment.open = True
        return segment

    def _abandon_write_segment(self, good_size: int) -> None:
        """After a failed write: cut the torn tail off and start the next record elsewhere."""
        fd, self._write_fd = self._write_fd, None
        if fd is not None:
            try:
                os.ftruncate(fd, good_size)
            except OSError:
                log.exception("disk queue %s: cannot truncate a failed write", self.directory)
            os.close(fd)
        segment = self._segments.get(self._write_segment)
        if segment is not None:
            segment.open = False
            if segment.unsettled == 0:
                self._delete(self._write_segment)

    def _read(self, entry: _Entry) -> QueuedRequest:
        fd = self._readers.get(entry.segment)
        if fd is None:
            fd = self._readers[entry.segment] = os.open(
                self._segments[entry.segment].path, os.O_RDONLY
            )
        payload = os.pread(fd, entry.length, entry.offset + RECORD_HEADER.size)
        return QueuedRequest(payload, entry.spans, entry)

    def _acknowledge(self, number: int, segment: _Segment, offset: int) -> None:
        if segment.ack_fd is None:
            segment.ack_fd = os.open(
                segment.path.with_suffix(".ack"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600
            )
        os.write(segment.ack_fd, _ACK.pack(offset))

    def _delete(self, number: int) -> None:
        segment = self._segments.pop(number)
        self._close_files(number, segment)
        for path in (segment.path, segment.path.with_suffix(".ack")):
            path.unlink(missing_ok=True)

    def _close_files(self, number: int, segment: _Segment) -> None:
        reader = self._readers.pop(number, None)
        if reader is not None:
            os.close(reader)
        if segment.ack_fd is not None:
            os.close(segment.ack_fd)
            segment.ack_fd = None


def _read_acks(path: Path) -> set[int]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return set()
    whole = len(data) - len(data) % _ACK.size
    return {offset for (offset,) in _ACK.iter_unpack(data[:whole])}
