"""Start, annotate and end GenAI inference spans.

A span is named ``{operation} {request_model}``, has kind CLIENT and carries the request
attributes at start, so that samplers and the baggage-tag processor see them. Usage is written
from an :class:`InferenceUsage` record; only fields that are known are written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from spanledger import semconv

SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"

# Operation names of the GenAI semantic conventions used by the SDK patches.
OPERATION_CHAT = "chat"
OPERATION_TEXT_COMPLETION = "text_completion"
OPERATION_EMBEDDINGS = "embeddings"
OPERATION_GENERATE_CONTENT = "generate_content"


@dataclass(slots=True)
class InferenceUsage:
    """What a provider reported about one inference call; ``None`` means "not reported".

    ``input_tokens`` counts ALL input tokens, cached ones included; ``output_tokens`` counts ALL
    output tokens, reasoning included. The ``cache_*`` and ``reasoning_*`` fields are the subsets.
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    reasoning_output_tokens: int | None = None
    response_model: str | None = None
    response_id: str | None = None
    finish_reasons: list[str] = field(default_factory=list)
    reported_cost: float | None = None
    content_chunks: int | None = None
    """Stream chunks (or events) that carried output so far; None for a call not streamed."""

    def update(self, other: InferenceUsage) -> None:
        """Take every field ``other`` knows; finish reasons accumulate without duplicates."""
        # Spelled out field by field: this runs for every call and every usage-bearing chunk.
        if other.input_tokens is not None:
            self.input_tokens = other.input_tokens
        if other.output_tokens is not None:
            self.output_tokens = other.output_tokens
        if other.cache_read_input_tokens is not None:
            self.cache_read_input_tokens = other.cache_read_input_tokens
        if other.cache_creation_input_tokens is not None:
            self.cache_creation_input_tokens = other.cache_creation_input_tokens
        if other.reasoning_output_tokens is not None:
            self.reasoning_output_tokens = other.reasoning_output_tokens
        if other.response_model is not None:
            self.response_model = other.response_model
        if other.response_id is not None:
            self.response_id = other.response_id
        if other.reported_cost is not None:
            self.reported_cost = other.reported_cost
        if other.finish_reasons:
            reasons = self.finish_reasons
            for reason in other.finish_reasons:
                if reason not in reasons:
                    reasons.append(reason)

    def attributes(self) -> dict[str, Any]:
        """The span attributes for the known fields."""
        attributes: dict[str, Any] = {}
        if self.input_tokens is not None:
            attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] = self.input_tokens
        if self.output_tokens is not None:
            attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] = self.output_tokens
        if self.cache_read_input_tokens is not None:
            attributes[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = self.cache_read_input_tokens
        if self.cache_creation_input_tokens is not None:
            attributes[semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = (
                self.cache_creation_input_tokens
            )
        if self.reasoning_output_tokens is not None:
            attributes[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = self.reasoning_output_tokens
        if self.response_model is not None:
            attributes[semconv.GEN_AI_RESPONSE_MODEL] = self.response_model
        if self.response_id is not None:
            attributes[semconv.GEN_AI_RESPONSE_ID] = self.response_id
        if self.reported_cost is not None:
            attributes[semconv.COST_REPORTED] = self.reported_cost
        if self.finish_reasons:
            attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] = list(self.finish_reasons)
        return attributes

    def cut_short_attributes(self) -> dict[str, Any]:
        """What a stream closed before its end still tells: the output chunks that arrived and,
        when the provider's output count never came, those chunks as an estimate of it.

        The estimate goes under its own name, so that nothing takes it for a count.
        """
        chunks = self.content_chunks
        if chunks is None:
            return {}
        attributes: dict[str, Any] = {semconv.STREAM_CHUNKS: chunks}
        if self.output_tokens is None:
            attributes[semconv.USAGE_ESTIMATE_OUTPUT_TOKENS] = chunks
        return attributes


def start_inference_span(
    tracer: Tracer,
    *,
    operation: str,
    provider: str,
    request_model: str | None,
    stream: bool = False,
    server_address: str | None = None,
    server_port: int | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Span:
    """Start (but do not activate) a CLIENT span for one inference call."""
    start_attributes: dict[str, Any] = {
        semconv.GEN_AI_OPERATION_NAME: operation,
        semconv.GEN_AI_PROVIDER_NAME: provider,
        semconv.GEN_AI_REQUEST_STREAM: stream,
    }
    if request_model:
        start_attributes[semconv.GEN_AI_REQUEST_MODEL] = request_model
    if server_address:
        start_attributes[SERVER_ADDRESS] = server_address
    if server_port is not None:
        start_attributes[SERVER_PORT] = server_port
    if attributes:
        start_attributes.update(attributes)
    name = f"{operation} {request_model}" if request_model else operation
    return tracer.start_span(name, kind=SpanKind.CLIENT, attributes=start_attributes)


def record_usage(span: Span, usage: InferenceUsage) -> None:
    """Write the known usage fields onto a recording span."""
    if span.is_recording():
        span.set_attributes(usage.attributes())


def error_type(error: BaseException) -> str:
    """The low-cardinality ``error.type`` value for an exception: its class name."""
    return type(error).__qualname__


def end_with_error(span: Span, error: BaseException, usage: InferenceUsage | None = None) -> None:
    """Mark the span failed (status ERROR, ``error.type``), keep any usage seen, and end it."""
    if span.is_recording():
        if usage is not None:
            span.set_attributes(usage.attributes())
        span.set_attribute(ERROR_TYPE, error_type(error))
        span.set_status(Status(StatusCode.ERROR, str(error) or error_type(error)))
    span.end()


def finish_reasons_of(values: Sequence[Any]) -> list[str]:
    """Distinct, non-empty finish reasons in order of first appearance."""
    reasons: list[str] = []
    for value in values:
        if value and str(value) not in reasons:
            reasons.append(str(value))
    return reasons
