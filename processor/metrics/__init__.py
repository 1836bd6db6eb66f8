"""Per-tag cost, token and call counters for Prometheus and any OTLP metrics backend."""

from spanledger.processor.metrics.cardinality import CardinalityCap
from spanledger.processor.metrics.config import MetricsConfig
from spanledger.processor.metrics.sink import MetricsSink

__all__ = ["CardinalityCap", "MetricsConfig", "MetricsSink"]
