"""The Grafana dashboard's PromQL runs against a real Prometheus scraping the processor."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from spanledger.processor.sinks.metrics import MetricsConfig, MetricsSink

from .traffic import DAY_NS, mixed_traffic

DASHBOARD = Path(__file__).parents[3] / "collector-config" / "grafana-dashboard.json"
TAGS = ("customer", "feature", "team", "env")
EXPOSED = {
    "spanledger_cost_usd_total",
    "spanledger_tokens_total",
    "spanledger_llm_calls_total",
    "spanledger_tag_overflows_total",
}


def _targets() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    found = []
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            found.append((panel["title"], target["expr"]))
    return found


def _concrete(expr: str) -> str:
    for variable, value in (
        ("$__rate_interval", "5s"),
        ("$__range", "10m"),
        ("$env", ".*"),
        ("$team", ".*"),
    ):
        expr = expr.replace(variable, value)
    assert "$" not in expr, expr
    return expr


def test_dashboard_names_only_exposed_metrics():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "spanledger-cost"
    titles = {panel["title"] for panel in dashboard["panels"]}
    for needed in (
        "Cost over time by feature",
        "Cost over time by customer (top 10)",
        "Cost over time by model",
        "Untagged share of spend",
        "Unpriced share of calls",
        "Top customers in range",
    ):
        assert needed in titles
    for title, expr in _targets():
        metrics = set(re.findall(r"\bspanledger_[a-z_]+_total\b", expr))
        assert metrics and metrics <= EXPOSED, (title, metrics)


@pytest.mark.slow
def test_every_panel_query_runs_and_returns_data(start_prometheus):
    sink = MetricsSink(MetricsConfig(prometheus_endpoint="127.0.0.1:0", cardinality_limit=2), TAGS)
    try:
        prometheus = start_prometheus(f"127.0.0.1:{sink.prometheus_port}")
        calls = mixed_traffic(300, time.time_ns() - DAY_NS, seed=4)
        # Series exist before the second half arrives, so increase() sees it.
        sink.record(calls[:150])
        prometheus.wait_for("sum(spanledger_llm_calls_total)", 150)
        sink.record(calls[150:])
        prometheus.wait_for("sum(spanledger_llm_calls_total)", 300)
        time.sleep(0.6)
        for title, expr in _targets():
            result = prometheus.query(_concrete(expr))
            assert result, f"{title}: {expr} returned nothing"
            values = [float(r["value"][1]) for r in result]
            assert all(v >= 0 for v in values), (title, values)
            if "share" in title.lower():
                assert all(0 <= v <= 1 for v in values), (title, values)
    finally:
        sink.shutdown(2)
