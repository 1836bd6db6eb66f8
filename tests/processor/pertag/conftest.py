"""Fixtures for the per-tag cost tests: a real Prometheus server and ledger files."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .prometheus_server import PrometheusServer


@pytest.fixture
def start_prometheus(tmp_path: Path) -> Iterator[Callable[..., PrometheusServer]]:
    """Start Prometheus scraping the given ``host:port`` targets; stopped after the test."""
    started: list[PrometheusServer] = []

    def start(*targets: str) -> PrometheusServer:
        server = PrometheusServer(tmp_path / f"prometheus-{len(started)}", list(targets))
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    return tmp_path / "ledger" / "spanledger.db"
