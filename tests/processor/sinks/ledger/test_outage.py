"""The database goes away, or turns slow, while ``spanledger serve`` takes traffic: calls wait
(on disk beyond the memory bound), the lag metric shows them, and when the real PostgreSQL
server is back (stopped and started with pg_ctl on the same port) every call is in the ledger,
to the exact decimal."""

from __future__ import annotations

import re
import threading
import time
import urllib.request
from decimal import Decimal
from pathlib import Path

import pgserver
import psycopg
import pytest
from reliability_support import Processor, build_request, chunks, send_until_accepted
from support.ports import free_port

from spanledger.processor.sinks.ledger.postgres import PostgresLedger

from .configs import password_file
from .costs import exact_cost

CALLS = 3
PENDING = "spanledger_ledger_pending"
TRACES_PER_REQUEST = 10


def metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    found = re.search(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+-]+)$", text, re.MULTILINE)
    assert found, f"{name} not in /metrics:\n{text}"
    return float(found.group(1))


def ledger_calls(url: str, password: str) -> tuple[int, Decimal]:
    with PostgresLedger(url, password=password) as ledger:
        (total,) = ledger.aggregate()
    return total.calls, total.cost_usd


def wait_until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.slow
def test_calls_wait_out_a_stopped_and_a_slow_database(tmp_path: Path) -> None:
    server = pgserver.temporary_server("spanledger-pg-outage-")
    try:
        url = server.create_database("ledger")
        port, metrics_port = free_port(), free_port()
        processor = Processor(
            tmp_path,
            {
                "receivers": {"otlp": {"grpc": None, "http": {"endpoint": f"127.0.0.1:{port}"}}},
                "rollup": {"trace_idle": "300ms", "root_grace": "200ms"},
                "metrics": {"prometheus": {"endpoint": f"127.0.0.1:{metrics_port}"}},
                "ledger": {
                    "url": url,
                    "password_file": password_file(tmp_path, server),
                    "queue": {"memory_rows": 300, "directory": "ledger-queue"},
                },
            },
        )
        http = f"http://127.0.0.1:{port}/v1/traces"

        def send(traces: range, pause: float = 0.0) -> None:
            for batch in chunks(traces, TRACES_PER_REQUEST):
                body = build_request(batch, CALLS).SerializeToString()
                send_until_accepted(http, body, timeout=60)
                time.sleep(pause)

        def lagging(rows: int, seconds: float, what: str) -> None:
            """The metrics show at least ``rows`` waiting, the oldest for ``seconds`` or more."""
            wait_until(lambda: metric(metrics_port, PENDING) >= rows, 30, what)
            time.sleep(seconds + 0.5)
            assert metric(metrics_port, "spanledger_ledger_lag_seconds") >= seconds

        def drained(traces: range, what: str) -> None:
            """Nothing waits any more and the ledger holds exactly the calls of ``traces``."""
            wait_until(lambda: metric(metrics_port, PENDING) == 0, 30, what)
            expected = (len(traces) * CALLS, exact_cost(traces, CALLS))
            assert ledger_calls(url, server.password) == expected

        processor.start(port)
        try:
            send(range(0, 100))
            wait_until(lambda: ledger_calls(url, server.password)[0] == 300, 20, "first calls")

            # The database stops while traffic goes on.
            server.stop("fast")
            sender = threading.Thread(target=send, args=(range(100, 500), 0.05))
            sender.start()
            lagging(600, 1.0, "calls waiting while the database is down")
            assert list((tmp_path / "ledger-queue").glob("*.seg")), "nothing spilled to disk"
            sender.join(60)
            assert not sender.is_alive()
            assert "cannot write" in processor.log()
            server.start()
            drained(range(500), "the queue to drain once the database is back")
            assert "writing again" in processor.log()

            # The database is slow: a long lock holds every write for a few seconds.
            with psycopg.connect(url, password=server.password) as blocker:
                blocker.execute("LOCK TABLE spanledger_calls_daily IN ACCESS EXCLUSIVE MODE")
                send(range(500, 600))
                lagging(1, 1.0, "calls waiting behind the slow database")
                blocker.rollback()
            drained(range(600), "the queue to drain once the database answers")

            code, _ = processor.terminate()
            assert code == 0
            assert not list((tmp_path / "ledger-queue").glob("*.seg"))
        finally:
            processor.ensure_stopped()
    finally:
        server.remove()
