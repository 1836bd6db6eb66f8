"""The backend stops for 30 s and the processor is SIGKILLed mid-stream: nothing accepted is lost.

``spanledger serve`` runs as a real subprocess with a write-ahead log and a disk queue on its
OTLP/HTTP exporter; the backend is a real OTLP/HTTP server in this process, stopped and started
again on the same port. The sender behaves like an OTLP client: a request counts as accepted when
it was answered 200, and anything else (connection refused while the processor restarts, 503) is
retried.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest
from reliability_support import (
    SPANLEDGER,
    Processor,
    build_request,
    chunks,
    expected_cost,
    send_until_accepted,
)
from support.ports import free_port
from support.sinks import OtlpHttpBackend

OUTAGE_SECONDS = 30.0
CALLS = 3
SPANS_PER_TRACE = CALLS + 1
TRACES_PER_REQUEST = 10


def _config(port: int, backend: OtlpHttpBackend) -> dict[str, object]:
    return {
        "receivers": {"otlp": {"grpc": None, "http": {"endpoint": f"127.0.0.1:{port}"}}},
        "exporters": [
            {
                "otlp_http": {
                    "endpoint": backend.endpoint,
                    "queue": {"directory": "queue", "max_bytes": 64 * 1024 * 1024},
                    "timeout": "2s",
                    "initial_backoff": "200ms",
                    "max_backoff": "1s",
                    "max_elapsed": "10m",
                }
            }
        ],
        "rollup": {"trace_idle": "1s", "root_grace": "500ms"},
        "ledger": {"path": "ledger.db"},
        "service": {"shutdown_timeout": "5s", "write_ahead": {"directory": "wal"}},
    }


def _send(url: str, traces: range, pause: float = 0.0) -> None:
    for batch in chunks(traces, TRACES_PER_REQUEST):
        send_until_accepted(url, build_request(batch, CALLS).SerializeToString(), timeout=40)
        time.sleep(pause)


@pytest.mark.slow
def test_backend_outage_and_sigkill_lose_nothing(tmp_path: Path) -> None:
    backend = OtlpHttpBackend()
    backend.start()
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1/traces"
    processor = Processor(tmp_path, _config(port, backend))
    try:
        processor.start(port)

        # The backend is up: the first traces go straight through.
        _send(url, range(0, 100))
        assert backend.wait_for_distinct(100 * SPANS_PER_TRACE, timeout=15), processor.log()

        backend.stop()
        outage_started = time.monotonic()

        # Traffic goes on while the backend is down; mid-stream, the processor is SIGKILLed
        # and started again while the sender keeps retrying what was not answered.
        sender = threading.Thread(target=_send, args=(url, range(100, 600), 0.1))
        sender.start()
        time.sleep(2.0)
        processor.kill()
        killed_queue = sorted(p.name for p in (tmp_path / "queue").glob("*.seg"))
        killed_wal = sorted(p.name for p in (tmp_path / "wal").glob("*.wal"))
        processor.start(port)
        sender.join(60)
        assert not sender.is_alive()
        assert killed_queue, "the exporter queue held nothing on disk when the processor died"
        assert killed_wal, "the write-ahead log held nothing when the processor died"
        assert backend.distinct() == 100 * SPANS_PER_TRACE  # the backend is still down
        assert "replayed" in processor.log()  # the restart fed the logged requests back

        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - outage_started)))
        backend.start()  # same port as before
        total = 600 * SPANS_PER_TRACE
        assert backend.wait_for_distinct(total, timeout=20), (backend.distinct(), processor.log())

        assert backend.distinct() == total
        assert backend.cost() == expected_cost(range(600), CALLS)
        report = subprocess.run(
            [*SPANLEDGER, "report", "--config", str(processor.config_path), "--format", "json"],
            capture_output=True,
            text=True,
            check=True,
            cwd=tmp_path,
        )
        (row,) = json.loads(report.stdout)
        assert row["calls"] == 600 * CALLS
        assert abs(Decimal(str(row["cost_usd"])) - expected_cost(range(600), CALLS)) < Decimal(
            "1e-9"
        )

        code, seconds = processor.terminate()
        assert code == 0
        assert seconds < 6.0
        assert not list((tmp_path / "wal").glob("*.wal"))
        assert not list((tmp_path / "queue").glob("*.seg"))
        print(
            f"accepted {total} spans, delivered {backend.distinct()} distinct "
            f"({backend.deliveries - backend.distinct()} duplicate deliveries), "
            f"cost {backend.cost()}"
        )
    finally:
        processor.ensure_stopped()
        backend.stop()
