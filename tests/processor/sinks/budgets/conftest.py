"""Fixtures for the budget tests: a running processor with budgets on a movable clock, an
instrumented application (real OpenAI and Anthropic SDKs against the stand-in) that sends its
spans to it over OTLP/gRPC, and a local webhook receiver."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from spanledger.instrumentation.anthropic import AnthropicInstrumentor
from spanledger.instrumentation.baggage.span_processor import TagSpanProcessor
from spanledger.instrumentation.budgets import CACHE_ENV, ENDPOINT_ENV, ENFORCE_ENV, TOKEN_ENV
from spanledger.instrumentation.openai import OpenAIInstrumentor
from spanledger.processor.config import load_config
from spanledger.processor.service import Service
from spanledger.semconv import DEFAULT_TAG_KEYS

from .support import Clock, WebhookReceiver

TOKEN = "budget-test-token"
WEBHOOK_SECRET = "webhook-test-secret"


@dataclass
class Processor:
    service: Service
    config_file: Path
    clock: Clock

    @property
    def status_url(self) -> str:
        assert self.service.budgets is not None and self.service.budgets.server is not None
        return self.service.budgets.server.url

    @property
    def grpc_endpoint(self) -> str:
        assert self.service.grpc is not None
        return f"127.0.0.1:{self.service.grpc.port}"

    def status(self, token: str = TOKEN) -> dict[str, Any]:
        request = urllib.request.Request(
            self.status_url + "/v1/budget/status", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())

    def spend(self, budget: str, **scope: str) -> str | None:
        for row in self.status()["budgets"]:
            if row["budget"] == budget and row["scope"] == scope and row["window"] != "lifetime":
                return row["spend_usd"]
        return None

    def metrics_text(self) -> str:
        assert self.service.metrics is not None
        url = f"http://127.0.0.1:{self.service.metrics.prometheus_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.stop()


@pytest.fixture
def start_processor(tmp_path: Path) -> Iterator[Callable[..., Processor]]:
    """Start a processor whose config has ``budgets`` (status endpoint and ledger included)."""
    started: list[Service] = []

    def start(budgets: dict[str, Any], clock: Clock | None = None) -> Processor:
        config = {
            "receivers": {"otlp": {"grpc": {"endpoint": "127.0.0.1:0"}, "http": None}},
            "rollup": {"trace_idle": "200ms", "root_grace": "100ms"},
            "metrics": {"prometheus": {"endpoint": "127.0.0.1:0"}},
            "ledger": {"path": "ledger.db"},
            "budgets": {
                "status": {"endpoint": "127.0.0.1:0", "bearer_token": TOKEN},
                **budgets,
            },
        }
        config_file = tmp_path / "processor.yaml"
        config_file.write_text(yaml.safe_dump(config))
        clock = clock or Clock(datetime.now(UTC))
        service = Service(load_config(config_file), budget_clock=clock)
        service.start()
        started.append(service)
        return Processor(service, config_file, clock)

    yield start
    for service in started:
        service.stop()


@pytest.fixture
def app_tracing(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Processor], None]]:
    """Instrument the SDKs, send spans (with tags) to the processor, enforce its budgets."""
    providers: list[TracerProvider] = []
    instrumentors: list[Any] = []

    def connect(processor: Processor) -> None:
        # An instrumentor instruments once, so connecting again (to a restarted processor)
        # first removes the earlier instrumentation; else the app's spans would go on to the
        # processor that is gone, each export retried for seconds before it is given up.
        for instrumentor in instrumentors:
            instrumentor.uninstrument()
        instrumentors.clear()
        provider = TracerProvider()
        provider.add_span_processor(TagSpanProcessor(DEFAULT_TAG_KEYS, 128))
        exporter = OTLPSpanExporter(endpoint=processor.grpc_endpoint, insecure=True)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        providers.append(provider)
        for instrumentor in (OpenAIInstrumentor(), AnthropicInstrumentor()):
            instrumentor.instrument(tracer_provider=provider)
            instrumentors.append(instrumentor)
        monkeypatch.setenv(ENFORCE_ENV, "1")
        monkeypatch.setenv(ENDPOINT_ENV, processor.status_url)
        monkeypatch.setenv(TOKEN_ENV, TOKEN)
        monkeypatch.setenv(CACHE_ENV, "0")

    yield connect
    for instrumentor in instrumentors:
        instrumentor.uninstrument()
    for provider in providers:
        provider.shutdown()
