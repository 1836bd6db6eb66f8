"""Shared fixtures: one LLM API stand-in for the whole session, cleared before each test, and a
PostgreSQL server for the shared-ledger tests.

Also a note at the end of a run naming the tests not marked ``slow`` that took longer than
``SLOW_SECONDS``, so the fast tier (``-m "not slow"``) stays fast. It never fails a run: a
loaded machine makes any test slow now and then.
"""

from __future__ import annotations

import itertools
import re
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spanledger.standin import StandIn

SLOW_SECONDS = 5.0
"""A test taking longer than this (setup, call and teardown) belongs in the slow tier."""

_unmarked_seconds: defaultdict[str, float] = defaultdict(float)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "slow" not in report.keywords:
        _unmarked_seconds[report.nodeid] += report.duration


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    over = sorted(
        (
            (seconds, nodeid)
            for nodeid, seconds in _unmarked_seconds.items()
            if seconds > SLOW_SECONDS
        ),
        reverse=True,
    )
    if over:
        terminalreporter.write_sep("-", f"not marked slow, yet over {SLOW_SECONDS:g} s")
        for seconds, nodeid in over:
            terminalreporter.write_line(f"{seconds:6.1f} s  {nodeid}")
        terminalreporter.write_line(
            "Unless the machine was busy, mark them @pytest.mark.slow or make them faster."
        )


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


POSTGRES_SCRIPTS = Path(__file__).resolve().parents[1] / "scripts" / "postgres"


def postgres_servers() -> Any:
    """The module ``scripts/postgres/pgserver.py`` (throw-away PostgreSQL servers)."""
    if str(POSTGRES_SCRIPTS) not in sys.path:
        sys.path.insert(0, str(POSTGRES_SCRIPTS))
    import pgserver

    return pgserver


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    """One real PostgreSQL server for the session, on a free 127.0.0.1 port, with password
    authentication (``.password``, ``.password_file``); removed at the end."""
    server = postgres_servers().temporary_server()
    yield server
    server.remove()


@pytest.fixture
def postgres_url(postgres_server: Any, request: pytest.FixtureRequest) -> str:
    """A new, empty database on the session's server: its URL, without the password."""
    name = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:40]
    return postgres_server.create_database(f"t{next(_DATABASES)}_{name}")


_DATABASES = itertools.count(1)
