"""The status endpoint and its client: authentication, bad requests, how long answers may be
reused, webhook retries that give up, and a hook that does nothing while enforcement is off."""

from __future__ import annotations

import json
import socket
import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime

import pytest
from support.waiting import wait_for

from spanledger.errors import BudgetExceededError
from spanledger.instrumentation.budgets import (
    ENDPOINT_ENV,
    ENFORCE_ENV,
    Answer,
    BudgetClient,
    EnforcementConfig,
    check_budget,
)
from spanledger.processor.sinks.budgets import (
    BudgetsConfig,
    BudgetSink,
    RateLimit,
    SpendLimit,
    StatusConfig,
    WebhookConfig,
    WebhookSender,
)
from spanledger.processor.sinks.budgets.alerts import Alert
from spanledger.semconv import DEFAULT_TAG_KEYS

from .support import Clock, WebhookReceiver, counted

NOW = datetime(2026, 11, 10, 12, 0, 30, tzinfo=UTC)


@pytest.fixture
def sink():
    started = []

    def start(token: str | None = None, cache_seconds: float = 5.0) -> BudgetSink:
        config = BudgetsConfig(
            limits=[SpendLimit(name="acme", match={"customer": "acme"}, amount_usd=1)],
            rate_limits=[RateLimit(name="rpm", per="team", requests_per_minute=1)],
            status=StatusConfig("127.0.0.1:0", bearer_token=token, cache_seconds=cache_seconds),
        )
        budget_sink = BudgetSink(config, DEFAULT_TAG_KEYS, clock=Clock(NOW))
        started.append(budget_sink)
        return budget_sink

    yield start
    for budget_sink in started:
        budget_sink.shutdown(1.0)


def post(url: str, body: bytes, token: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, body, headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_check_answers_and_authentication(sink) -> None:
    budget_sink = sink(token="secret")
    url = budget_sink.server.url + "/v1/budget/check"
    tags = json.dumps({"tags": {"customer": "acme"}}).encode()
    assert post(url, tags)[0] == 401
    assert post(url, tags, token="other")[0] == 401
    assert post(url, tags, token="secret") == (200, {"allow": True, "cache_for": 5.0})
    assert post(url, b"not json", token="secret")[0] == 400
    assert post(url, b'{"tags": {"customer": 3}}', token="secret")[0] == 400
    assert post(budget_sink.server.url + "/elsewhere", tags, token="secret")[0] == 404

    budget_sink.record([counted(0, NOW, "1", customer="acme")])
    status, answer = post(url, tags, token="secret")
    assert status == 429
    assert answer["allow"] is False
    assert answer["reasons"][0]["budget"] == "acme"
    assert answer["retry_after"] == pytest.approx(
        NOW.replace(day=1, month=12, hour=0, second=0).timestamp() - NOW.timestamp()
    )
    assert answer["cache_for"] == 5.0


def test_rate_limited_answers_are_not_reused(sink) -> None:
    budget_sink = sink()
    url = budget_sink.server.url + "/v1/budget/check"
    team = json.dumps({"tags": {"team": "growth"}}).encode()
    assert post(url, team) == (200, {"allow": True, "cache_for": 0.0})
    status, answer = post(url, team)
    assert status == 429
    assert answer["reasons"][0]["rate_limit"] == "rpm"
    assert answer["retry_after"] == pytest.approx(30.0)
    assert post(url, json.dumps({"tags": {"team": "platform"}}).encode())[0] == 200


def test_client_reuses_answers_only_as_long_as_allowed(sink) -> None:
    budget_sink = sink(cache_seconds=30)
    client = BudgetClient(EnforcementConfig(endpoint=budget_sink.server.url, cache_seconds=10))
    acme = {"customer": "acme"}
    assert client.cached(acme) is None
    assert client.ask(acme) == Answer(allow=True, cache_for=30.0)
    budget_sink.record([counted(0, NOW, "2", customer="acme")])
    assert client.cached(acme) == Answer(allow=True, cache_for=30.0)  # kept, up to 10 s
    assert not client.ask(acme).allow
    team = {"team": "growth"}
    assert client.ask(team).allow
    assert client.cached(team) is None  # a rate limit counts every request


def test_an_unreachable_processor_is_not_asked_again_within_the_cache_period() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        accepted = []

        def accept() -> None:
            connection, _ = listener.accept()
            accepted.append(connection)
            connection.close()  # an answer that is no answer

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        client = BudgetClient(
            EnforcementConfig(endpoint=f"http://127.0.0.1:{port}", cache_seconds=30)
        )
        first = client.ask({"customer": "acme"})
        thread.join(5)
        assert first.allow and first.unavailable
        again = client.cached({"customer": "globex"})
        assert again is not None and again.unavailable
        assert len(accepted) == 1


def test_enforcement_off_costs_no_request(monkeypatch) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.2)
        monkeypatch.setenv(ENDPOINT_ENV, f"http://127.0.0.1:{listener.getsockname()[1]}")
        monkeypatch.delenv(ENFORCE_ENV, raising=False)
        check_budget()
        with pytest.raises(TimeoutError):
            listener.accept()
        monkeypatch.setenv(ENFORCE_ENV, "0")
        check_budget()
        with pytest.raises(TimeoutError):
            listener.accept()


def test_webhook_retries_then_gives_up_and_keeps_order() -> None:
    receiver = WebhookReceiver(failures=3, fail_with=500)
    try:
        sender = WebhookSender(
            WebhookConfig(url=receiver.url, secret="s", max_attempts=3), backoff=0.05
        )
        book_alerts = [_alert(threshold) for threshold in ("50", "80")]
        for alert in book_alerts:
            sender.send(alert)
        sender.shutdown(5.0)
        assert receiver.attempts == 4  # three failures for the first, then the second
        assert [d.json["threshold_percent"] for d in receiver.deliveries] == [80.0]
        assert (sender.delivered, sender.failed) == (1, 1)
    finally:
        receiver.stop()


def test_a_client_error_is_not_retried() -> None:
    receiver = WebhookReceiver(failures=1, fail_with=400)
    try:
        sender = WebhookSender(WebhookConfig(url=receiver.url, max_attempts=5), backoff=0.05)
        sender.send(_alert("50"))
        wait_for(lambda: sender.failed == 1, "the alert to be given up")
        sender.shutdown(1.0)
        assert receiver.attempts == 1
    finally:
        receiver.stop()


def test_budget_exceeded_error_carries_what_the_processor_said(sink) -> None:
    budget_sink = sink()
    budget_sink.record([counted(0, NOW, "5", customer="acme")])
    from spanledger.instrumentation.budgets import Enforcer

    enforcer = Enforcer(EnforcementConfig(endpoint=budget_sink.server.url))
    answer = enforcer.client.ask({"customer": "acme"})
    with pytest.raises(BudgetExceededError) as stopped:
        enforcer.settle({"customer": "acme"}, answer)
    assert "budget acme (customer=acme) spent 5 of 1 USD (monthly)" in str(stopped.value)


def _alert(threshold: str) -> Alert:
    from decimal import Decimal

    return Alert(
        budget="b",
        scope={"customer": "acme"},
        window="daily",
        start="2026-11-10T00:00:00Z",
        end="2026-11-11T00:00:00Z",
        threshold_percent=Decimal(threshold),
        spend_usd=Decimal("1"),
        amount_usd=Decimal("2"),
        at="2026-11-10T12:00:00Z",
    )


def test_a_stopped_call_leaves_an_error_span_and_no_vendor_request(sink, llm, monkeypatch) -> None:
    import anthropic
    import openai
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import spanledger
    from spanledger.instrumentation.anthropic import AnthropicInstrumentor
    from spanledger.instrumentation.openai import OpenAIInstrumentor

    budget_sink = sink()
    budget_sink.record([counted(0, NOW, "2", customer="acme")])
    monkeypatch.setenv(ENFORCE_ENV, "1")
    monkeypatch.setenv(ENDPOINT_ENV, budget_sink.server.url)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentors = [OpenAIInstrumentor(), AnthropicInstrumentor()]
    for instrumentor in instrumentors:
        instrumentor.instrument(tracer_provider=provider)
    try:
        message = [{"role": "user", "content": "x"}]
        with (
            spanledger.tags(customer="acme"),
            openai.OpenAI(api_key="k", base_url=llm.openai_base_url) as client,
            anthropic.Anthropic(api_key="k", base_url=llm.anthropic_base_url) as claude,
        ):
            with pytest.raises(BudgetExceededError):
                client.chat.completions.create(model="gpt-4o-mini", messages=message)
            with pytest.raises(BudgetExceededError):
                claude.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=message)
    finally:
        for instrumentor in instrumentors:
            instrumentor.uninstrument()
    assert llm.requests == []
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["chat gpt-4o-mini", "chat claude-haiku-4-5"]
    for span in spans:
        assert span.status.status_code.name == "ERROR"
        assert span.attributes["error.type"] == "BudgetExceededError"
        assert "gen_ai.usage.input_tokens" not in span.attributes
