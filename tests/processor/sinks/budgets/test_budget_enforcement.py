"""Budgets through a running processor: the real OpenAI and Anthropic SDKs call the stand-in,
their spans reach the processor over OTLP, thresholds fire once each (log line, gauge, signed
webhook), the next call is stopped before the vendor, a new period resets the spend, rate
limits count checks, and the processor being away fails open or closed as configured."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import time
from datetime import UTC, datetime
from decimal import Decimal

import anthropic
import openai
import pytest
from support.ports import free_port
from support.waiting import wait_for

import spanledger
from spanledger.errors import BudgetStatusUnavailable
from spanledger.instrumentation.budgets import ENDPOINT_ENV, FAIL_ENV, TOKEN_ENV
from spanledger.processor.model import Usage
from spanledger.processor.pricing import PriceBook, PricingConfig
from spanledger.standin import Scenario, StandIn

from .conftest import WEBHOOK_SECRET
from .support import Clock

PROMPT, COMPLETION = 200_000, 2_000
USAGE = Scenario(usage={"prompt_tokens": PROMPT, "completion_tokens": COMPLETION}).to_header()


def call_cost() -> Decimal:
    """What the processor's price table charges for one of the test's OpenAI calls."""
    usage = Usage(
        operation="chat",
        provider="openai",
        request_model="gpt-4o-mini",
        response_model="gpt-4o-mini",
        input_tokens=PROMPT,
        output_tokens=COMPLETION,
    )
    cost = PriceBook(PricingConfig()).price(usage, time.time_ns())
    assert cost.status == "priced" and cost.total > 0
    return cost.total


def chat(llm: StandIn) -> None:
    with openai.OpenAI(api_key="k", base_url=llm.openai_base_url, max_retries=0) as client:
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "hello"}],
            extra_headers=USAGE,
        )


async def amessage(llm: StandIn) -> None:
    async with anthropic.AsyncAnthropic(
        api_key="k", base_url=llm.anthropic_base_url, max_retries=0
    ) as client:
        await client.messages.create(
            model="claude-haiku-4-5",
            max_tokens=50,
            messages=[{"role": "user", "content": "hello"}],
        )


@pytest.mark.slow
def test_thresholds_fire_once_then_the_next_call_is_stopped_until_a_new_period(
    llm, start_processor, app_tracing, webhook, caplog
) -> None:
    caplog.set_level(logging.WARNING, logger="spanledger.budgets")
    cost = call_cost()
    amount = cost * Decimal("2.4")  # calls 1, 2, 3 reach 41.7%, 83.3% and 125%
    processor = start_processor(
        {
            "limits": [
                {
                    "name": "acme-daily",
                    "match": {"customer": "acme"},
                    "amount_usd": float(amount),
                    "period": "daily",
                }
            ],
            "webhook": {"url": webhook.url, "secret": WEBHOOK_SECRET},
        }
    )
    webhook.failures = 1  # the first delivery attempt gets a 503 and is retried
    app_tracing(processor)
    amount = Decimal(processor.status()["budgets"][0]["amount_usd"])

    with spanledger.tags(customer="acme", feature="search"):
        for count in (1, 2, 3):
            chat(llm)
            wait_for(
                lambda n=count: processor.spend("acme-daily", customer="acme") == str(cost * n),
                "spend",
            )
        sent = len(llm.requests)
        with pytest.raises(spanledger.BudgetExceededError) as stopped:
            chat(llm)
        with pytest.raises(spanledger.BudgetExceededError):
            asyncio.run(amessage(llm))
    assert len(llm.requests) == sent  # neither reached the vendor
    assert stopped.value.tags["customer"] == "acme"
    assert stopped.value.reasons[0]["budget"] == "acme-daily"
    assert 0 < stopped.value.retry_after <= 86_400
    assert "acme-daily" in str(stopped.value)

    with spanledger.tags(customer="globex"):
        chat(llm)  # another customer is not covered
    assert len(llm.requests) == sent + 1

    deliveries = wait_for(lambda: len(webhook.deliveries) >= 3 and webhook.deliveries, "alerts")
    time.sleep(0.3)  # nothing further arrives
    assert [d.json["threshold_percent"] for d in webhook.deliveries] == [50.0, 80.0, 100.0]
    assert webhook.attempts == 4
    for delivery in deliveries:
        expected = hmac.new(WEBHOOK_SECRET.encode(), delivery.body, hashlib.sha256).hexdigest()
        assert delivery.headers["x-spanledger-signature"] == f"sha256={expected}"
        assert delivery.json["budget"] == "acme-daily"
        assert delivery.json["scope"] == {"customer": "acme"}
        assert delivery.headers["x-spanledger-delivery"] == delivery.json["id"]
    assert [d.json["spend_usd"] for d in deliveries] == [
        str(cost * 2),
        str(cost * 2),
        str(cost * 3),
    ]
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("budget alert")]
    assert len(logged) == 3 and all('"budget": "acme-daily"' in line for line in logged)

    gauge = re.search(
        r'^spanledger_budget_utilization\w*\{[^}]*budget="acme-daily"[^}]*customer="acme"'
        r"[^}]*\} (\S+)$",
        processor.metrics_text(),
        re.M,
    )
    assert gauge is not None
    assert float(gauge.group(1)) == pytest.approx(float(cost * 3 / amount))

    processor.clock.advance(86_400)  # the next day, UTC
    assert processor.spend("acme-daily", customer="acme") == "0"
    with spanledger.tags(customer="acme"):
        chat(llm)
    assert len(llm.requests) == sent + 2


def test_rate_limit_counts_checks_per_minute(llm, start_processor, app_tracing) -> None:
    minute = datetime(2026, 11, 10, 9, 30, 5, tzinfo=UTC)
    processor = start_processor(
        {
            "rate_limits": [
                {"name": "initech-rpm", "match": {"customer": "initech"}, "requests_per_minute": 2}
            ]
        },
        clock=Clock(minute),
    )
    app_tracing(processor)
    with spanledger.tags(customer="initech"):
        chat(llm)
        chat(llm)
        with pytest.raises(spanledger.BudgetExceededError) as stopped:
            chat(llm)
        assert stopped.value.reasons[0]["rate_limit"] == "initech-rpm"
        assert stopped.value.retry_after == pytest.approx(55)
        assert len(llm.requests) == 2
        processor.clock.advance(55)
        chat(llm)
    assert len(llm.requests) == 3
    with spanledger.tags(customer="acme"):
        for _ in range(3):
            chat(llm)
    assert len(llm.requests) == 6


def test_unreachable_processor_fails_open_by_default_and_closed_by_choice(
    llm, start_processor, app_tracing, monkeypatch, caplog
) -> None:
    processor = start_processor({"limits": [{"name": "all", "amount_usd": 100}]})
    app_tracing(processor)
    monkeypatch.setenv(ENDPOINT_ENV, f"http://127.0.0.1:{free_port()}")
    with spanledger.tags(customer="acme"):
        chat(llm)
        assert len(llm.requests) == 1
        assert any("fail-open" in r.getMessage() for r in caplog.records)
        monkeypatch.setenv(FAIL_ENV, "closed")
        with pytest.raises(BudgetStatusUnavailable):
            chat(llm)
        with pytest.raises(spanledger.BudgetExceededError):
            asyncio.run(amessage(llm))
        assert len(llm.requests) == 1
        # A wrong token is no answer either.
        monkeypatch.setenv(ENDPOINT_ENV, processor.status_url)
        monkeypatch.setenv(TOKEN_ENV, "wrong")
        with pytest.raises(BudgetStatusUnavailable, match="401"):
            chat(llm)
        monkeypatch.setenv(FAIL_ENV, "open")
        chat(llm)
        asyncio.run(amessage(llm))
    assert len(llm.requests) == 3


@pytest.mark.slow
def test_a_restarted_processor_keeps_the_period_spend_and_does_not_repeat_alerts(
    llm, start_processor, app_tracing, webhook
) -> None:
    cost = call_cost()
    budgets = {
        "limits": [
            {
                "name": "acme-monthly",
                "match": {"customer": "acme"},
                "amount_usd": float(cost * Decimal("1.5")),
                "period": "monthly",
            }
        ],
        "thresholds": [50, 100],
        "webhook": {"url": webhook.url, "secret": WEBHOOK_SECRET},
    }
    first = start_processor(budgets)
    app_tracing(first)
    with spanledger.tags(customer="acme"):
        chat(llm)
        chat(llm)
    wait_for(lambda: first.spend("acme-monthly", customer="acme") == str(cost * 2), "spend")
    first.service.stop()
    assert [d.json["threshold_percent"] for d in webhook.deliveries] == [50.0, 100.0]

    second = start_processor(budgets)
    (row,) = second.status()["budgets"]
    assert row["spend_usd"] == str(cost * 2)
    assert row["thresholds_crossed"] == [50.0, 100.0]
    app_tracing(second)
    with spanledger.tags(customer="acme"), pytest.raises(spanledger.BudgetExceededError):
        chat(llm)
    assert len(llm.requests) == 2
    assert second.status()["recent_alerts"] == []


def test_enforcement_off_never_asks(llm, start_processor, app_tracing, monkeypatch) -> None:
    processor = start_processor({"limits": [{"name": "all", "amount_usd": 0.000001}]})
    app_tracing(processor)
    monkeypatch.delenv("SPANLEDGER_BUDGET_ENFORCE")
    with spanledger.tags(customer="acme"):
        for _ in range(3):
            chat(llm)
        wait_for(lambda: processor.spend("all") not in (None, "0"), "spend")
        chat(llm)
    assert len(llm.requests) == 4
    assert processor.status()["budgets"][0]["exceeded"] is True
