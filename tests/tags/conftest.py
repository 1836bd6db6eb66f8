"""Fixtures for the tag tests (helpers in ``tag_pipeline``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.sinks import OtlpHttpBackend
from tag_pipeline import Echo, Pipeline, echo_server, installed_pipeline


@pytest.fixture
def pipeline(request: pytest.FixtureRequest) -> Iterator[Pipeline]:
    """The pipeline with the ``SPANLEDGER_*`` settings given by indirect parametrisation."""
    with installed_pipeline(getattr(request, "param", {})) as installed:
        yield installed


@pytest.fixture
def otlp_sink() -> Iterator[OtlpHttpBackend]:
    sink = OtlpHttpBackend().start()
    yield sink
    sink.stop()


@pytest.fixture
def echo() -> Iterator[Echo]:
    """A local server recording the headers of each request it receives."""
    with echo_server() as server:
        yield server
