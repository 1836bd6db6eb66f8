"""The on-disk exporter queue: order, settling, recovery after a restart, bounds, exclusivity."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from reliability_support import build_request
from support.sinks import OtlpHttpBackend

from spanledger.processor.components import Backpressure
from spanledger.processor.config import load_config
from spanledger.processor.exporters import (
    DiskQueue,
    DiskQueueConfig,
    OtlpHttpExporter,
    OtlpHttpExporterConfig,
    QueuedRequest,
)
from spanledger.processor.record_files import RECORD_HEADER


def _item(number: int, size: int = 100) -> QueuedRequest:
    return QueuedRequest(bytes([number % 256]) * size, spans=number)


def test_items_come_back_in_order_and_settled_ones_are_gone_after_a_restart(
    tmp_path: Path,
) -> None:
    queue = DiskQueue(DiskQueueConfig(str(tmp_path)), segment_bytes=350)
    for number in range(1, 8):
        queue.put(_item(number))
    assert queue.spans == sum(range(1, 8))
    first = queue.take(max_spans=3, max_bytes=10_000, timeout=1)
    assert [item.spans for item in first] == [1, 2]  # 1 + 2 + 3 would pass max_spans
    queue.settle(first, done=True)
    second = queue.take(max_spans=100, max_bytes=250, timeout=1)
    assert [item.spans for item in second] == [3, 4]  # max_bytes stops the batch
    queue.settle(second, done=False)  # interrupted: stays for the next start
    assert queue.drain() == []
    assert len(list(tmp_path.glob("*.seg"))) >= 2  # small segments: several files

    again = DiskQueue(DiskQueueConfig(str(tmp_path)))
    items = again.take(max_spans=1000, max_bytes=10_000, timeout=1)
    assert [(item.spans, item.payload) for item in items] == [
        (number, _item(number).payload) for number in range(3, 8)
    ]
    again.settle(items, done=True)
    assert again.queued_bytes == 0
    assert not list(tmp_path.glob("*.seg"))  # fully settled segments are deleted
    again.drain()


def test_a_torn_tail_is_ignored_and_the_records_before_it_survive(tmp_path: Path) -> None:
    queue = DiskQueue(DiskQueueConfig(str(tmp_path)))
    queue.put(_item(1))
    queue.put(_item(2))
    queue.drain()
    (segment,) = tmp_path.glob("*.seg")
    with segment.open("ab") as file:  # a process killed in the middle of a write
        file.write(RECORD_HEADER.pack(b"SLQ1", 0, 3, 100) + b"\x03" * 40)

    again = DiskQueue(DiskQueueConfig(str(tmp_path)))
    items = again.take(max_spans=100, max_bytes=10_000, timeout=1)
    assert [item.spans for item in items] == [1, 2]
    again.drain()


def test_a_corrupt_record_stops_recovery_of_that_segment(tmp_path: Path) -> None:
    queue = DiskQueue(DiskQueueConfig(str(tmp_path)))
    queue.put(_item(1))
    queue.put(_item(2))
    queue.drain()
    (segment,) = tmp_path.glob("*.seg")
    data = bytearray(segment.read_bytes())
    data[RECORD_HEADER.size + 100 + RECORD_HEADER.size + 7] ^= 0xFF  # inside the 2nd payload
    segment.write_bytes(bytes(data))
    again = DiskQueue(DiskQueueConfig(str(tmp_path)))
    assert [i.spans for i in again.take(100, 10_000, timeout=1)] == [1]
    again.drain()


def test_a_full_queue_pushes_back_and_a_lone_large_item_is_still_taken(tmp_path: Path) -> None:
    queue = DiskQueue(DiskQueueConfig(str(tmp_path), max_bytes=300))
    queue.put(_item(1, size=1000))  # larger than the whole queue, but the queue is empty
    with pytest.raises(Backpressure) as caught:
        queue.put(_item(2))
    assert "is full" in str(caught.value)
    queue.settle(queue.take(10, 10_000, timeout=1), done=True)
    queue.put(_item(2))
    queue.put(_item(3))
    with pytest.raises(Backpressure):
        queue.put(_item(4))
    queue.close()
    with pytest.raises(Backpressure):
        queue.put(_item(5))
    queue.drain()


def test_two_queues_cannot_share_a_directory(tmp_path: Path) -> None:
    queue = DiskQueue(DiskQueueConfig(str(tmp_path)))
    with pytest.raises(ValueError, match="in use"):
        DiskQueue(DiskQueueConfig(str(tmp_path)))
    queue.drain()
    DiskQueue(DiskQueueConfig(str(tmp_path))).drain()  # free again once released


def test_take_waits_for_an_item_and_gives_up_after_its_timeout(tmp_path: Path) -> None:
    queue = DiskQueue(DiskQueueConfig(str(tmp_path)))
    started = time.monotonic()
    assert queue.take(10, 10_000, timeout=0.2) == []
    assert 0.15 < time.monotonic() - started < 2.0
    queue.drain()


def test_an_exporter_restarted_on_its_disk_queue_delivers_what_the_last_one_could_not(
    tmp_path: Path,
) -> None:
    backend = OtlpHttpBackend()
    backend.start()
    backend.stop()  # the port is known, nothing listens on it
    config = OtlpHttpExporterConfig(
        backend.endpoint,
        queue=DiskQueueConfig(str(tmp_path / "queue")),
        initial_backoff=0.05,
        max_backoff=0.2,
        timeout=1.0,
    )
    first = OtlpHttpExporter(config)
    for batch in range(5):
        first.export(build_request(range(batch * 4, batch * 4 + 4), calls=1))
    time.sleep(0.3)
    first.shutdown(0.3)
    assert first.stats.sent == 0
    assert first.stats.dropped == 0  # kept on disk, not dropped
    assert list((tmp_path / "queue").glob("*.seg"))

    backend.start()
    try:
        second = OtlpHttpExporter(config)
        assert backend.wait_for_distinct(20 * 2, timeout=10)
        second.shutdown(5)
        assert second.stats.sent == 40
        assert not list((tmp_path / "queue").glob("*.seg"))
    finally:
        backend.stop()


def test_the_queue_key_is_read_from_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "spanledger.yaml"
    path.write_text(
        "exporters:\n"
        "  - otlp_http:\n"
        "      endpoint: http://127.0.0.1:4318/v1/traces\n"
        "      queue: {directory: spool, max_bytes: 1048576, sync: true}\n"
        "service:\n"
        "  write_ahead: {directory: wal}\n"
    )
    config = load_config(path)
    queue = config.exporters[0].queue
    assert queue == DiskQueueConfig(str(tmp_path / "spool"), 1048576, True)
    assert config.service.write_ahead is not None
    assert config.service.write_ahead.directory == str(tmp_path / "wal")

    path.write_text("exporters: [{otlp_grpc: {endpoint: 127.0.0.1:4317, queue: {max_bytes: 0}}}]\n")
    with pytest.raises(Exception) as caught:
        load_config(path)
    assert "directory is required" in str(caught.value)
    assert "max_bytes must be at least 1" in str(caught.value)
