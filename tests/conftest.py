"""Shared fixtures: one LLM API stand-in for the whole session, cleared before each test; and
the cost invariant checked on every trace any processor of the session annotates."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from spanledger.processor.rollup import TraceAnnotator
from spanledger.standin import StandIn

COST_CHECK = Path(__file__).resolve().parent / "cost_check"
sys.path.insert(0, str(COST_CHECK))

import cost_invariant  # noqa: E402 - found through the folder just put on the path

_REPORTS = tempfile.mkdtemp(prefix="spanledger-cost-invariant-")
# Every processor this session starts (``spanledger serve`` in a subprocess) checks itself too.
os.environ["SPANLEDGER_COST_INVARIANT_DIR"] = _REPORTS
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(COST_CHECK), *filter(None, [os.environ.get("PYTHONPATH")])]
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


def _reported() -> list[str]:
    lines: list[str] = []
    for report in sorted(Path(_REPORTS).glob("*.txt")):
        lines += report.read_text(encoding="utf-8").splitlines()
        report.unlink()
    return lines


@pytest.fixture(autouse=True)
def cost_invariant_holds() -> Iterator[None]:
    """Fail the test during which a processor forwarded a trace whose ``gen_ai.usage.cost``
    does not add up to its ``spanledger.trace.cost``."""
    _reported()
    found: list[str] = []
    undo = cost_invariant.install(TraceAnnotator, found.append)
    try:
        yield
    finally:
        undo()
    found += _reported()
    assert not found, "cost invariant broken:\n" + "\n".join(found)
