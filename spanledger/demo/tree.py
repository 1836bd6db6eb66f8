"""Keep the processor's output in memory and draw one trace as a tree of costs."""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from spanledger import semconv


@dataclass
class SpanView:
    """The few fields of a forwarded span that the tree shows."""

    span_id: bytes
    parent_id: bytes
    name: str
    service: str
    start: int
    attributes: dict[str, object]
    children: list[SpanView] = field(default_factory=list)


class RecordingExporter:
    """A ``SpanExporter`` that keeps every forwarded span, grouped by trace."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.traces: dict[bytes, list[SpanView]] = defaultdict(list)

    def export(self, request: ExportTraceServiceRequest) -> None:
        with self._lock:
            for resource_spans in request.resource_spans:
                service = _service_name(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.traces[span.trace_id].append(
                            SpanView(
                                span.span_id,
                                span.parent_span_id,
                                span.name,
                                service,
                                span.start_time_unix_nano,
                                {kv.key: _plain(kv.value) for kv in span.attributes},
                            )
                        )

    def shutdown(self, timeout: float) -> None:
        """Nothing to drain: everything is already in memory."""

    def trace_with_most_services(self) -> list[SpanView]:
        """The trace that crossed the most services (ties: the most spans)."""
        with self._lock:
            if not self.traces:
                return []
            return max(
                self.traces.values(),
                key=lambda spans: (len({s.service for s in spans}), len(spans)),
            )


def render_cost_tree(spans: list[SpanView]) -> str:
    """One line per span, indented under its parent: name, service, subtree and own cost."""
    if not spans:
        return "(no trace recorded)"
    by_id = {s.span_id: s for s in spans}
    for span in spans:
        span.children.clear()
    roots = []
    for span in sorted(spans, key=lambda s: s.start):
        parent = by_id.get(span.parent_id)
        (parent.children if parent else roots).append(span)
    lines: list[str] = []
    for root in roots:
        _draw(root, "", True, lines, top=True)
    return "\n".join(lines)


def _draw(span: SpanView, prefix: str, last: bool, lines: list[str], top: bool = False) -> None:
    attrs = span.attributes
    subtree = attrs.get(semconv.SUBTREE_COST)
    own = attrs.get(semconv.GEN_AI_USAGE_COST)
    status = attrs.get(semconv.COST_STATUS)
    parts = [f"{span.name} [{span.service}]"]
    if subtree is not None:
        parts.append(f"subtree ${float(subtree):.6f}")
    if own is not None:
        parts.append(f"call ${float(own):.6f}")
    elif status:
        parts.append(str(status))
    if top and attrs.get(semconv.TRACE_COST) is not None:
        parts.append(
            f"trace ${float(attrs[semconv.TRACE_COST]):.6f} in "
            f"{attrs.get(semconv.TRACE_LLM_CALLS)} calls"
        )
    branch = "" if top else ("└─ " if last else "├─ ")
    lines.append(prefix + branch + "  ".join(parts))
    child_prefix = prefix if top else prefix + ("   " if last else "│  ")
    for index, child in enumerate(span.children):
        _draw(child, child_prefix, index == len(span.children) - 1, lines)


def _service_name(attributes: object) -> str:
    for kv in attributes:  # type: ignore[attr-defined]
        if kv.key == "service.name":
            return kv.value.string_value
    return "unknown"


def _plain(value: AnyValue) -> object:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None
