"""SIGKILL during load against a real PostgreSQL ledger, with the write-ahead log: while the
database is up, while it is slow (calls wait in the ledger's memory queue), and while it is down
(the processor restarts before the database does). The restarts replay what the log held, so
calls reach the database twice; the last also writes what the killed processor had spilled to
disk while the database was away. ``spanledger report`` equals the traffic sent, to the exact
decimal (without the ledger's part in retiring the log, 360 calls went missing here)."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from decimal import Decimal
from pathlib import Path

import pgserver
import psycopg
import pytest
from reliability_support import Processor, build_request, chunks, send_until_accepted
from support.ports import free_port

from .configs import SPANLEDGER, password_file
from .costs import exact_cost

CALLS = 3
TRACES = 1200
TRACES_PER_REQUEST = 10


def report(processor: Processor) -> dict[str, Decimal]:
    result = subprocess.run(
        [*SPANLEDGER, "report", "--config", str(processor.config_path), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    (row,) = json.loads(result.stdout, parse_float=Decimal)
    return row


@pytest.mark.slow
def test_sigkill_with_the_database_up_and_down_loses_and_doubles_nothing(tmp_path: Path) -> None:
    server = pgserver.temporary_server("spanledger-pg-kill-")
    try:
        port = free_port()
        ledger_url = server.create_database("ledger")
        processor = Processor(
            tmp_path,
            {
                "receivers": {"otlp": {"grpc": None, "http": {"endpoint": f"127.0.0.1:{port}"}}},
                "rollup": {"trace_idle": "500ms", "root_grace": "300ms"},
                "metrics": {"prometheus": None},
                "ledger": {
                    "url": ledger_url,
                    "password_file": password_file(tmp_path, server),
                    "queue": {"directory": "ledger-queue", "memory_rows": 1000},
                },
                "service": {"shutdown_timeout": "5s", "write_ahead": {"directory": "wal"}},
            },
        )
        url = f"http://127.0.0.1:{port}/v1/traces"

        def send(traces: range) -> None:
            for batch in chunks(traces, TRACES_PER_REQUEST):
                body = build_request(batch, CALLS).SerializeToString()
                send_until_accepted(url, body, timeout=90)
                time.sleep(0.15)

        sender = threading.Thread(target=send, args=(range(TRACES),))
        processor.start(port)
        try:
            sender.start()
            time.sleep(2.5)
            processor.kill()  # the database is up: calls in flight and in the ledger's queue
            assert list((tmp_path / "wal").glob("*.wal"))
            processor.start(port)
            time.sleep(1.5)
            # The database turns slow: a lock holds every write, calls pile up in memory.
            with psycopg.connect(ledger_url, password=server.password) as blocker:
                blocker.execute("LOCK TABLE spanledger_calls_daily IN ACCESS EXCLUSIVE MODE")
                time.sleep(2.0)
                processor.kill()  # calls only in the ledger's memory queue: the log keeps them
                processor.start(port)
                time.sleep(0.5)
                blocker.rollback()
            time.sleep(1.5)
            server.stop("fast")
            time.sleep(1.5)
            processor.kill()  # the database is down: calls in the spill files and the log
            spilled = list((tmp_path / "ledger-queue").glob("*.seg"))
            processor.start(port)  # starts without its database, queues
            time.sleep(1.5)
            server.start()
            sender.join(120)
            assert not sender.is_alive()
            assert spilled, "the killed processor had spilled nothing while the database was down"

            code, _ = processor.terminate()
            assert code == 0, processor.log()
            log = processor.log()
            assert log.count("replayed") >= 2, log  # the first two restarts replayed the log
            assert "left on disk by an earlier run" in log, log  # the last, the spill files
            row = report(processor)
            assert row["calls"] == TRACES * CALLS
            assert row["cost_usd"] == exact_cost(range(TRACES), CALLS)
            assert not list((tmp_path / "wal").glob("*.wal"))
            assert not list((tmp_path / "ledger-queue").glob("*.seg"))
        finally:
            processor.ensure_stopped()
            sender.join(120)
    finally:
        server.remove()
