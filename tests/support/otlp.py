"""OTLP requests: builders for the requests tests send, readers for what arrives.

Two ways to build a request:

- ``make_request(spans, service, seed)``: one resource, ``spans`` GenAI-looking spans of one
  trace; for tests of the OTLP edges, where only the bytes on the wire matter.
- ``span``, ``chat`` and ``request``: realistic traces span by span, each span numbered within
  its test (``span_number`` reads the number back from a forwarded span).

``make_metrics_request`` and ``make_logs_request`` build the other two signals' requests.

The readers decode independently of the processor's own OTLP code, so a test does not check
that code with itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

SECOND_NS = 1_000_000_000
T0 = 1_767_225_600 * SECOND_NS
"""2026-01-01T00:00:00Z, the start of every trace ``span`` builds."""

_TRACE_BASE = 0x5EED0000_00000000_00000000_00000000
_SPAN_BASE = 0xA0000000_00000000


# -- values ------------------------------------------------------------------------------------


def any_value(python: object) -> AnyValue:
    """``python`` (str, bool, int, float, bytes, a list, tuple or mapping of those) as OTLP."""
    if isinstance(python, bool):
        return AnyValue(bool_value=python)
    if isinstance(python, int):
        return AnyValue(int_value=python)
    if isinstance(python, float):
        return AnyValue(double_value=python)
    if isinstance(python, str):
        return AnyValue(string_value=python)
    if isinstance(python, bytes):
        return AnyValue(bytes_value=python)
    if isinstance(python, Mapping):
        pairs = [KeyValue(key=key, value=any_value(item)) for key, item in python.items()]
        return AnyValue(kvlist_value=KeyValueList(values=pairs))
    if isinstance(python, list | tuple):
        return AnyValue(array_value=ArrayValue(values=[any_value(item) for item in python]))
    raise TypeError(f"no OTLP value for {python!r}")


def key_values(attributes: Mapping[str, object]) -> list[KeyValue]:
    return [KeyValue(key=key, value=any_value(value)) for key, value in attributes.items()]


def attribute_value(value: AnyValue) -> object:
    """An OTLP ``AnyValue`` as a Python value: arrays as lists, key-value lists as dicts."""
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [attribute_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: attribute_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind) if kind else None


def attributes_of(pairs: Iterable[KeyValue]) -> dict[str, object]:
    """Attributes (of a span, a resource or a scope) as a dict of Python values."""
    return {kv.key: attribute_value(kv.value) for kv in pairs}


# -- reading requests --------------------------------------------------------------------------


def placed_spans(
    request: ExportTraceServiceRequest,
) -> Iterator[tuple[ResourceSpans, ScopeSpans, Span]]:
    """Every span of ``request`` with the resource and scope it was filed under."""
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield resource_spans, scope_spans, span


def spans_in(request: ExportTraceServiceRequest) -> list[Span]:
    return [span for _, _, span in placed_spans(request)]


# -- building requests -------------------------------------------------------------------------


def make_request(
    spans: int = 3, service: str = "checkout", seed: int = 1
) -> ExportTraceServiceRequest:
    """A request with one resource and ``spans`` spans carrying GenAI-looking attributes."""
    trace_id = seed.to_bytes(16, "big")
    scope = ScopeSpans(scope=InstrumentationScope(name="tests", version="1.0"))
    for index in range(spans):
        scope.spans.append(
            Span(
                trace_id=trace_id,
                span_id=(seed * 1000 + index + 1).to_bytes(8, "big"),
                parent_span_id=b"" if index == 0 else (seed * 1000 + 1).to_bytes(8, "big"),
                name=f"chat gpt-4o-mini #{index}",
                kind=Span.SPAN_KIND_CLIENT,
                start_time_unix_nano=1_700_000_000_000_000_000 + index,
                end_time_unix_nano=1_700_000_000_500_000_000 + index,
                attributes=key_values(
                    {
                        "gen_ai.request.model": "gpt-4o-mini",
                        "gen_ai.usage.input_tokens": 100 + index,
                        "customer": "acme",
                    }
                ),
            )
        )
    resource = Resource(attributes=key_values({"service.name": service}))
    return ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=resource, scope_spans=[scope])]
    )


def trace_id(number: int) -> bytes:
    return (_TRACE_BASE + number).to_bytes(16, "big")


def span_id(number: int) -> bytes:
    return (_SPAN_BASE + number).to_bytes(8, "big")


def span_number(raw_span_id: bytes) -> int:
    """The ``number`` a span built by ``span`` was given."""
    return int.from_bytes(raw_span_id, "big") - _SPAN_BASE


def span(
    trace: int,
    number: int,
    parent: int | None,
    name: str,
    attributes: Mapping[str, object] | None = None,
    *,
    start: float = 0.0,
    kind: int = Span.SPAN_KIND_INTERNAL,
) -> Span:
    """Span ``number`` of trace ``trace`` under span ``parent`` (None: a root).

    It starts ``start`` seconds after ``T0`` and lasts half a second.
    """
    return Span(
        trace_id=trace_id(trace),
        span_id=span_id(number),
        parent_span_id=span_id(parent) if parent is not None else b"",
        name=name,
        kind=kind,
        start_time_unix_nano=T0 + int(start * SECOND_NS),
        end_time_unix_nano=T0 + int((start + 0.5) * SECOND_NS),
        attributes=key_values(attributes or {}),
    )


def chat(  # noqa: PLR0917 - reads like the span it builds
    trace: int,
    number: int,
    parent: int | None,
    model: str,
    input_tokens: int | str,
    output_tokens: int | str,
    *,
    provider: str = "openai",
    start: float = 1.0,
    **extra: object,
) -> Span:
    """A GenAI ``chat`` inference span as the current semantic conventions describe it.

    ``extra`` adds attributes, ``__`` standing for ``.`` in their keys.
    """
    attributes: dict[str, object] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
        "gen_ai.usage.input_tokens": input_tokens,
        "gen_ai.usage.output_tokens": output_tokens,
    }
    attributes.update({key.replace("__", "."): value for key, value in extra.items()})
    return span(
        trace, number, parent, f"chat {model}", attributes, start=start, kind=Span.SPAN_KIND_CLIENT
    )


@dataclass
class Service:
    """A resource (one process) and the instrumentation scope its spans come from."""

    name: str
    attributes: Mapping[str, object] = field(default_factory=dict)
    scope: str = "app"
    scope_version: str = "1.0"
    schema_url: str = "https://opentelemetry.io/schemas/1.37.0"


def request(*batches: tuple[Service, Iterable[Span]]) -> ExportTraceServiceRequest:
    """One export request holding each service's spans under its resource and scope."""
    built = ExportTraceServiceRequest()
    for service, spans in batches:
        resource_spans = built.resource_spans.add(schema_url=service.schema_url)
        resource_spans.resource.attributes.extend(key_values({"service.name": service.name}))
        resource_spans.resource.attributes.extend(key_values(service.attributes))
        scope_spans = resource_spans.scope_spans.add(
            scope=InstrumentationScope(name=service.scope, version=service.scope_version),
            schema_url=service.schema_url,
        )
        scope_spans.spans.extend(spans)
    return built


def _resource(service: str) -> Resource:
    return Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value=service))])


def make_metrics_request(points: int = 2, seed: int = 1) -> ExportMetricsServiceRequest:
    """A request with a counter of ``points`` data points and a one-point histogram."""
    start, now = 1_700_000_000_000_000_000, 1_700_000_060_000_000_000 + seed
    counter = Metric(
        name="orders",
        unit="1",
        sum=Sum(
            aggregation_temporality=AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE,
            is_monotonic=True,
            data_points=[
                NumberDataPoint(
                    attributes=[KeyValue(key="customer", value=AnyValue(string_value=f"c{i}"))],
                    start_time_unix_nano=start,
                    time_unix_nano=now,
                    as_int=seed * 100 + i,
                )
                for i in range(points)
            ],
        ),
    )
    latency = Metric(
        name="latency",
        unit="ms",
        histogram=Histogram(
            aggregation_temporality=AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA,
            data_points=[
                HistogramDataPoint(
                    start_time_unix_nano=start,
                    time_unix_nano=now,
                    count=3,
                    sum=37.5,
                    bucket_counts=[1, 2, 0],
                    explicit_bounds=[10.0, 50.0],
                )
            ],
        ),
    )
    scope = ScopeMetrics(scope=InstrumentationScope(name="tests"), metrics=[counter, latency])
    return ExportMetricsServiceRequest(
        resource_metrics=[ResourceMetrics(resource=_resource("shop"), scope_metrics=[scope])]
    )


def make_logs_request(records: int = 2, seed: int = 1) -> ExportLogsServiceRequest:
    """A request with ``records`` log records, each inside a span of trace ``seed``."""
    scope = ScopeLogs(scope=InstrumentationScope(name="tests"))
    for index in range(records):
        scope.log_records.append(
            LogRecord(
                time_unix_nano=1_700_000_000_000_000_000 + index,
                severity_number=13,  # WARN
                severity_text="WARNING",
                body=AnyValue(string_value=f"payment retried #{index}"),
                attributes=[KeyValue(key="customer", value=AnyValue(string_value="acme"))],
                trace_id=seed.to_bytes(16, "big"),
                span_id=(seed * 1000 + index + 1).to_bytes(8, "big"),
            )
        )
    return ExportLogsServiceRequest(
        resource_logs=[ResourceLogs(resource=_resource("shop"), scope_logs=[scope])]
    )
