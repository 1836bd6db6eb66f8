"""Fixtures for the end-to-end tests: Arize Phoenix as the tracing backend.

Phoenix takes tens of seconds to import and start, so it is launched as soon as collection
shows that a test needs it, and the ``phoenix`` fixture only waits for it to be ready.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .phoenix_server import Phoenix

_started: list[Phoenix] = []
_workdir: list[tempfile.TemporaryDirectory[str]] = []


def _launch() -> Phoenix:
    if not _started:
        workdir = tempfile.TemporaryDirectory(prefix="spanledger-phoenix-")
        _workdir.append(workdir)
        _started.append(Phoenix(Path(workdir.name)))
    return _started[0]


def pytest_collection_finish(session: pytest.Session) -> None:
    if any("phoenix" in getattr(item, "fixturenames", ()) for item in session.items):
        _launch()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    for phoenix in _started:
        phoenix.stop()
    for workdir in _workdir:
        workdir.cleanup()


@pytest.fixture(scope="session")
def phoenix() -> Iterator[Phoenix]:
    """A running Phoenix on free 127.0.0.1 ports, with an empty database."""
    server = _launch()
    server.wait_ready()
    yield server
