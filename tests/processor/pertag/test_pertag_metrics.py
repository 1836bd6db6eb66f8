"""The metrics sink: exposition names, the OTLP push over gRPC and HTTP, config problems."""

from __future__ import annotations

import re
import socket
import time
import urllib.request
from decimal import Decimal

import pytest

from spanledger.processor.sinks.metrics import CardinalityCap, MetricsConfig, MetricsSink
from spanledger.semconv import OVERFLOW, UNTAGGED

from .otlp_metrics_receivers import GrpcMetricsReceiver, HttpMetricsReceiver
from .traffic import DAY_NS, call, mixed_traffic

TAGS = ("customer", "feature")


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def test_exposition_names_and_labels():
    sink = MetricsSink(MetricsConfig(prometheus_endpoint="127.0.0.1:0"), TAGS)
    try:
        sink.record(
            [
                call(0, time.time_ns(), {"customer": "acme", "feature": "chat"}),
                call(1, time.time_ns(), {"customer": UNTAGGED, "feature": "chat"}, priced=False),
            ]
        )
        text = _scrape(sink.prometheus_port)
    finally:
        sink.shutdown(1)
    families = set(re.findall(r"^# TYPE (\S+) counter$", text, re.MULTILINE))
    assert families == {
        "spanledger_cost_usd_total",
        "spanledger_tokens_total",
        "spanledger_llm_calls_total",
    }
    cost = re.search(r"^spanledger_cost_usd_total\{(.*)\} (\S+)$", text, re.MULTILINE)
    assert cost is not None
    labels = dict(re.findall(r'(\w+)="([^"]*)"', cost.group(1)))
    assert labels["customer"] == "acme"
    assert labels["feature"] == "chat"
    assert labels["gen_ai_provider_name"] == "openai"
    assert labels["gen_ai_response_model"] == "gpt-4o"
    # 1000 input tokens at $2.50/M plus 100 output tokens at $10/M.
    assert float(cost.group(2)) == 0.0035
    assert (
        'spanledger_cost_status="unpriced",' in text or 'spanledger_cost_status="unpriced"}' in text
    )
    for kind in ("input", "output", "cache_read"):
        assert f'type="{kind}"' in text
    # The unpriced call is counted but has no cost series of its own.
    assert text.count("spanledger_cost_usd_total{") == 1


def test_series_values_are_exact_sums_not_float_accumulations():
    sink = MetricsSink(MetricsConfig(prometheus_endpoint="127.0.0.1:0"), TAGS)
    tags = {"customer": "acme", "feature": "chat"}
    try:
        # 0.1 added ten times in floats is 0.9999999999999999; the exact total is 1.
        calls = [
            call(i, time.time_ns(), tags, input_tokens=40_000, output_tokens=0) for i in range(10)
        ]
        assert all(c.cost.total == Decimal("0.1") for c in calls)
        sink.record(calls)
        text = _scrape(sink.prometheus_port)
    finally:
        sink.shutdown(1)
    assert re.search(r'^spanledger_cost_usd_total\{customer="acme".*\} 1\.0$', text, re.MULTILINE)


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_otlp_push_carries_the_same_counters(protocol):
    receiver = GrpcMetricsReceiver() if protocol == "grpc" else HttpMetricsReceiver()
    endpoint = (
        f"127.0.0.1:{receiver.port}" if protocol == "grpc" else f"http://127.0.0.1:{receiver.port}"
    )
    config = MetricsConfig(
        prometheus_endpoint=None,
        otlp_endpoint=endpoint,
        otlp_protocol=protocol,
        export_interval=60.0,
    )
    calls = mixed_traffic(120, time.time_ns() - DAY_NS, tag_keys=TAGS)
    sink = MetricsSink(config, TAGS)
    try:
        assert sink.prometheus_port is None
        sink.record(calls)
    finally:
        # The interval is long: the totals arrive with the final push at shutdown.
        sink.shutdown(5)
        receiver.stop()
    unit, points = receiver.received.latest_points("spanledger.cost")
    assert unit == "USD"
    exact: dict[str, Decimal] = {}
    for c in calls:
        exact[c.tags["feature"]] = exact.get(c.tags["feature"], Decimal(0)) + c.cost.total
    pushed: dict[str, float] = {}
    for attributes, value in points:
        assert set(attributes) == {*TAGS, "gen_ai.provider.name", "gen_ai.response.model"}
        pushed[attributes["feature"]] = pushed.get(attributes["feature"], 0.0) + value
    assert pushed.keys() == exact.keys()
    for feature, value in pushed.items():
        assert value == pytest.approx(float(exact[feature]), rel=1e-12)
    _, call_points = receiver.received.latest_points("spanledger.llm_calls")
    assert sum(v for _, v in call_points) == len(calls)
    token_unit, token_points = receiver.received.latest_points("spanledger.tokens")
    assert token_unit == "{token}"
    assert sum(v for a, v in token_points if a["type"] == "output") == sum(
        c.usage.output_tokens for c in calls
    )
    if protocol == "http":
        assert receiver.paths and set(receiver.paths) == {"/v1/metrics"}


def test_periodic_push_without_shutdown():
    receiver = GrpcMetricsReceiver()
    config = MetricsConfig(
        prometheus_endpoint=None, otlp_endpoint=f"127.0.0.1:{receiver.port}", export_interval=0.2
    )
    sink = MetricsSink(config, TAGS)
    try:
        sink.record(
            [call(i, time.time_ns(), {"customer": "acme", "feature": "chat"}) for i in range(3)]
        )
        deadline = time.monotonic() + 10
        points = None
        while time.monotonic() < deadline:
            found = receiver.received.latest_points("spanledger.llm_calls")
            if found and sum(v for _, v in found[1]) == 3:
                points = found[1]
                break
            time.sleep(0.05)
        assert points is not None, "no periodic push carried the three calls"
    finally:
        sink.shutdown(2)
        receiver.stop()


def test_cardinality_cap_keeps_first_values_and_reserved_buckets():
    cap = CardinalityCap(2)
    assert cap.bucket("customer", "a") == ("a", False)
    assert cap.bucket("customer", "b") == ("b", False)
    assert cap.bucket("customer", "c") == (OVERFLOW, True)
    assert cap.bucket("customer", "a") == ("a", False)
    assert cap.bucket("customer", UNTAGGED) == (UNTAGGED, False)
    assert cap.bucket("feature", "c") == ("c", False)
    assert cap.distinct("customer") == 2
    with pytest.raises(ValueError, match="at least 1"):
        CardinalityCap(0)


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        (MetricsConfig(prometheus_endpoint="localhost"), "host:port"),
        (MetricsConfig(prometheus_endpoint="http://127.0.0.1:9464"), "without a scheme"),
        (MetricsConfig(prometheus_endpoint="127.0.0.1:70000"), "out of range"),
        (MetricsConfig(otlp_protocol="thrift"), "otlp protocol"),
        (MetricsConfig(otlp_endpoint=" "), "otlp endpoint is empty"),
        (MetricsConfig(export_interval=0), "export_interval"),
        (MetricsConfig(cardinality_limit=0), "cardinality_limit"),
    ],
)
def test_config_problems_are_reported(config, problem):
    problems = config.problems()
    assert len(problems) == 1
    assert problem in problems[0]
    with pytest.raises(ValueError, match="invalid metrics configuration"):
        MetricsSink(config, TAGS)


def test_tag_keys_cannot_reuse_the_metrics_own_labels():
    with pytest.raises(ValueError, match=r"\['type'\] clash"):
        MetricsSink(MetricsConfig(prometheus_endpoint=None), ["customer", "type"])


def test_defaults_are_valid_and_a_taken_port_is_a_clear_error():
    assert MetricsConfig().problems() == []
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=f"cannot serve Prometheus metrics on 127.0.0.1:{port}"):
            MetricsSink(MetricsConfig(prometheus_endpoint=f"127.0.0.1:{port}"), TAGS)


def test_a_malformed_call_is_skipped_and_the_rest_counted():
    sink = MetricsSink(MetricsConfig(prometheus_endpoint="127.0.0.1:0"), TAGS)
    good = call(1, time.time_ns(), {"customer": "acme", "feature": "chat"})
    broken = call(2, time.time_ns(), {"customer": "acme", "feature": "chat"})
    broken.cost.total = None  # type: ignore[assignment]
    try:
        sink.record([broken, good])
        text = _scrape(sink.prometheus_port)
    finally:
        sink.shutdown(1)
    assert re.search(
        r'^spanledger_llm_calls_total\{.*customer="acme".*\} 1\.0$', text, re.MULTILINE
    )
