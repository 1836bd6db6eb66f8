"""Shared fixtures: one LLM API stand-in for the whole session, cleared before each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from spanledger.standin import StandIn


@pytest.fixture(scope="session")
def standin() -> Iterator[StandIn]:
    """A running :class:`StandIn` shared by the session (use ``llm`` for a clean one per test)."""
    with StandIn() as server:
        yield server


@pytest.fixture
def llm(standin: StandIn) -> StandIn:
    """The session's stand-in with no recorded requests and no queued scenarios."""
    standin.clear()
    return standin
