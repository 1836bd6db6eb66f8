"""The database password never shows: not in ``check-config``, not in ``serve``'s log while the
database is unreachable, not in the one-line error of a refused login, not in ``report``."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from spanledger.processor.sinks.ledger.secrets import redact_url, scrub, url_password

from .configs import SPANLEDGER, write_config

SECRET = "s3cr%t-pa55word"


def test_urls_are_shown_without_their_password() -> None:
    quoted = "s3cr%25t-pa55word"
    assert redact_url(f"postgresql://led:{quoted}@db:5432/x") == "postgresql://led:***@db:5432/x"
    assert url_password(f"postgresql://led:{quoted}@db/x") == SECRET
    assert (
        redact_url("postgres://db/x?sslmode=require&password=abc")
        == "postgres://db/x?sslmode=require&password=***"
    )
    assert url_password("postgres://db/x?password=abc") == "abc"
    assert redact_url("postgresql://led@db/x") == "postgresql://led@db/x"
    assert scrub(f"failed for {SECRET} and {quoted}", [SECRET, None]) == "failed for *** and ***"


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SPANLEDGER, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.slow
def test_check_config_shows_the_url_without_its_password(tmp_path) -> None:
    url = "postgresql://ledger:${env:SPANLEDGER_TEST_PW}@db.internal:5432/spanledger"
    result = _run(
        "check-config",
        str(write_config(tmp_path, {"url": url})),
        env={"SPANLEDGER_TEST_PW": SECRET},
    )
    assert result.returncode == 0, result.stderr
    assert "ledger: postgresql://ledger:***@db.internal:5432/spanledger" in result.stdout
    assert SECRET not in result.stdout + result.stderr

    both = write_config(tmp_path, {"url": url, "path": "x.db"}, "both.yaml")
    result = _run("check-config", str(both), env={"SPANLEDGER_TEST_PW": SECRET})
    assert result.returncode == 1
    assert "not both" in result.stderr
    missing = write_config(
        tmp_path, {"url": "postgresql://db/x", "password_file": "nope"}, "m.yaml"
    )
    result = _run("check-config", str(missing))
    assert result.returncode == 1
    assert "password_file" in result.stderr


@pytest.mark.slow
def test_a_refused_login_is_one_line_without_the_password(
    tmp_path, postgres_url, postgres_server
) -> None:
    wrong = tmp_path / "wrong-password"
    wrong.write_text(SECRET + "\n")
    config = write_config(tmp_path, {"url": postgres_url, "password_file": str(wrong)})
    for command in (["serve", "--config", str(config)], ["report", "--config", str(config)]):
        result = _run(*command)
        assert result.returncode == 2
        assert "password authentication failed" in result.stderr
        assert SECRET not in result.stdout + result.stderr
    in_url = postgres_url.replace("spanledger@", f"spanledger:{SECRET.replace('%', '%25')}@")
    result = _run("report", "--ledger", in_url)
    assert result.returncode == 2
    assert ":***@" in result.stderr
    assert SECRET not in result.stderr and "s3cr%25t" not in result.stderr


@pytest.mark.slow
def test_serve_logs_no_password_while_the_database_is_away(tmp_path) -> None:
    """Nothing listens on the port: the processor starts, queues, and says why without it."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://ledger:{SECRET.replace('%', '%25')}@127.0.0.1:{port}/spanledger"
    config = write_config(tmp_path, {"url": url, "connect_timeout": "2s"})
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [*SPANLEDGER, "serve", "--config", str(config)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 20
        while "cannot connect yet" not in log.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            time.sleep(0.1)
    finally:
        process.terminate()
        process.wait(30)
    text = log.read_text()
    assert "cannot connect yet" in text, text
    assert f"postgresql://ledger:***@127.0.0.1:{port}/spanledger" in text
    assert SECRET not in text and "s3cr%25t" not in text
