"""End to end, offline: the real OpenAI and Anthropic SDKs, instrumented, call the stand-in and
send their spans to a real processor; a script calls the stand-in without instrumentation, and
the stand-in bills one model above the price table. ``spanledger reconcile`` against the
stand-in's bill finds both gaps in the right day, provider and model and explains them; the
settled report adds up to the stand-in's invoice for every grouping; the processor's gauge, the
exit status and a signed drift alert watch the gap.

The spans' times and the stand-in's bill both come from the real clock, so the period is taken
from the days the test ran on; the unseen calls' day is read from the stand-in's own bill.
"""

from __future__ import annotations

import json
import logging
import re
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
import yaml
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from support.webhooks import WebhookReceiver

from spanledger import tags
from spanledger.instrumentation.anthropic import AnthropicInstrumentor
from spanledger.instrumentation.baggage.span_processor import TagSpanProcessor
from spanledger.instrumentation.openai import OpenAIInstrumentor
from spanledger.processor.config import load_config
from spanledger.processor.model import Usage
from spanledger.processor.service import Service
from spanledger.processor.sinks.budgets import sign
from spanledger.processor.sinks.ledger import Ledger
from spanledger.semconv import DEFAULT_TAG_KEYS
from spanledger.standin import SCENARIO_HEADER, StandIn

from .support import (
    BOOK,
    CENT,
    both_apis,
    direct_chat,
    reconcile,
    settled,
    settled_total,
    to_cent,
)

pytestmark = pytest.mark.slow

MINI, EMBED, HAIKU, SONNET = (
    "gpt-4o-mini",
    "text-embedding-3-small",
    "claude-haiku-4-5",
    "claude-sonnet-4-5",
)
UNSEEN = [(150_000, 2_000), (90_000, 1_000)]
"""Prompt and completion tokens of the calls a script makes without the instrumentation."""
SURCHARGE = Decimal("1.25")
"""How much more than the price table the stand-in bills for HAIKU."""
SECRET = "drift-webhook-secret"
KEYS = {"OPENAI_ADMIN_KEY": "sk-admin-openai-test", "ANTHROPIC_ADMIN_KEY": "sk-ant-admin-test"}


def _table_rates_per_million(model: str) -> dict[str, str]:
    """The price table's rates for ``model``, USD per million tokens, by one token more."""
    now = time.time_ns()

    def total(**counts: int) -> Decimal:
        cost = BOOK.price(Usage("chat", "anthropic", model, model, **counts), now)
        assert cost.status == "priced", cost.reason
        return cost.total

    base = total(input_tokens=1000, output_tokens=1000)
    steps = {
        "input": total(input_tokens=2000, output_tokens=1000),
        "cache_read": total(input_tokens=2000, cache_read_tokens=1000, output_tokens=1000),
        "output": total(input_tokens=1000, output_tokens=2000),
    }
    return {k: str((v - base) * 1000) for k, v in steps.items()}


@dataclass
class Setup:
    llm: StandIn
    service: Service
    config_file: Path
    ledger_path: Path
    webhook: WebhookReceiver
    instrumented_calls: int
    started: date


def _usage(**usage: object) -> dict[str, str]:
    return {SCENARIO_HEADER: json.dumps({"usage": usage})}


def _traffic(llm: StandIn, provider: TracerProvider) -> int:
    """Instrumented calls of three customers and three features; returns how many."""
    customers = ("acme", "globex", "initech", None)
    features = ("search", "summarize", "triage")
    calls = 0
    tracer = provider.get_tracer("reconcile.e2e")
    oai = openai.OpenAI(api_key="k", base_url=llm.openai_base_url, max_retries=0)
    claude = anthropic.Anthropic(api_key="k", base_url=llm.anthropic_base_url, max_retries=0)
    with oai, claude:
        for i in range(12):
            entries = {"feature": features[i % 3], "team": "agents"}
            if customers[i % 4]:
                entries["customer"] = customers[i % 4]
            with tags(**entries), tracer.start_as_current_span("request"):
                chat = oai.chat.completions.create(
                    model=MINI,
                    messages=[{"role": "user", "content": f"question {i}"}],
                    stream=i % 2 == 1,
                    stream_options={"include_usage": True} if i % 2 else openai.omit,
                    extra_headers=_usage(
                        prompt_tokens=20_000 + 137 * i,
                        completion_tokens=300 + i,
                        prompt_tokens_details={"cached_tokens": 4_000 * (i % 3)},
                    ),
                )
                if i % 2:
                    for _chunk in chat:
                        pass
                calls += 1
                if i % 3 == 0:
                    oai.embeddings.create(model=EMBED, input=[f"document {i}"] * 40)
                    calls += 1
                claude.messages.create(
                    model=HAIKU,
                    max_tokens=256,
                    messages=[{"role": "user", "content": f"step {i}"}],
                    extra_headers=_usage(
                        input_tokens=8_000 + 11 * i,
                        output_tokens=400 + i,
                        cache_read_input_tokens=1_000 * (i % 2),
                    ),
                )
                calls += 1
                if i % 4 == 1:
                    with claude.messages.stream(
                        model=SONNET,
                        max_tokens=256,
                        messages=[{"role": "user", "content": f"review {i}"}],
                        extra_headers=_usage(input_tokens=6_000 + i, output_tokens=800),
                    ) as stream:
                        stream.get_final_message()
                    calls += 1
    return calls


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    started = datetime.now(UTC).date()
    webhook = WebhookReceiver()
    config = {
        "receivers": {"otlp": {"grpc": {"endpoint": "127.0.0.1:0"}, "http": None}},
        "rollup": {"trace_idle": "200ms", "root_grace": "100ms"},
        "metrics": {"prometheus": {"endpoint": "127.0.0.1:0"}},
        "ledger": {"path": "data/spanledger.db"},
        "budgets": {"webhook": {"url": webhook.url, "secret": SECRET}},
    }
    config_file = tmp_path / "processor.yaml"
    config_file.write_text(yaml.safe_dump(config))
    service = Service(load_config(config_file))
    service.start()
    prices = {
        HAIKU: {k: str(Decimal(v) * SURCHARGE) for k, v in _table_rates_per_million(HAIKU).items()}
    }
    provider = TracerProvider()
    provider.add_span_processor(TagSpanProcessor(DEFAULT_TAG_KEYS, 128))
    provider.add_span_processor(
        BatchSpanProcessor(
            OTLPSpanExporter(endpoint=f"127.0.0.1:{service.grpc.port}", insecure=True)
        )
    )
    instrumentors = [OpenAIInstrumentor(), AnthropicInstrumentor()]
    for instrumentor in instrumentors:
        instrumentor.instrument(tracer_provider=provider)
    try:
        with StandIn(prices=prices) as llm:
            calls = _traffic(llm, provider)
            for prompt, completion in UNSEEN:
                direct_chat(llm, MINI, prompt, completion)
            assert provider.force_flush(30_000)
            ledger_path = tmp_path / "data" / "spanledger.db"
            _wait_for_calls(ledger_path, calls)
            yield Setup(llm, service, config_file, ledger_path, webhook, calls, started)
    finally:
        for instrumentor in instrumentors:
            instrumentor.uninstrument()
        provider.shutdown()
        service.stop()
        webhook.stop()


def _wait_for_calls(path: Path, count: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if path.exists():
            with Ledger(path) as ledger:
                if ledger.aggregate()[0].calls >= count:
                    return
        time.sleep(0.1)
    raise AssertionError(f"the ledger did not get {count} calls")


def _invoice(llm: StandIn, since: date, until: date) -> Decimal:
    """The stand-in's invoice: each provider's costs over the period, to the cent, summed."""
    start, end = (
        int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()) for d in (since, until)
    )
    costs = httpx.get(
        f"{llm.url}/v1/organization/costs",
        params={"start_time": start, "end_time": end, "limit": 31},
        headers={"authorization": "Bearer admin"},
    ).json()
    openai_total = sum(
        (Decimal(repr(r["amount"]["value"])) for b in costs["data"] for r in b["results"]),
        Decimal(0),
    )
    report = httpx.get(
        f"{llm.url}/v1/organizations/cost_report",
        params={"starting_at": f"{since}T00:00:00Z", "ending_at": f"{until}T00:00:00Z"},
        headers={"x-api-key": "admin", "anthropic-version": "2023-06-01"},
    ).json()
    anthropic_total = sum(
        (Decimal(r["amount"]) / 100 for b in report["data"] for r in b["results"]), Decimal(0)
    )
    return to_cent(openai_total) + to_cent(anthropic_total)


def _gauge(text: str, name: str, model: str) -> float:
    pattern = re.compile(rf"^{name}\{{(?P<labels>[^}}]*)\}} (?P<value>\S+)$", re.M)
    for found in pattern.finditer(text):
        if f'gen_ai_response_model="{model}"' in found["labels"]:
            return float(found["value"])
    raise AssertionError(f"no {name} for {model} in:\n{text}")


def test_reconcile_finds_and_explains_the_seeded_gaps_and_settles_to_the_invoice(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    llm = setup.llm
    billed = llm.billing.calls()
    unseen_days = {datetime.fromtimestamp(c.at, UTC).date() for c in billed[-len(UNSEEN) :]}
    since, until = setup.started, datetime.now(UTC).date() + timedelta(days=1)
    with caplog.at_level(logging.WARNING, logger="spanledger.budgets"):
        run = reconcile(
            *("--config", str(setup.config_file), *both_apis(llm), "--format", "json"),
            *("--since", str(since), "--until", str(until), "--fail-over", "5"),
            *("--alert-over", "5"),
            environ=KEYS,
        )
    assert run.code == 1, run.err  # the seeded gaps are over 5%
    rows = run.rows

    def of(model: str) -> list[dict[str, Any]]:
        return [r for r in rows if r["model"] == model]

    # The calls made outside the instrumentation: a token gap of exactly their tokens, on the
    # day the stand-in billed them, priced at the table's rates; no price gap.
    mini = of(MINI)
    unseen_rows = [r for r in mini if "unseen_calls" in r["cause"]]
    assert {date.fromisoformat(r["day"]) for r in unseen_rows} == unseen_days
    assert sum(r["billed_input_tokens"] - r["input_tokens"] for r in mini) == sum(
        p for p, _ in UNSEEN
    )
    assert sum(r["billed_output_tokens"] - r["output_tokens"] for r in mini) == sum(
        c for _, c in UNSEEN
    )
    unseen_cost = sum(
        (
            BOOK.price(Usage("chat", "openai", MINI, MINI, p, c), time.time_ns()).total
            for p, c in UNSEEN
        ),
        Decimal(0),
    )
    assert sum(r["token_gap_usd"] for r in mini) == unseen_cost
    assert all(r["price_gap_usd"] == 0 for r in mini)
    assert all("price" not in r["cause"] for r in mini)
    assert "calls made outside the instrumented code" in unseen_rows[0]["explanation"]

    # The price the table gets wrong: same tokens, 25% more on the bill, on every day.
    haiku = of(HAIKU)
    assert haiku and all(r["cause"] == "price" for r in haiku)
    for r in haiku:
        assert (r["billed_input_tokens"], r["billed_output_tokens"]) == (
            r["input_tokens"],
            r["output_tokens"],
        )
        assert r["price_gap_usd"] == r["gap_usd"] == r["attributed_usd"] * (SURCHARGE - 1)
        assert "the price table is off for this model" in r["explanation"]
    # Everything else agrees.
    assert {r["cause"] for r in of(EMBED) + of(SONNET)} == {"match"}
    assert {r["model"] for r in rows} == {MINI, EMBED, HAIKU, SONNET}

    # Settled: every grouping adds up to the stand-in's invoice, to the cent.
    invoice = _invoice(llm, since, until)
    assert invoice >= Decimal("0.10")
    for by in (
        [],
        ["customer"],
        ["feature"],
        ["customer", "feature"],
        ["team"],
        ["provider"],
        ["model"],
        ["day"],
        ["provider", "model", "customer"],
        ["month", "feature"],
    ):
        assert settled_total(settled(setup.ledger_path, *by)) == invoice, by
    by_model = {
        (r["model"], r["customer"]): r for r in settled(setup.ledger_path, "model", "customer")
    }
    assert {c for (m, c) in by_model if c == "(unattributed)"} == {"(unattributed)"}
    assert [m for (m, c) in by_model if c == "(unattributed)"] == [MINI]
    unattributed = by_model[(MINI, "(unattributed)")]["cost_usd"]
    assert abs(unattributed - unseen_cost) <= CENT * len(mini)
    haiku_settled = sum((r["cost_usd"] for (m, _), r in by_model.items() if m == HAIKU), Decimal(0))
    assert abs(haiku_settled - sum((r["billed_usd"] for r in haiku), Decimal(0))) <= CENT

    # The processor serves the gap as gauges, per provider and model.
    metrics = (
        urllib.request.urlopen(
            f"http://127.0.0.1:{setup.service.metrics.prometheus_port}/metrics", timeout=5
        )
        .read()
        .decode()
    )
    mini_gap = sum((r["gap_usd"] for r in mini), Decimal(0))
    assert _gauge(metrics, "spanledger_reconcile_gap_usd", MINI) == pytest.approx(float(mini_gap))
    haiku_gap = sum((r["gap_usd"] for r in haiku), Decimal(0))
    assert _gauge(metrics, "spanledger_reconcile_gap_usd", HAIKU) == pytest.approx(float(haiku_gap))
    assert _gauge(metrics, "spanledger_reconcile_gap_usd", SONNET) == 0
    haiku_billed = sum((r["billed_usd"] for r in haiku), Decimal(0))
    assert _gauge(metrics, "spanledger_reconcile_gap_share", HAIKU) == pytest.approx(
        float(haiku_gap / haiku_billed)
    )

    # A signed budget.drift alert for each model over 5%, and its log line.
    deliveries = {d.json["model"]: d for d in setup.webhook.deliveries}
    assert set(deliveries) == {MINI, HAIKU}
    for delivery in deliveries.values():
        assert delivery.headers["x-spanledger-event"] == "budget.drift"
        assert delivery.headers["x-spanledger-signature"] == sign(SECRET, delivery.body)
        assert delivery.json["threshold_percent"] == 5.0
        assert delivery.json["period_start"] == str(since)
    assert Decimal(deliveries[HAIKU].json["gap_usd"]) == haiku_gap
    alerts = [r.getMessage() for r in caplog.records if r.getMessage().startswith("budget alert")]
    assert len(alerts) == 2 and '"event": "budget.drift"' in alerts[0]
    assert KEYS["OPENAI_ADMIN_KEY"] not in run.out + run.err
