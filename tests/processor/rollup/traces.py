"""Builders for realistic OTLP trace requests, and recording ends for what the pipeline emits."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from spanledger.processor.model import CountedCall
from spanledger.processor.otlp_attrs import attributes_to_dict, to_any_value

SECOND_NS = 1_000_000_000
T0 = 1_767_225_600 * SECOND_NS
"""2026-01-01T00:00:00Z, the start of every test trace."""


def trace_id(number: int) -> bytes:
    return (0x5EED0000_00000000_00000000_00000000 + number).to_bytes(16, "big")


def span_id(number: int) -> bytes:
    return (0xA0000000_00000000 + number).to_bytes(8, "big")


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
    built = Span(
        trace_id=trace_id(trace),
        span_id=span_id(number),
        parent_span_id=span_id(parent) if parent is not None else b"",
        name=name,
        kind=kind,
        start_time_unix_nano=T0 + int(start * SECOND_NS),
        end_time_unix_nano=T0 + int((start + 0.5) * SECOND_NS),
    )
    for key, value in (attributes or {}).items():
        to_any_value(value, built.attributes.add(key=key).value)
    return built


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
    """A GenAI ``chat`` inference span as the current semantic conventions describe it."""
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
        to_any_value(service.name, resource_spans.resource.attributes.add(key="service.name").value)
        for key, value in service.attributes.items():
            to_any_value(value, resource_spans.resource.attributes.add(key=key).value)
        scope_spans = resource_spans.scope_spans.add(
            scope=InstrumentationScope(name=service.scope, version=service.scope_version),
            schema_url=service.schema_url,
        )
        scope_spans.spans.extend(spans)
    return built


@dataclass
class Forwarded:
    """One span as an exporter received it, with the resource and scope it was filed under."""

    span: Span
    service: str
    resource: dict[str, object]
    scope: str
    resource_schema_url: str
    scope_schema_url: str

    @property
    def attributes(self) -> dict[str, object]:
        return attributes_to_dict(self.span.attributes)


class RecordingExporter:
    """A ``SpanExporter`` that keeps every request it is handed."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.shutdown_timeouts: list[float] = []
        self._lock = threading.Lock()

    def export(self, request: ExportTraceServiceRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def shutdown(self, timeout: float) -> None:
        self.shutdown_timeouts.append(timeout)

    def spans(self) -> list[Forwarded]:
        found = []
        with self._lock:
            requests = list(self.requests)
        for exported in requests:
            for resource_spans in exported.resource_spans:
                resource = attributes_to_dict(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    for item in scope_spans.spans:
                        found.append(
                            Forwarded(
                                item,
                                str(resource.get("service.name")),
                                resource,
                                scope_spans.scope.name,
                                resource_spans.schema_url,
                                scope_spans.schema_url,
                            )
                        )
        return found

    def by_span(self) -> dict[int, Forwarded]:
        """Forwarded spans keyed by the ``number`` given to ``span()``; fails on a repeat."""
        found: dict[int, Forwarded] = {}
        for item in self.spans():
            number = int.from_bytes(item.span.span_id, "big") - 0xA0000000_00000000
            assert number not in found, f"span {number} forwarded twice"
            found[number] = item
        return found


class RecordingSink:
    """A ``CallSink`` that keeps every counted call."""

    def __init__(self) -> None:
        self.calls: list[CountedCall] = []
        self.batches = 0
        self.shutdown_timeouts: list[float] = []

    def record(self, calls: Sequence[CountedCall]) -> None:
        self.batches += 1
        self.calls.extend(calls)

    def shutdown(self, timeout: float) -> None:
        self.shutdown_timeouts.append(timeout)


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
