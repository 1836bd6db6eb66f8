"""Fixtures for the tag tests (helpers in ``tag_pipeline``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tag_pipeline import Echo, Pipeline, echo_server, installed_pipeline
from tag_sink import OtlpSink


@pytest.fixture
def pipeline(request: pytest.FixtureRequest) -> Iterator[Pipeline]:
    """The pipeline with the ``SPANLEDGER_*`` settings given by indirect parametrisation."""
    with installed_pipeline(getattr(request, "param", {})) as installed:
        yield installed


@pytest.fixture
def otlp_sink() -> Iterator[OtlpSink]:
    sink = OtlpSink()
    yield sink
    sink.close()


@pytest.fixture
def echo() -> Iterator[Echo]:
    """A local server recording the headers of each request it receives."""
    with echo_server() as server:
        yield server
