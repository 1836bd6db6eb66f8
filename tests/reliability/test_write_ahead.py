"""The write-ahead log: written before the answer, deleted once settled, replayed after a crash."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from reliability_support import build_request
from support.sinks import TraceRecorder

from spanledger.processor.components import Backpressure
from spanledger.processor.intake.write_ahead import WriteAhead, WriteAheadConfig
from spanledger.processor.pipeline.core import Pipeline
from spanledger.processor.pipeline.fanout import FanOut
from spanledger.processor.pricing import PriceBook, PricingConfig
from spanledger.processor.rollup import RollupConfig

BOOK = PriceBook(PricingConfig())


def distinct_spans(recorder: TraceRecorder) -> int:
    return len({(span.trace_id, span.span_id) for span in recorder.spans()})


def _pipeline(recorder: TraceRecorder) -> Pipeline:
    return Pipeline(RollupConfig(trace_idle=60, root_grace=60), [], BOOK, FanOut([recorder], []))


def test_requests_are_logged_until_they_leave_the_pipeline(tmp_path: Path) -> None:
    recorder = TraceRecorder()
    pipeline = _pipeline(recorder)
    log = WriteAhead(WriteAheadConfig(str(tmp_path)), pipeline)
    for first in range(0, 30, 10):
        log.consume(build_request(range(first, first + 10), 2))
    assert log.logged_bytes > 0
    assert log.retire() == 0  # every trace is still waiting for its rollup
    assert list(tmp_path.glob("*.wal"))

    pipeline.flush_all()
    assert distinct_spans(recorder) == 30 * 3
    assert log.retire() >= 1
    assert log.logged_bytes == 0
    assert not list(tmp_path.glob("*.wal"))
    log.close()


def test_a_full_log_pushes_back_until_the_pipeline_catches_up(tmp_path: Path) -> None:
    recorder = TraceRecorder()
    pipeline = _pipeline(recorder)
    log = WriteAhead(WriteAheadConfig(str(tmp_path), max_bytes=1000), pipeline)
    log.consume(build_request(range(5), 2))  # one request may overshoot the bound
    with pytest.raises(Backpressure, match=r"write-ahead log .* is full"):
        log.consume(build_request(range(5, 10), 2))
    assert pipeline.stats["spans_received"] == 15  # the refused request never reached it
    pipeline.flush_all()
    log.consume(build_request(range(5, 10), 2))
    log.close()


def test_a_crashed_process_log_is_replayed_into_the_next_pipeline(tmp_path: Path) -> None:
    crash = textwrap.dedent(
        f"""
        import os, sys
        sys.path[:0] = [{str(Path(__file__).parent)!r}, {str(Path(__file__).parents[1])!r}]
        from reliability_support import build_request
        from spanledger.processor.pipeline.fanout import FanOut
        from spanledger.processor.pipeline.core import Pipeline
        from spanledger.processor.pricing import PriceBook, PricingConfig
        from spanledger.processor.rollup import RollupConfig
        from spanledger.processor.intake.write_ahead import WriteAhead, WriteAheadConfig

        pipeline = Pipeline(RollupConfig(trace_idle=60, root_grace=60), [],
                            PriceBook(PricingConfig()), FanOut([], []))
        log = WriteAhead(WriteAheadConfig({str(tmp_path)!r}), pipeline)
        for first in range(0, 40, 10):
            log.consume(build_request(range(first, first + 10), 2))
        os._exit(0)  # dies holding every trace, without closing anything
        """
    )
    subprocess.run([sys.executable, "-c", crash], check=True, timeout=60)
    assert list(tmp_path.glob("*.wal"))

    recorder = TraceRecorder()
    pipeline = _pipeline(recorder)
    log = WriteAhead(WriteAheadConfig(str(tmp_path)), pipeline)
    assert log.replay() == 4
    assert pipeline.stats["spans_held"] == 40 * 3
    assert log.retire() == 0  # kept until the replayed spans have left the pipeline
    pipeline.flush_all()
    assert distinct_spans(recorder) == 40 * 3
    log.close()
    assert not list(tmp_path.glob("*.wal"))


def test_a_torn_last_record_is_skipped_on_replay(tmp_path: Path) -> None:
    recorder = TraceRecorder()
    log = WriteAhead(WriteAheadConfig(str(tmp_path)), _pipeline(recorder))
    log.consume(build_request(range(3), 1))
    log.consume(build_request(range(3, 6), 1))
    (segment,) = tmp_path.glob("*.wal")
    log.close()  # nothing flushed: the segment is kept
    data = segment.read_bytes()
    segment.write_bytes(data[: len(data) - 10])

    pipeline = _pipeline(recorder)
    again = WriteAhead(WriteAheadConfig(str(tmp_path)), pipeline)
    assert again.replay() == 1
    assert pipeline.stats["spans_held"] == 3 * 2
    pipeline.flush_all()
    again.close()
