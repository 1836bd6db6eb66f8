"""Spans sent over OTLP/gRPC to a running processor: Prometheus (scraping its endpoint) and the
ledger agree, and ``spanledger report --config`` reads the same ledger exactly."""

from __future__ import annotations

import io
import json
import math
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind
from support.sinks import TraceRecorder
from support.waiting import wait_for

from spanledger.processor.cli.report import run_report
from spanledger.processor.config import load_config
from spanledger.processor.service import Service
from spanledger.processor.sinks.ledger import Ledger
from spanledger.semconv import OVERFLOW, UNTAGGED

DAY_NS = 86_400 * 10**9
TAGS = ["customer", "feature", "env", "version"]
CUSTOMERS = [f"customer-{i}" for i in range(6)]
UNKNOWN_MODEL = "spanledger-test-no-such-model"


@dataclass
class Sent:
    customer: str | None
    feature: str
    version: str
    model: str
    input_tokens: int
    output_tokens: int
    start_ns: int


def _traffic(now_ns: int) -> list[Sent]:
    sent = []
    for i in range(240):
        previous_period = i % 2 == 0
        feature = ("search", "chat", "summarize")[i % 3]
        # The search prompt tripled in the current period; everything else stayed the same.
        input_tokens = 400 + (i // 6 % 7) * 10  # same spread in both periods
        if feature == "search" and not previous_period:
            input_tokens *= 3
        sent.append(
            Sent(
                customer=None if i % 11 == 0 else CUSTOMERS[(i * 5) % len(CUSTOMERS)],
                feature=feature,
                # v2 shipped with the current period.
                version="v1" if previous_period else "v2",
                model=UNKNOWN_MODEL if i % 23 == 0 else ("gpt-4o", "gpt-4o-mini")[i // 6 % 2],
                input_tokens=input_tokens,
                output_tokens=50 + i % 13,
                start_ns=now_ns - (15 if previous_period else 5) * DAY_NS + i * 10**9,
            )
        )
    return sent


def _send(endpoint: str, sent: list[Sent]) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "shop", "env": "prod"}))
    provider.add_span_processor(
        BatchSpanProcessor(
            OTLPSpanExporter(endpoint=endpoint, insecure=True), max_export_batch_size=64
        )
    )
    tracer = provider.get_tracer("shop")
    for call in sent:
        tags = {"feature": call.feature, "version": call.version}
        if call.customer:
            tags["customer"] = call.customer
        root = tracer.start_span("handle request", start_time=call.start_ns, attributes=tags)
        with trace.use_span(root, end_on_exit=False):
            chat = tracer.start_span(
                f"chat {call.model}",
                kind=SpanKind.CLIENT,
                start_time=call.start_ns + 1000,
                attributes={
                    **tags,
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": call.model,
                    "gen_ai.response.model": call.model,
                    "gen_ai.usage.input_tokens": call.input_tokens,
                    "gen_ai.usage.output_tokens": call.output_tokens,
                },
            )
            chat.end(end_time=call.start_ns + 2000)
        root.end(end_time=call.start_ns + 3000)
    assert provider.force_flush(30_000)
    provider.shutdown()


def _ledger_calls(path: Path) -> int:
    if not path.exists():
        return 0
    with Ledger(path) as ledger:
        return ledger.aggregate()[0].calls


def _report(config: Path, *args: str) -> list[dict]:
    out = io.StringIO()
    assert run_report(["--config", str(config), *args, "--format", "json"], out=out) == 0
    return json.loads(out.getvalue(), parse_float=Decimal)


@pytest.fixture
def processor(tmp_path):
    config_file = tmp_path / "processor.yaml"
    config_file.write_text(
        "receivers: {otlp: {grpc: {endpoint: 127.0.0.1:0}, http: null}}\n"
        f"tags: [{', '.join(TAGS)}]\n"
        "rollup: {trace_idle: 200ms, root_grace: 100ms}\n"
        "metrics: {prometheus: {endpoint: 127.0.0.1:0}, cardinality_limit: 4}\n"
        "ledger: {path: data/spanledger.db}\n"
    )
    forwarded = TraceRecorder()
    service = Service(load_config(config_file), extra_exporters=[forwarded])
    service.start()
    try:
        yield service, config_file, forwarded
    finally:
        service.stop()


@pytest.mark.slow
def test_prometheus_ledger_and_report_agree_for_the_same_traffic(processor, start_prometheus):
    service, config_file, forwarded = processor
    ledger_path = config_file.parent / "data" / "spanledger.db"
    prometheus = start_prometheus(f"127.0.0.1:{service.metrics.prometheus_port}")
    sent = _traffic(time.time_ns())
    _send(f"127.0.0.1:{service.grpc.port}", sent)
    wait_for(
        lambda: _ledger_calls(ledger_path) == len(sent),
        "every call in the ledger",
        timeout=30.0,
        interval=0.1,
    )
    prometheus.wait_for("sum(spanledger_llm_calls_total)", len(sent))

    with Ledger(ledger_path) as ledger:
        (total,) = ledger.aggregate()
        by_feature = {g.key[0]: g for g in ledger.aggregate(["feature"])}
        by_customer = {g.key[0]: g for g in ledger.aggregate(["customer"])}
    unknown = sum(1 for s in sent if s.model == UNKNOWN_MODEL)
    assert total.unpriced_calls == unknown > 0
    assert total.cost_usd > 0
    # The processor wrote the same dollars on the spans it forwarded.
    costs = [item.attributes.get("gen_ai.usage.cost") for item in forwarded.forwarded()]
    assert math.isclose(sum(c for c in costs if c is not None), float(total.cost_usd), rel_tol=1e-9)

    # PromQL by feature equals the ledger, dollar for dollar and call for call.
    cost = prometheus.by_label("sum by (feature) (spanledger_cost_usd_total)", "feature")
    calls = prometheus.by_label("sum by (feature) (spanledger_llm_calls_total)", "feature")
    assert set(calls) == set(by_feature) == {"search", "chat", "summarize"}
    for feature, group in by_feature.items():
        assert math.isclose(cost[feature], float(group.cost_usd), rel_tol=1e-12)
        assert calls[feature] == group.calls

    # By customer: four customers keep their names (the cap), the rest are (other).
    cost = prometheus.by_label("sum by (customer) (spanledger_cost_usd_total)", "customer")
    calls = prometheus.by_label("sum by (customer) (spanledger_llm_calls_total)", "customer")
    named = {c for c in calls if c not in (OVERFLOW, UNTAGGED)}
    assert len(named) == 4
    assert set(by_customer) == {*CUSTOMERS, UNTAGGED}
    for customer in (*named, UNTAGGED):
        assert math.isclose(cost[customer], float(by_customer[customer].cost_usd), rel_tol=1e-12)
        assert calls[customer] == by_customer[customer].calls
    folded = [g for name, g in by_customer.items() if name not in (*named, UNTAGGED)]
    assert calls[OVERFLOW] == sum(g.calls for g in folded)
    assert math.isclose(
        cost[OVERFLOW], float(sum((g.cost_usd for g in folded), Decimal(0))), rel_tol=1e-12
    )
    overflows = prometheus.by_label("spanledger_tag_overflows_total", "tag")
    assert overflows == {"customer": sum(g.calls for g in folded)}
    assert math.isclose(
        float(prometheus.query("sum(spanledger_cost_usd_total)")[0]["value"][1]),
        float(total.cost_usd),
        rel_tol=1e-12,
    )

    # The report, pointed at the processor's config, adds up exactly in every grouping.
    for by in (
        ["customer"],
        ["feature"],
        ["env"],
        ["model"],
        ["provider"],
        ["day"],
        ["week"],
        ["month"],
        ["customer", "feature"],
    ):
        rows = _report(config_file, *(a for key in by for a in ("--by", key)))
        assert sum(r["cost_usd"] for r in rows) == total.cost_usd, by
        assert sum(r["calls"] for r in rows) == len(sent), by
    envs = _report(config_file, "--by", "env")
    assert [(r["env"], r["calls"]) for r in envs] == [("prod", len(sent))]
    top = _report(config_file, "--by", "customer", "--top", "3")
    assert top[-1]["customer"] == OVERFLOW
    assert sum(r["cost_usd"] for r in top) == total.cost_usd

    # The current ten days against the ten before: the search prompt tripled.
    rows = {r["feature"]: r for r in _report(config_file, "--by", "feature", "--since", "10d")}
    assert rows["search"]["avg_input_tokens_change_pct"] == 200
    assert rows["chat"]["avg_input_tokens_change_pct"] == 0
    assert rows["search"]["change_usd"] > 0
    current = sum(r["cost_usd"] for r in rows.values())
    previous = sum(r["previous_cost_usd"] for r in rows.values())
    assert current + previous == total.cost_usd

    # Version comparison: cost per priced call of v2 against v1, per feature.
    compared = _report(config_file, "--by", "feature", "--compare", "version=v1,v2")
    assert {(r["feature"], r["version"]) for r in compared} == {
        (f, v) for f in ("search", "chat", "summarize") for v in ("v1", "v2")
    }
    assert sum(r["cost_usd"] for r in compared) == total.cost_usd
    assert sum(r["calls"] for r in compared) == len(sent)
    search_v2 = next(r for r in compared if (r["feature"], r["version"]) == ("search", "v2"))
    assert search_v2["cost_per_call_change_pct"] > 100
