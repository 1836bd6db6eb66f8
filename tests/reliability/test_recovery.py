"""Quick recovery: after a backend outage long enough for the retries to reach their longest
wait, delivery resumes within 10 s of the backend's return, with the default retry settings."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from reliability_support import build_request, post
from support.sinks import OtlpHttpBackend

from spanledger.processor.config import Config
from spanledger.processor.exporters import OtlpHttpExporterConfig
from spanledger.processor.exporters.config import DEFAULT_MAX_BACKOFF
from spanledger.processor.receivers import HttpReceiverConfig
from spanledger.processor.rollup import RollupConfig
from spanledger.processor.service import Service
from spanledger.processor.sinks.ledger import LedgerConfig
from spanledger.processor.sinks.metrics import MetricsConfig

OUTAGE = 14.0
"""Seconds down: the waits between retries (1, 2, 4, 5... s with jitter) reach the cap."""


@pytest.mark.slow
def test_delivery_resumes_within_ten_seconds_of_the_backends_return(tmp_path: Path) -> None:
    assert DEFAULT_MAX_BACKOFF <= 5.0
    backend = OtlpHttpBackend()
    backend.start()
    backend.stop()  # its port is known; nothing listens there during the outage
    config = Config(
        grpc=None,
        http=HttpReceiverConfig("127.0.0.1:0"),
        exporters=[OtlpHttpExporterConfig(backend.endpoint)],  # default retry settings
        rollup=RollupConfig(trace_idle=0.1, root_grace=0.1),
        ledger=LedgerConfig(path=str(tmp_path / "ledger.db")),
        metrics=MetricsConfig(prometheus_endpoint=None),
    )
    service = Service(config)
    service.start()
    assert service.http is not None
    try:
        url = f"http://127.0.0.1:{service.http.port}/v1/traces"
        assert post(url, build_request(range(0, 10), calls=2).SerializeToString())[0] == 200
        time.sleep(OUTAGE)
        exporter = service.fanout.exporters[0] if service.fanout else None
        assert exporter is not None and exporter.stats.retried >= 4  # it kept trying
        assert backend.distinct() == 0
        backend.start()  # back, on the same port
        returned = time.monotonic()
        assert backend.wait_for_distinct(30, timeout=15)
        resumed = time.monotonic() - returned
        print(f"delivery resumed {resumed:.2f}s after the backend returned")
        assert resumed < 10.0, f"delivery resumed {resumed:.1f}s after the backend returned"
    finally:
        service.stop()
        backend.stop()
