"""SIGTERM drains within the deadline; secrets from headers and config never reach the log."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from reliability_support import Processor, build_request, post, send_until_accepted
from support.ports import free_port
from support.sinks import OtlpHttpBackend
from support.waiting import wait_for

CALLS = 3


def _config(port: int, backend: OtlpHttpBackend, **service: object) -> dict[str, object]:
    return {
        "receivers": {"otlp": {"grpc": None, "http": {"endpoint": f"127.0.0.1:{port}"}}},
        "exporters": [{"otlp_http": {"endpoint": backend.endpoint, "initial_backoff": "100ms"}}],
        "rollup": {"trace_idle": "30s", "root_grace": "30s", "max_wait": "60s"},
        "ledger": {"path": "ledger.db"},
        "metrics": {"prometheus": None},
        "service": {"shutdown_timeout": "5s", **service},
    }


@pytest.mark.slow
def test_sigterm_flushes_the_traces_waiting_for_rollup_and_exits_in_time(tmp_path: Path) -> None:
    backend = OtlpHttpBackend()
    backend.start()
    port = free_port()
    processor = Processor(tmp_path, _config(port, backend))
    try:
        processor.start(port)
        url = f"http://127.0.0.1:{port}/v1/traces"
        for first in range(0, 50, 10):
            send_until_accepted(
                url, build_request(range(first, first + 10), CALLS).SerializeToString()
            )
        time.sleep(0.5)
        assert backend.distinct() == 0  # every trace is still waiting for its rollup

        code, seconds = processor.terminate()
        assert code == 0
        assert seconds < 5.0
        assert backend.distinct() == 50 * (CALLS + 1)
        roots = [s for s in backend.distinct_spans() if "spanledger.trace.cost" in s.attributes]
        assert len(roots) == 50
        assert "received SIGTERM" in processor.log()
    finally:
        processor.ensure_stopped()
        backend.stop()


@pytest.mark.slow
def test_sigterm_with_an_unreachable_backend_still_exits_by_the_deadline(tmp_path: Path) -> None:
    backend = OtlpHttpBackend()
    backend.start()
    backend.stop()  # nothing listens: every export attempt fails
    port = free_port()
    processor = Processor(tmp_path, _config(port, backend, shutdown_timeout="2s"))
    try:
        processor.start(port)
        url = f"http://127.0.0.1:{port}/v1/traces"
        send_until_accepted(url, build_request(range(10), CALLS).SerializeToString())
        code, seconds = processor.terminate()
        assert code == 0
        assert seconds < 4.0
        assert "40 queued spans dropped" in processor.log() or "40 spans dropped" in processor.log()
    finally:
        processor.ensure_stopped()


@pytest.mark.slow
def test_tokens_and_exporter_headers_never_appear_in_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver_token = "receiver-token-3f9a1c"
    exporter_secret = "exporter-secret-77d2e0"
    wrong_token = "guessed-token-0b5e44"
    backend = OtlpHttpBackend()
    backend.start()
    backend.stop()  # the exporter fails and logs its failures
    port = free_port()
    config = _config(port, backend)
    config["receivers"] = {
        "otlp": {
            "grpc": None,
            "http": {"endpoint": f"127.0.0.1:{port}", "bearer_token": "${env:RECEIVER_TOKEN}"},
        }
    }
    config["exporters"] = [
        {
            "otlp_http": {
                "endpoint": backend.endpoint,
                "headers": {"authorization": f"Bearer {exporter_secret}"},
                "initial_backoff": "100ms",
            }
        }
    ]
    config["rollup"] = {"trace_idle": "100ms", "root_grace": "100ms"}
    processor = Processor(tmp_path, config)
    monkeypatch.setenv("RECEIVER_TOKEN", receiver_token)  # read through ${env:...}
    try:
        processor.start(port, 20.0, "--log-level", "DEBUG")
        url = f"http://127.0.0.1:{port}/v1/traces"
        body = build_request(range(3), CALLS).SerializeToString()
        assert post(url, body)[0] == 401
        assert post(url, body, Authorization=f"Bearer {wrong_token}")[0] == 401
        assert post(url, body, Authorization=f"Bearer {receiver_token}")[0] == 200
        wait_for(lambda: "Connection refused" in processor.log(), "the exporter's failure logged")
        processor.terminate()
        log = processor.log()
        assert "DEBUG" in log and "Connection refused" in log
        for secret in (receiver_token, exporter_secret, wrong_token):
            assert secret not in log
    finally:
        processor.ensure_stopped()
