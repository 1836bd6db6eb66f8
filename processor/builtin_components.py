"""The component kinds the processor ships with, entered in the registry (``registry``).

Exporters: ``otlp_http``, ``otlp_grpc``. Receivers (under ``receivers.otlp``): ``grpc``,
``http``. Sinks, each under the section of its name: ``metrics``, ``ledger``, ``budgets``, in
that order (the ledger and budgets publish gauges on the metrics' meters).
"""

from __future__ import annotations

from opentelemetry.metrics import Meter

from spanledger.processor.exporters import (
    OtlpGrpcExporter,
    OtlpGrpcExporterConfig,
    OtlpHttpExporter,
    OtlpHttpExporterConfig,
)
from spanledger.processor.receivers import (
    GrpcReceiver,
    GrpcReceiverConfig,
    HttpReceiver,
    HttpReceiverConfig,
)
from spanledger.processor.registry import (
    EXPORTER,
    RECEIVER,
    SINK,
    ComponentKind,
    Registry,
    SinkWiring,
)
from spanledger.processor.sinks.budgets import BudgetsConfig, BudgetSink
from spanledger.processor.sinks.ledger import LedgerConfig, LedgerSink
from spanledger.processor.sinks.ledger.config import read_ledger
from spanledger.processor.sinks.metrics import MetricsConfig, MetricsSink
from spanledger.processor.sinks.metrics.config import read_metrics


def metrics_sink(config: MetricsConfig, wiring: SinkWiring) -> MetricsSink | None:
    """Per-tag counters, when they are served (Prometheus) or pushed (OTLP) somewhere."""
    if not (config.prometheus_endpoint or config.otlp_endpoint):
        return None
    return MetricsSink(config, wiring.config.tags)


def ledger_sink(config: LedgerConfig, wiring: SinkWiring) -> LedgerSink | None:
    """The ledger, unless disabled; its gauges go on the metrics' meters."""
    if not config.enabled:
        return None
    sink = LedgerSink(config, wiring.config.tags)
    for meter in _meters(wiring):
        sink.register_gauges(meter)
    return sink


def budget_sink(config: BudgetsConfig, wiring: SinkWiring) -> BudgetSink | None:
    """Budgets, when limits are set; they read the ledger's spend when there is a ledger."""
    if not config.active:
        return None
    ledger = wiring.config.ledger
    sink = BudgetSink(
        config,
        wiring.config.tags,
        ledger=ledger if ledger.enabled else None,
        clock=wiring.clock,
    )
    for meter in _meters(wiring):
        sink.register_gauge(meter)
    return sink


def _meters(wiring: SinkWiring) -> list[Meter]:
    metrics = wiring.built.get("metrics")
    return metrics.meters() if isinstance(metrics, MetricsSink) else []


def register_builtins(registry: Registry) -> None:
    """Enter the built-in kinds in ``registry``."""
    for kind in (
        ComponentKind(EXPORTER, "otlp_http", OtlpHttpExporterConfig, OtlpHttpExporter),
        ComponentKind(EXPORTER, "otlp_grpc", OtlpGrpcExporterConfig, OtlpGrpcExporter),
        ComponentKind(RECEIVER, "grpc", GrpcReceiverConfig, GrpcReceiver),
        ComponentKind(RECEIVER, "http", HttpReceiverConfig, HttpReceiver),
        ComponentKind(SINK, "metrics", MetricsConfig, metrics_sink, parse=read_metrics),
        ComponentKind(SINK, "ledger", LedgerConfig, ledger_sink, parse=read_ledger),
        ComponentKind(SINK, "budgets", BudgetsConfig, budget_sink),
    ):
        registry.register(kind)
