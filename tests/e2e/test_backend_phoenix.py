"""The whole path with real components: ``opentelemetry-instrument python app.py`` → the
processor (configured by collector-config/direct/processor.yaml) → Arize Phoenix, read back
through Phoenix's REST API with the cost attributes on each LLM span and the total on the root.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from support.processes import run_instrumented

from spanledger import semconv
from spanledger.processor.config import load_config
from spanledger.processor.exporters import OtlpHttpExporterConfig
from spanledger.processor.receivers import GrpcReceiverConfig, HttpReceiverConfig
from spanledger.processor.service import Service
from spanledger.processor.sinks.ledger import Ledger
from spanledger.processor.sinks.metrics import MetricsConfig
from spanledger.standin import StandIn

from .phoenix_server import Phoenix

HERE = Path(__file__).parent
DIRECT_CONFIG = HERE.parents[1] / "collector-config" / "direct" / "processor.yaml"
PROJECT = "spanledger-e2e"
MILLION = Decimal(1_000_000)

# Published prices per million tokens. gpt-4o-mini: input $0.15, cached input $0.075,
# output $0.60. claude-sonnet-4: input $3, cache read $0.30, output $15.
OPENAI_COST = (200 * Decimal("0.15") + 1000 * Decimal("0.075") + 300 * Decimal("0.60")) / MILLION
ANTHROPIC_INPUT = 10 * Decimal(3) / MILLION
ANTHROPIC_CACHE_READ = 2000 * Decimal("0.30") / MILLION
ANTHROPIC_OUTPUT = 200 * Decimal(15) / MILLION
ANTHROPIC_COST = ANTHROPIC_INPUT + ANTHROPIC_CACHE_READ + ANTHROPIC_OUTPUT


@pytest.fixture
def processor(phoenix: Phoenix, tmp_path: Path) -> Iterator[Service]:
    """The processor from the shipped direct layout, moved to free ports and to this Phoenix."""
    config = load_config(DIRECT_CONFIG)
    (exporter,) = config.exporters
    assert isinstance(exporter, OtlpHttpExporterConfig)
    config.exporters = [replace(exporter, endpoint=phoenix.traces_endpoint, initial_backoff=0.2)]
    config.grpc = GrpcReceiverConfig(endpoint="127.0.0.1:0")
    config.http = HttpReceiverConfig(endpoint="127.0.0.1:0")
    config.metrics = MetricsConfig(prometheus_endpoint=None)
    config.ledger = replace(config.ledger, path=str(tmp_path / "spanledger.db"))
    config.rollup = replace(config.rollup, trace_idle=0.5, root_grace=0.3)
    service = Service(config)
    service.start()
    yield service
    service.stop()


def run_app(processor: Service, llm: StandIn) -> str:
    """Run agent_app.py the way users do, exporting to the processor; return its trace id."""
    assert processor.http is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SPANLEDGER_"))}
    env.update(
        OTEL_SERVICE_NAME="research-agent",
        OTEL_RESOURCE_ATTRIBUTES=f"openinference.project.name={PROJECT}",
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{processor.http.port}",
        OTEL_BSP_SCHEDULE_DELAY="100",
        OPENAI_BASE_URL=llm.openai_base_url,
        OPENAI_API_KEY="test-key",
        ANTHROPIC_BASE_URL=llm.anthropic_base_url,
        ANTHROPIC_API_KEY="test-key",
    )
    return run_instrumented(HERE / "agent_app.py", env=env).split()[-1]


def wait_for_trace(phoenix: Phoenix, trace_id: str, timeout: float = 30.0) -> list[dict[str, Any]]:
    """The trace's spans once Phoenix holds the root with its total and both LLM spans."""
    deadline = time.monotonic() + timeout
    spans: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        spans = phoenix.spans(PROJECT, trace_id)
        names = {span["name"] for span in spans}
        if {"research agent", "summarize sources"} <= names and len(llm_spans(spans)) >= 2:
            return spans
        time.sleep(0.3)
    raise AssertionError(f"trace {trace_id} incomplete in Phoenix after {timeout}s: {spans}")


def llm_spans(spans: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The inference spans by provider."""
    return {
        span["attributes"][semconv.GEN_AI_PROVIDER_NAME]: span
        for span in spans
        if span["attributes"].get(semconv.GEN_AI_OPERATION_NAME) == "chat"
    }


@pytest.mark.slow
def test_cost_reaches_phoenix(phoenix: Phoenix, processor: Service, llm: StandIn) -> None:
    trace_id = run_app(processor, llm)
    spans = wait_for_trace(phoenix, trace_id)
    by_provider = llm_spans(spans)
    assert set(by_provider) == {"openai", "anthropic"}

    for provider, cost, feature in (
        ("openai", OPENAI_COST, "research"),
        ("anthropic", ANTHROPIC_COST, "summarize"),
    ):
        attributes = by_provider[provider]["attributes"]
        assert attributes[semconv.COST_STATUS] == "priced", attributes
        assert attributes[semconv.COST_SOURCE] == "price_table"
        assert attributes[semconv.GEN_AI_USAGE_COST] == pytest.approx(float(cost), abs=1e-12)
        assert attributes[semconv.LLM_COST_TOTAL] == pytest.approx(float(cost), abs=1e-12)
        assert attributes["customer"] == "acme"
        assert attributes["feature"] == feature
    anthropic_attributes = by_provider["anthropic"]["attributes"]
    assert anthropic_attributes[semconv.COST_CACHE_READ] == pytest.approx(
        float(ANTHROPIC_CACHE_READ), abs=1e-12
    )
    assert anthropic_attributes[semconv.COST_OUTPUT] == pytest.approx(
        float(ANTHROPIC_OUTPUT), abs=1e-12
    )

    (root,) = [span for span in spans if not span.get("parent_span_id")]
    assert root["name"] == "research agent"
    total = root["attributes"]
    assert total[semconv.TRACE_COST] == pytest.approx(
        float(OPENAI_COST + ANTHROPIC_COST), abs=1e-12
    )
    assert total[semconv.TRACE_LLM_CALLS] == 2
    assert total[semconv.TRACE_INPUT_TOKENS] == 1200 + 10 + 2000
    assert total[semconv.TRACE_OUTPUT_TOKENS] == 300 + 200
    assert total[semconv.TRACE_UNPRICED_CALLS] == 0
    (step,) = [span for span in spans if span["name"] == "summarize sources"]
    assert step["attributes"][semconv.SUBTREE_COST] == pytest.approx(
        float(ANTHROPIC_COST), abs=1e-12
    )

    # The ledger written on the way agrees with what Phoenix shows.
    processor.stop()
    assert processor.config.ledger.path is not None
    with Ledger(processor.config.ledger.path) as ledger:
        rows = {row.key: row for row in ledger.aggregate(["feature"])}
    assert rows[("research",)].cost_usd == OPENAI_COST
    assert rows[("summarize",)].cost_usd == ANTHROPIC_COST
