"""A real Prometheus server scrapes the processor's metrics endpoint: PromQL sums by feature and
by customer equal the ledger's totals for the same traffic."""

from __future__ import annotations

import math
import time
from decimal import Decimal

import pytest

from spanledger.processor.model import CountedCall
from spanledger.processor.sinks.ledger import Ledger, LedgerConfig, LedgerSink
from spanledger.processor.sinks.metrics import MetricsConfig, MetricsSink
from spanledger.semconv import OVERFLOW, UNTAGGED

from .traffic import DAY_NS, mixed_traffic

pytestmark = pytest.mark.slow  # each test starts a real Prometheus and waits for its scrapes

TAGS = ("customer", "feature", "team", "env")


def _same_money(promql_value: float, exact: Decimal) -> bool:
    return math.isclose(promql_value, float(exact), rel_tol=1e-12, abs_tol=1e-15)


def _record_both(calls: list[CountedCall], metrics: MetricsSink, sink: LedgerSink) -> None:
    for start in range(0, len(calls), 50):
        batch = calls[start : start + 50]
        metrics.record(batch)
        sink.record(batch)


def test_promql_sums_by_feature_and_customer_equal_the_ledger(start_prometheus, ledger_path):
    metrics = MetricsSink(MetricsConfig(prometheus_endpoint="127.0.0.1:0"), TAGS)
    sink = LedgerSink(LedgerConfig(path=str(ledger_path)), TAGS)
    try:
        prometheus = start_prometheus(f"127.0.0.1:{metrics.prometheus_port}")
        calls = mixed_traffic(600, time.time_ns() - DAY_NS)
        # Redelivered calls must be counted once by both.
        _record_both(calls + calls[:40], metrics, sink)
        prometheus.wait_for("sum(spanledger_llm_calls_total)", 600)
        with Ledger(ledger_path) as ledger:
            total = ledger.aggregate()[0]
            for key, dimension in (
                ("feature", "feature"),
                ("customer", "customer"),
                ("gen_ai_provider_name", "provider"),
                ("gen_ai_response_model", "model"),
            ):
                exact = {g.key[0]: g for g in ledger.aggregate([dimension])}
                cost = prometheus.by_label(f"sum by ({key}) (spanledger_cost_usd_total)", key)
                calls_by = prometheus.by_label(f"sum by ({key}) (spanledger_llm_calls_total)", key)
                tokens = prometheus.by_label(
                    f'sum by ({key}) (spanledger_tokens_total{{type="input"}})', key
                )
                assert set(calls_by) == set(exact), key
                for value, group in exact.items():
                    assert _same_money(cost.get(value, 0.0), group.cost_usd), (key, value)
                    assert calls_by[value] == group.calls, (key, value)
                    assert tokens[value] == group.input_tokens, (key, value)
                if key in ("feature", "customer"):
                    assert exact[UNTAGGED].calls > 0
                    assert _same_money(sum(cost.values()), total.cost_usd)
        promql_total = float(prometheus.query("sum(spanledger_cost_usd_total)")[0]["value"][1])
        assert _same_money(promql_total, total.cost_usd)
        assert total.cost_usd == sum((c.cost.total for c in calls), Decimal(0))
        status = prometheus.by_label(
            "sum by (spanledger_cost_status) (spanledger_llm_calls_total)", "spanledger_cost_status"
        )
        unpriced = len([c for c in calls if c.cost.status == "unpriced"])
        assert unpriced > 0
        assert total.unpriced_calls == unpriced
        assert status == {"priced": 600 - unpriced, "unpriced": unpriced}
    finally:
        metrics.shutdown(2)
        sink.shutdown(2)


def test_values_past_the_cardinality_cap_are_other_and_counted(start_prometheus, ledger_path):
    limit = 3
    metrics = MetricsSink(
        MetricsConfig(prometheus_endpoint="127.0.0.1:0", cardinality_limit=limit), TAGS
    )
    sink = LedgerSink(LedgerConfig(path=str(ledger_path)), TAGS)
    customers = (*(f"customer-{i}" for i in range(8)), UNTAGGED)
    try:
        prometheus = start_prometheus(f"127.0.0.1:{metrics.prometheus_port}")
        calls = mixed_traffic(400, time.time_ns() - DAY_NS, customers=customers, seed=11)
        _record_both(calls, metrics, sink)
        prometheus.wait_for("sum(spanledger_llm_calls_total)", 400)

        seen_first = list(
            dict.fromkeys(c.tags["customer"] for c in calls if c.tags["customer"] != UNTAGGED)
        )
        kept = set(seen_first[:limit])
        cost = prometheus.by_label("sum by (customer) (spanledger_cost_usd_total)", "customer")
        calls_by = prometheus.by_label("sum by (customer) (spanledger_llm_calls_total)", "customer")
        assert set(calls_by) == kept | {OVERFLOW, UNTAGGED}
        with Ledger(ledger_path) as ledger:
            exact = {g.key[0]: g for g in ledger.aggregate(["customer"])}
            total = ledger.aggregate()[0]
        # Kept customers match the ledger one for one; everything past the cap is (other).
        for name in kept | {UNTAGGED}:
            assert _same_money(cost[name], exact[name].cost_usd)
            assert calls_by[name] == exact[name].calls
        folded = [g for name, g in exact.items() if name not in kept | {UNTAGGED}]
        assert calls_by[OVERFLOW] == sum(g.calls for g in folded)
        assert _same_money(cost[OVERFLOW], sum((g.cost_usd for g in folded), Decimal(0)))
        assert _same_money(sum(cost.values()), total.cost_usd)
        overflows = prometheus.by_label("spanledger_tag_overflows_total", "tag")
        assert overflows == {"customer": sum(g.calls for g in folded)}
        # The feature dimension stayed under the cap and is untouched.
        features = prometheus.by_label("sum by (feature) (spanledger_llm_calls_total)", "feature")
        assert OVERFLOW not in features
    finally:
        metrics.shutdown(2)
        sink.shutdown(2)
