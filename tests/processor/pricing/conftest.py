"""Shared fixtures of the pricing tests: a price table, a price book, a real LLM stand-in."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from spanledger.processor.pricing import PriceBook, PriceTable
from spanledger.standin import StandIn

SEPTEMBER_2025 = int(datetime(2025, 9, 1, 12, tzinfo=UTC).timestamp()) * 1_000_000_000
"""A start time at which the published prices quoted in these tests were in force."""


@pytest.fixture(scope="session")
def table() -> PriceTable:
    return PriceTable()


@pytest.fixture(scope="session")
def book(table: PriceTable) -> PriceBook:
    return PriceBook(table=table)


@pytest.fixture(scope="module")
def standin() -> Iterator[StandIn]:
    with StandIn() as server:
        yield server


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()
