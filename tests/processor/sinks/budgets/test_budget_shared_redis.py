"""Two processor replicas sharing spend and request counts through a real Redis server: each
threshold fires once across both, either replica denies once the shared total is spent, and
the per-minute count is shared."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from support.ports import free_port
from support.waiting import wait_for

from spanledger.processor.sinks.budgets import (
    BudgetsConfig,
    BudgetSink,
    RateLimit,
    SharedConfig,
    SpendLimit,
    StatusConfig,
    WebhookConfig,
    redis_client,
)
from spanledger.semconv import DEFAULT_TAG_KEYS

from .support import Clock, WebhookReceiver, counted

NOW = datetime(2026, 11, 10, 12, 0, 10, tzinfo=UTC)


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    server = shutil.which("redis-server")
    assert server, "redis-server is missing: run scripts/install-test-deps.sh"
    port = free_port()
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/3"
    client = redis_client(url, timeout=0.5)
    deadline = time.monotonic() + 10
    while True:
        try:
            assert client.ping() is True
            break
        except Exception:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise
            time.sleep(0.05)
    client.close()
    yield url
    process.terminate()
    process.wait(timeout=10)


def check(sink: BudgetSink, **tags: str) -> tuple[int, dict]:
    assert sink.server is not None
    body = json.dumps({"tags": tags}).encode()
    request = urllib.request.Request(sink.server.url + "/v1/budget/check", body, method="POST")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_replicas_share_spend_alerts_and_rate_counts(redis_url: str) -> None:
    webhook = WebhookReceiver()
    config = BudgetsConfig(
        limits=[SpendLimit(name="acme", match={"customer": "acme"}, amount_usd=10)],
        rate_limits=[RateLimit(name="rpm", per="team", requests_per_minute=3)],
        thresholds=[50, 80, 100],
        status=StatusConfig("127.0.0.1:0", cache_seconds=0),
        webhook=WebhookConfig(url=webhook.url),
        shared=SharedConfig(redis=redis_url, key_prefix="test"),
    )
    clock = Clock(NOW)
    replicas = [BudgetSink(config, DEFAULT_TAG_KEYS, clock=clock) for _ in range(2)]
    try:
        a, b = replicas
        # Spend lands on whichever replica got the trace; 4 + 3.5 + 3 = 10.5 of 10.
        a.record([counted(0, NOW, "4", customer="acme")])
        b.record([counted(1, NOW, "3.5", customer="acme")])
        assert check(a, customer="acme")[0] == 200
        a.record([counted(2, NOW, "3", customer="acme")])
        for replica in replicas:
            status, answer = check(replica, customer="acme")
            assert status == 429
            assert answer["reasons"][0]["spend_usd"] == "10.500000000"
        (row,) = b.status()["budgets"]
        assert Decimal(row["spend_usd"]) == Decimal("10.5")

        wait_for(lambda: len(webhook.deliveries) == 3, "three alerts")
        assert [d.json["threshold_percent"] for d in webhook.deliveries] == [50.0, 80.0, 100.0]
        assert [d.json["spend_usd"] for d in webhook.deliveries] == [
            "7.500000000",
            "10.500000000",
            "10.500000000",
        ]
        assert len(a.recent_alerts) + len(b.recent_alerts) == 3

        assert [check(r, team="growth")[0] for r in (a, b, a, b)] == [200, 200, 200, 429]
        clock.advance(60)
        assert check(b, team="growth")[0] == 200
    finally:
        for replica in replicas:
            replica.shutdown(2.0)
        webhook.stop()


def test_redis_down_makes_the_check_unavailable_not_wrong(redis_url: str) -> None:
    config = BudgetsConfig(
        limits=[SpendLimit(name="all", amount_usd=1)],
        status=StatusConfig("127.0.0.1:0"),
        shared=SharedConfig(redis="redis://127.0.0.1:1/0", timeout=0.2),
    )
    sink = BudgetSink(config, DEFAULT_TAG_KEYS, clock=Clock(NOW))
    try:
        status, answer = check(sink, customer="acme")
        assert status == 503
        assert "check unavailable" in answer["error"]
        sink.record([counted(0, NOW, "1")])  # logged, never raised
    finally:
        sink.shutdown(1.0)


def test_redis_store_put_sets_and_add_continues_from_it(redis_url: str) -> None:
    from spanledger.processor.sinks.budgets.stores import RedisStore

    store = RedisStore(redis_client(redis_url, timeout=0.5), prefix="put-test")
    store.put("acme", Decimal("1.25"), time.time() + 3600)
    assert store.get("acme") == Decimal("1.25")
    assert store.add("acme", Decimal("0.000000001"), None) == Decimal("1.250000001")


def test_redis_keys_expire_a_day_after_the_window_by_the_processor_clock(redis_url: str) -> None:
    from spanledger.processor.sinks.budgets.stores import RedisStore

    client = redis_client(redis_url, timeout=0.5)
    store = RedisStore(client, prefix="expiry-test", clock=Clock(NOW))
    window_end = datetime(2026, 12, 1, tzinfo=UTC).timestamp()
    store.add("month", Decimal("1"), window_end)
    store.put("loaded", Decimal("2"), window_end)
    left = (window_end + 86_400) - NOW.timestamp()
    for key in ("month", "loaded"):
        ttl = client.ttl(f"expiry-test:{key}")
        assert left - 5 <= ttl <= left
    store.add("ended", Decimal("3"), NOW.timestamp() - 2 * 86_400)
    assert store.get("ended") == Decimal(0)
    client.close()


def test_rediss_urls_speak_tls_and_the_password_never_shows(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A TLS-only Redis with a password: spend is shared over ``rediss://`` checked against the
    given CA, and a wrong password's error names the URL without the password."""
    server = shutil.which("redis-server")
    assert server, "redis-server is missing: run scripts/install-test-deps.sh"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", "redis.key", "-out", "redis.pem", "-days", "2", "-subj", "/CN=redis",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        cwd=tmp_path, check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    port = free_port()
    process = subprocess.Popen(
        [server, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--tls-cert-file", "redis.pem", "--tls-key-file", "redis.key",
         "--tls-ca-cert-file", "redis.pem", "--tls-auth-clients", "no",
         "--requirepass", "s3cret-pass", "--save", "", "--appendonly", "no"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    ca = str(tmp_path / "redis.pem")
    url = f"rediss://:s3cret-pass@127.0.0.1:{port}/0"
    try:
        client = redis_client(url, timeout=0.5, ca_file=ca)
        wait_for(lambda: _answers(client), "the TLS Redis to answer")
        config = BudgetsConfig(
            limits=[SpendLimit(name="acme", match={"customer": "acme"}, amount_usd=10)],
            status=StatusConfig("127.0.0.1:0", cache_seconds=0),
            shared=SharedConfig(redis=url, ca_file=ca),
        )
        sink = BudgetSink(config, DEFAULT_TAG_KEYS, clock=Clock(NOW))
        try:
            sink.record([counted(0, NOW, "12", customer="acme")])
            assert check(sink, customer="acme")[0] == 429
            keys = list(client.scan_iter("spanledger:*"))
            assert [int(client.get(key)) for key in keys] == [12 * 10**9]  # nano-dollars
        finally:
            sink.shutdown(1.0)
        wrong = f"rediss://:not-the-pass@127.0.0.1:{port}/0"
        refused = BudgetSink(
            BudgetsConfig(
                limits=[SpendLimit(name="all", amount_usd=1)],
                status=StatusConfig("127.0.0.1:0"),
                shared=SharedConfig(redis=wrong, ca_file=ca),
            ),
            DEFAULT_TAG_KEYS,
            clock=Clock(NOW),
        )
        try:
            with caplog.at_level("DEBUG"):
                status, answer = check(refused, customer="acme")
                refused.record([counted(1, NOW, "1")])
            assert status == 503
            assert "not-the-pass" not in json.dumps(answer)
            assert "not-the-pass" not in caplog.text
        finally:
            refused.shutdown(1.0)
    finally:
        process.terminate()
        process.wait(timeout=10)


def _answers(client) -> bool:  # type: ignore[no-untyped-def]
    try:
        return bool(client.ping())
    except Exception:
        return False
