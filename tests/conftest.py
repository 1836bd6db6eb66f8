"""Shared fixtures: one LLM API stand-in for the whole session, cleared before each test; a
PostgreSQL server for the shared-ledger tests; the cost invariant checked on every trace any
processor of the session annotates; and memory limiters that measure their own processor.

Also a note at the end of a run naming the tests not marked ``slow`` that took longer than
``SLOW_SECONDS``, so the fast tier (``-m "not slow"``) stays fast. It never fails a run: a
loaded machine makes any test slow now and then.
"""

from __future__ import annotations

import itertools
import os
import re
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spanledger.processor import service
from spanledger.processor.intake import memory_limiter
from spanledger.processor.rollup import TraceAnnotator
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


COST_CHECK = Path(__file__).resolve().parent / "cost_check"
sys.path.insert(0, str(COST_CHECK))

import cost_invariant  # noqa: E402 - found through the folder just put on the path

_REPORTS = tempfile.mkdtemp(prefix="spanledger-cost-invariant-")
# Every processor this session starts (``spanledger serve`` in a subprocess) checks itself too.
os.environ["SPANLEDGER_COST_INVARIANT_DIR"] = _REPORTS
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(COST_CHECK), *filter(None, [os.environ.get("PYTHONPATH")])]
)


@pytest.fixture(autouse=True)
def limiter_measures_its_processor(monkeypatch: pytest.MonkeyPatch) -> None:
    """A processor started inside this test process limits the memory it grows by.

    The memory limiter reads the resident memory of its whole process. In ``spanledger serve``
    that is the processor's; here it also holds everything the test session has loaded, which
    grows over a run and would make processors of late tests refuse data. A limiter that is not
    given a reading of its own (the limiter tests give one) reads the growth since it was made.
    """

    def limiter(config: memory_limiter.MemoryLimiterConfig, **kwargs: Any) -> Any:
        if "read" not in kwargs:
            before = memory_limiter.resident_bytes() or 0

            def growth() -> int | None:
                now = memory_limiter.resident_bytes()
                return None if now is None else max(0, now - before)

            kwargs["read"] = growth
        return memory_limiter.MemoryLimiter(config, **kwargs)

    monkeypatch.setattr(service, "MemoryLimiter", limiter)


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


def _reported() -> list[str]:
    lines: list[str] = []
    for report in sorted(Path(_REPORTS).glob("*.txt")):
        lines += report.read_text(encoding="utf-8").splitlines()
        report.unlink()
    return lines


@pytest.fixture(autouse=True)
def cost_invariant_holds(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test during which a processor forwarded a trace whose ``gen_ai.usage.cost``
    does not add up to its ``spanledger.trace.cost`` (unless the test breaks pricing on purpose,
    marked ``broken_pricing``)."""
    if request.node.get_closest_marker("broken_pricing"):
        yield
        return
    _reported()
    found: list[str] = []
    undo = cost_invariant.install(TraceAnnotator, found.append)
    try:
        yield
    finally:
        undo()
    found += _reported()
    assert not found, "cost invariant broken:\n" + "\n".join(found)
