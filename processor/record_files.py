"""Append-only record files: the framing, reading and directory lock shared by the exporters'
disk queue and the write-ahead log.

A record is a header (magic, CRC-32 of the payload, span count, payload length) and its payload.
Reading stops at the first torn or corrupt record: what follows a crash mid-write is not trusted.
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("spanledger.processor.record_files")

RECORD_HEADER = struct.Struct("<4sIIQ")
"""Magic, CRC-32 of the payload, span count, payload length."""
_MAGIC = b"SLQ1"


def write_record(fd: int, payload: bytes, spans: int) -> int:
    """Append one record to the file open as ``fd``; return the bytes written."""
    header = RECORD_HEADER.pack(_MAGIC, zlib.crc32(payload), spans, len(payload))
    data = memoryview(header + payload)
    written = 0
    while written < len(data):
        written += os.write(fd, data[written:])
    return written


def read_records(path: Path) -> Iterator[tuple[int, int, bytes]]:
    """``(offset, spans, payload)`` of each whole, intact record; stops at a torn or bad one."""
    with path.open("rb") as file:
        offset = 0
        while True:
            header = file.read(RECORD_HEADER.size)
            if len(header) < RECORD_HEADER.size:
                if header:
                    log.warning("%s: ignoring a torn record at byte %d", path, offset)
                return
            magic, crc, spans, length = RECORD_HEADER.unpack(header)
            payload = file.read(length) if magic == _MAGIC else b""
            if magic != _MAGIC or len(payload) != length or zlib.crc32(payload) != crc:
                log.warning("%s: ignoring a torn or corrupt record at byte %d", path, offset)
                return
            yield offset, spans, payload
            offset += RECORD_HEADER.size + length


def lock_directory(directory: Path) -> int:
    """Lock ``directory`` for one writer; the lock's file descriptor."""
    fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise ValueError(
            f"queue directory {directory} is in use by another exporter or process"
        ) from None
    return fd
