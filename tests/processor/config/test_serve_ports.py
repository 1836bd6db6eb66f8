"""`spanledger serve` on a port it cannot have: one line naming the setting, exit status 2."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from spanledger.processor.cli import main
from spanledger.processor.config import Config

SERVE = [sys.executable, "-m", "spanledger.processor.cli", "serve", "--config"]
BUDGETS = "budgets: {limits: [{name: all, amount_usd: 100, period: monthly}], status: %s}"


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port some other program is listening on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


def config_with(tmp_path: Path, **endpoints: str) -> Path:
    """A config whose four listeners take a free port unless given a ``host:port`` here."""
    at = {name: "127.0.0.1:0" for name in ("grpc", "http", "metrics", "status")} | endpoints
    path = tmp_path / "spanledger.yaml"
    path.write_text(
        "receivers:\n  otlp:\n"
        f"    grpc: {{endpoint: {at['grpc']}}}\n"
        f"    http: {{endpoint: {at['http']}}}\n"
        f"metrics: {{prometheus: {{endpoint: {at['metrics']}}}}}\n"
        f"ledger: {{path: {tmp_path / 'ledger.db'}}}\n"
        + BUDGETS % f"{{endpoint: {at['status']}}}"
        + "\n",
        encoding="utf-8",
    )
    return path


def serve_process(config: Path, prefix: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
    """``spanledger serve --config`` run as users run it, expected to refuse to start."""
    result = subprocess.run(
        [*prefix, *SERVE, str(config)], check=False, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2, result.stderr
    return result


def refused(tmp_path: Path, capfd: pytest.CaptureFixture[str], **endpoints: str) -> str:
    """What ``spanledger serve`` says on stderr when it refuses to start with these endpoints."""
    assert main(["serve", "--config", str(config_with(tmp_path, **endpoints))]) == 2
    assert not (tmp_path / "ledger.db").exists(), "nothing may start before the ports are known"
    return capfd.readouterr().err


def test_busy_grpc_port_is_one_line_without_the_grpc_core_log(
    tmp_path: Path, busy_port: int
) -> None:
    config = config_with(tmp_path, grpc=f"127.0.0.1:{busy_port}")
    result = serve_process(config)
    assert result.stderr == (
        f"spanledger serve: receivers.otlp.grpc.endpoint 127.0.0.1:{busy_port}: "
        "address already in use\n"
    )
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("listener", "setting"),
    [
        ("http", "receivers.otlp.http.endpoint"),
        ("metrics", "metrics.prometheus.endpoint"),
        ("status", "budgets.status.endpoint"),
    ],
)
def test_each_busy_endpoint_names_its_setting(
    tmp_path: Path, busy_port: int, capfd: pytest.CaptureFixture[str], listener: str, setting: str
) -> None:
    err = refused(tmp_path, capfd, **{listener: f"127.0.0.1:{busy_port}"})
    assert err == f"spanledger serve: {setting} 127.0.0.1:{busy_port}: address already in use\n"


def test_two_settings_naming_one_port_are_caught(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    at = f"127.0.0.1:{port}"
    assert refused(tmp_path, capfd, grpc=at, metrics=at) == (
        f"spanledger serve: metrics.prometheus.endpoint 127.0.0.1:{port}: address already in use "
        "(also named by receivers.otlp.grpc.endpoint)\n"
    )


def test_an_address_this_machine_does_not_have(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # 192.0.2.1 is TEST-NET-1 (RFC 5737): never assigned to a real interface.
    err = refused(tmp_path, capfd, grpc="192.0.2.1:4317")
    assert err.startswith("spanledger serve: receivers.otlp.grpc.endpoint 192.0.2.1:4317: ")
    assert err.count("\n") == 1 and "Traceback" not in err


def unprivileged() -> list[str] | None:
    """A command prefix that runs the rest as a user who may not bind port 1 (None: none found)."""
    if int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text()) <= 1:
        return None
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"] if setpriv else None


@pytest.mark.skipif(unprivileged() is None, reason="no user here is refused port 1")
def test_a_port_not_permitted() -> None:
    prefix = unprivileged()
    assert prefix is not None
    # A directory the unprivileged user can read.
    with tempfile.TemporaryDirectory() as directory:
        os.chmod(directory, 0o755)
        config = Path(directory) / "spanledger.yaml"
        config.write_text(
            "receivers: {otlp: {grpc: null, http: {endpoint: 127.0.0.1:1}}}\n"
            "metrics: {prometheus: null}\nledger: {path: null}\n",
            encoding="utf-8",
        )
        config.chmod(0o644)
        result = serve_process(config, prefix)
    assert result.stderr == (
        "spanledger serve: receivers.otlp.http.endpoint 127.0.0.1:1: permission denied "
        "(ports below 1024 usually need privileges)\n"
    )


def test_serve_help_lists_the_default_ports_and_how_to_stop(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    defaults = Config()
    assert defaults.grpc is not None and defaults.http is not None
    for endpoint, what in [
        (defaults.grpc.endpoint, "OTLP/gRPC"),
        (defaults.http.endpoint, "OTLP/HTTP"),
        (defaults.metrics.prometheus_endpoint, "Prometheus /metrics"),
    ]:
        assert endpoint is not None
        line = next(line for line in text.splitlines() if endpoint in line)
        assert what in line
    assert "Ctrl-C (SIGINT) or SIGTERM stops it" in text
    assert f"service.shutdown_timeout [{defaults.service.shutdown_timeout:g}s]" in text
    assert f"ledger in {defaults.ledger.path}" in text
    limiter = defaults.memory_limiter
    assert limiter is not None
    soft = limiter.limit_mib - limiter.spike_mib
    said = " ".join(text.split())
    assert f"Above {soft} of its {limiter.limit_mib} MiB of memory it refuses data" in said
    assert "beyond loopback needs its bearer_token or insecure: true" in said
