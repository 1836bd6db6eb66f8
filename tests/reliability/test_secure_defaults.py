"""Secure by default: nothing listens beyond loopback without authentication unless told so, tokens
guard spend, a webhook without a secret is pointed out, and secrets never reach logs or errors."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from reliability_support import post
from support.ports import free_port

from spanledger.processor import redaction
from spanledger.processor.cli import main
from spanledger.processor.config import Config, load_config
from spanledger.processor.receivers import GrpcReceiverConfig, HttpReceiverConfig
from spanledger.processor.service import Service
from spanledger.processor.sinks.budgets import BudgetsConfig, BudgetSink, SpendLimit, StatusConfig
from spanledger.processor.sinks.metrics import MetricsConfig, MetricsSink
from spanledger.semconv import DEFAULT_TAG_KEYS

SERVE = [sys.executable, "-m", "spanledger.processor.cli", "serve", "--config"]
BUDGET = {"limits": [{"name": "all", "amount_usd": 100}]}

EXPOSED = {
    "receivers.otlp.grpc": {"receivers": {"otlp": {"grpc": {"endpoint": "0.0.0.0:4317"}}}},
    "receivers.otlp.http": {"receivers": {"otlp": {"http": {"endpoint": "[::]:4318"}}}},
    "metrics.prometheus": {"metrics": {"prometheus": {"endpoint": ":9464"}}},
    "budgets.status": {"budgets": {**BUDGET, "status": {"endpoint": "192.168.10.20:4319"}}},
}
"""Each component on an address beyond loopback: every interface, IPv6 any, ``:port``, a LAN
address. Nothing is bound: the check happens before."""


def _write(tmp_path: Path, document: dict) -> Path:
    path = tmp_path / "spanledger.yaml"
    document = {"ledger": {"path": None}, **document}
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def _with(component: str, document: dict, **settings: object) -> dict:
    """``document`` with ``settings`` added to ``component``'s section."""
    node = document
    for key in component.split("."):
        node = node[key]
    node.update(settings)
    return document


@pytest.mark.parametrize("component", list(EXPOSED))
def test_open_beyond_loopback_without_authentication_is_a_problem_and_serve_refuses(
    component: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = yaml.safe_load(yaml.safe_dump(EXPOSED[component]))
    path = _write(tmp_path, document)
    assert main(["check-config", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{component}.endpoint" in err
    assert "listens beyond loopback without authentication" in err
    assert f"{component}.insecure: true" in err

    result = subprocess.run(
        [*SERVE, str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"spanledger serve: {component}.endpoint ")
    with pytest.raises(ValueError, match="beyond loopback"):
        Service(load_config(path)).start()

    # Allowed when the component says so, or when it authenticates its requests.
    for allowed in ({"insecure": True}, {"bearer_token": "t0ken-for-tests"}):
        fixed = _with(component, yaml.safe_load(yaml.safe_dump(EXPOSED[component])), **allowed)
        assert main(["check-config", str(_write(tmp_path, fixed))]) == 0, capsys.readouterr().err
    capsys.readouterr()


def test_loopback_and_client_certificates_need_no_more(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    loopback = {
        "receivers": {
            "otlp": {"grpc": {"endpoint": "localhost:4317"}, "http": {"endpoint": "[::1]:4318"}}
        },
        "metrics": {"prometheus": {"endpoint": "127.0.0.2:9464"}},
        "budgets": {**BUDGET, "status": {"endpoint": "127.0.0.1:4319"}},
    }
    assert main(["check-config", str(_write(tmp_path, loopback))]) == 0
    ca = tmp_path / "ca.pem"
    ca.write_text("not read by check-config beyond being readable\n")
    mtls = {
        "receivers": {
            "otlp": {
                "grpc": {
                    "endpoint": "0.0.0.0:4317",
                    "tls": {"cert_file": str(ca), "key_file": str(ca), "client_ca_file": str(ca)},
                },
                "http": None,
            }
        }
    }
    assert main(["check-config", str(_write(tmp_path, mtls))]) == 0
    assert Config().grpc == GrpcReceiverConfig() and GrpcReceiverConfig().endpoint.startswith(
        "127.0.0.1:"
    )
    assert HttpReceiverConfig().endpoint.startswith("127.0.0.1:")
    capsys.readouterr()


def test_a_webhook_without_a_secret_is_a_warning(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    document = {"budgets": {**BUDGET, "webhook": {"url": "https://hooks.example/budgets"}}}
    assert main(["check-config", str(_write(tmp_path, document))]) == 0
    captured = capsys.readouterr()
    assert "warning: budgets.webhook: no secret" in captured.err
    assert "OK" in captured.out
    document["budgets"]["webhook"]["secret"] = "signing-secret"
    assert main(["check-config", str(_write(tmp_path, document))]) == 0
    assert "warning" not in capsys.readouterr().err


def _get(url: str, token: str | None = None) -> int:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_spend_and_metrics_need_the_token_once_one_is_configured() -> None:
    """The status (every customer's spend), the check (which uses up rate limits and says who
    is over budget) and /metrics (spend per customer) all answer 401 without the token."""
    sink = BudgetSink(
        BudgetsConfig(
            limits=[SpendLimit(name="all", amount_usd=1)],
            status=StatusConfig("127.0.0.1:0", bearer_token="status-token"),
        ),
        DEFAULT_TAG_KEYS,
    )
    metrics = MetricsSink(
        MetricsConfig(prometheus_endpoint="127.0.0.1:0", prometheus_bearer_token="scrape-token"),
        DEFAULT_TAG_KEYS,
    )
    try:
        assert sink.server is not None
        status = sink.server.url + "/v1/budget/status"
        assert _get(status) == 401
        assert _get(status, "wrong") == 401
        assert _get(status, "status-token") == 200
        check = urllib.request.Request(
            sink.server.url + "/v1/budget/check",
            b'{"tags": {"customer": "victim"}}',
            {"Content-Type": "application/json"},
            method="POST",
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(check, timeout=5)
        assert refused.value.code == 401
        scrape = f"http://127.0.0.1:{metrics.prometheus_port}/metrics"
        assert _get(scrape) == 401
        assert _get(scrape, "scrape-token") == 200
    finally:
        sink.shutdown(1.0)
        metrics.shutdown(1.0)


def test_passwords_and_tokens_never_reach_the_log_or_check_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Redis URL with a password, a receiver token and a status token, run at DEBUG with Redis
    unreachable and requests carrying wrong and right tokens: none of them is printed."""
    secrets = ("redis-pass-4242", "receiver-token-77", "status-token-99")
    bad = {"budgets": {**BUDGET, "shared": {"redis": f"redis://:{secrets[0]}@/0"}}}
    assert main(["check-config", str(_write(tmp_path, bad))]) == 1
    err = capsys.readouterr().err
    assert "redis: expected" in err and secrets[0] not in err and ":***@" in err

    http_port, status_port = free_port(), free_port()
    config = {
        "receivers": {
            "otlp": {
                "grpc": None,
                "http": {"endpoint": f"127.0.0.1:{http_port}", "bearer_token": secrets[1]},
            }
        },
        "metrics": {"prometheus": None},
        "budgets": {
            **BUDGET,
            "status": {"endpoint": f"127.0.0.1:{status_port}", "bearer_token": secrets[2]},
            "shared": {"redis": f"rediss://:{secrets[0]}@127.0.0.1:1/0", "timeout": "200ms"},
        },
    }
    path = _write(tmp_path, config)
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*SERVE, str(path), "--log-level", "DEBUG"], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        _wait_port(http_port, process, log)
        url = f"http://127.0.0.1:{http_port}/v1/traces"
        assert post(url, b"", Authorization=f"Bearer {secrets[1]}x")[0] == 401
        assert post(url, b"", Authorization=f"Bearer {secrets[1]}")[0] == 200
        check = f"http://127.0.0.1:{status_port}/v1/budget/check"
        assert post(check, b'{"tags": {}}', "application/json", Authorization="Bearer no")[0] == 401
        status, _, answer = post(
            check, b'{"tags": {}}', "application/json", Authorization=f"Bearer {secrets[2]}"
        )
        assert status == 503  # Redis cannot be reached: unavailable, not wrong
        assert secrets[0].encode() not in answer
    finally:
        process.terminate()
        process.wait(30)
    text = log.read_text(errors="replace")
    assert "redis" in text.lower() and "DEBUG" in text
    for secret in secrets:
        assert secret not in text, secret


def _wait_port(port: int, process: subprocess.Popen, log: Path) -> None:  # type: ignore[type-arg]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(log.read_text())


def test_redact_masks_url_passwords_and_credentials() -> None:
    redaction.register(["a-registered-secret"])
    text = (
        "rediss://:PASSWORD@cache:6380/0 https://user:pw@host/x Authorization: Bearer abc.def "
        "Basic dXNlcjpwdw== and a-registered-secret"
    )
    cleaned = redaction.redact(text)
    for secret in ("PASSWORD", ":pw@", "abc.def", "dXNlcjpwdw==", "a-registered-secret"):
        assert secret not in cleaned
    assert "rediss://:***@cache:6380/0" in cleaned and "https://user:***@host/x" in cleaned
    assert redaction.redact_url("rediss://bob:pw@cache:6380/0") == "rediss://bob:***@cache:6380/0"
