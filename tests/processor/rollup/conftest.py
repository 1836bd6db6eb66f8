"""Fixtures for the rollup: a hand-moved clock, recording exporter and sink, a pipeline factory."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from support.sinks import RecordingSink, TraceRecorder

from spanledger.processor.pipeline.core import Pipeline
from spanledger.processor.pipeline.fanout import FanOut
from spanledger.processor.pricing import PriceBook, PricingConfig
from spanledger.processor.rollup import RollupConfig
from spanledger.processor.usage import extract_usage

TAG_KEYS = ("customer", "feature", "team", "env")


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def exporter() -> TraceRecorder:
    return TraceRecorder()


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def make_pipeline(
    clock: FakeClock, exporter: TraceRecorder, sink: RecordingSink
) -> Iterator[Callable[..., Pipeline]]:
    """Build a pipeline on the fake clock with the real usage reader and price book.

    Keyword arguments other than ``markup_percent`` go to ``RollupConfig``.
    """
    built: list[Pipeline] = []

    def make(markup_percent: float = 0, **rollup: object) -> Pipeline:
        pipeline = Pipeline(
            RollupConfig(**rollup),  # type: ignore[arg-type]
            TAG_KEYS,
            PriceBook(PricingConfig(markup_percent=markup_percent)),
            FanOut([exporter], [sink]),
            clock=clock,
            extract_usage=extract_usage,
        )
        built.append(pipeline)
        return pipeline

    yield make
    for pipeline in built:
        pipeline.shutdown(1.0)
        pipeline.output.shutdown(1.0)
