"""Per-tag cost, token and call counters for Prometheus and any OTLP metrics backend."""

from spanledger.processor.sinks.metrics.cardinality import CardinalityCap
from spanledger.processor.sinks.metrics.config import MetricsConfig
from spanledger.processor.sinks.metrics.sink import MetricsSink

__all__ = ["CardinalityCap", "MetricsConfig", "MetricsSink"]
