"""Send finished SDK spans through the OTLP encoding the processor receives, and back."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan

from spanledger.processor.otlp.attributes import attributes_to_dict


def as_received(spans: Sequence[ReadableSpan]) -> list[tuple[str, dict[str, object], int]]:
    """(name, attributes, start time) of each span after an OTLP/protobuf round trip."""
    wire = encode_spans(spans).SerializeToString()
    request = ExportTraceServiceRequest.FromString(wire)
    return [
        (span.name, attributes_to_dict(span.attributes), span.start_time_unix_nano)
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    ]
