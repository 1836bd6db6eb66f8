"""Trace grouping and cost rollups: hold each trace's spans briefly, then price and annotate.

``TraceBuffer`` decides when a trace is complete enough to flush; ``TraceAnnotator`` prices its
inference spans and writes per-call, per-subtree and per-trace cost attributes. The pipeline
(``spanledger.processor.pipeline.core``) connects them to receivers, exporters and sinks.
"""

from spanledger.processor.otlp.wire import Origin, OriginTable, build_request
from spanledger.processor.rollup.annotate import (
    AnnotatedTrace,
    Pricer,
    TraceAnnotator,
    UsageExtractor,
    cost_attributes,
)
from spanledger.processor.rollup.buffer import (
    EARLY_CAPACITY,
    EARLY_MAX_WAIT,
    Admission,
    PendingTrace,
    TraceBuffer,
)
from spanledger.processor.rollup.config import RollupConfig

__all__ = [
    "EARLY_CAPACITY",
    "EARLY_MAX_WAIT",
    "Admission",
    "AnnotatedTrace",
    "Origin",
    "OriginTable",
    "PendingTrace",
    "Pricer",
    "RollupConfig",
    "TraceAnnotator",
    "TraceBuffer",
    "UsageExtractor",
    "build_request",
    "cost_attributes",
]
