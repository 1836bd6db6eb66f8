"""Decide whether a span is an inference call, and which operation it performed."""

from __future__ import annotations

from collections.abc import Mapping

from spanledger import semconv

INFERENCE_OPERATIONS: frozenset[str] = frozenset(
    {"chat", "text_completion", "generate_content", "embeddings", "rerank"}
)
"""``gen_ai.operation.name`` values that call a model and are priced. ``rerank`` is not an
operation of the GenAI conventions; this project's Cohere instrumentation names its rerank calls
so, and they are counted (billed per search unit, they come out unpriced)."""

OPERATION_ALIASES: dict[str, str] = {
    # Spellings of older conventions and of other dialects.
    "completion": "text_completion",
    "completions": "text_completion",
    "embedding": "embeddings",
    "generate": "generate_content",
}

OPENINFERENCE_KINDS: dict[str, str | None] = {
    "LLM": "chat",
    "EMBEDDING": "embeddings",
}
"""OpenInference span kinds that are inference; every other kind (AGENT, CHAIN, TOOL...) is not."""

TRACELOOP_NON_INFERENCE_KINDS = frozenset({"workflow", "task", "agent", "tool"})
"""OpenLLMetry ``traceloop.span.kind`` values of framework spans that only aggregate usage."""

OPENINFERENCE_SPAN_KIND = "openinference.span.kind"
LLM_REQUEST_TYPE = "llm.request.type"
TRACELOOP_SPAN_KIND = "traceloop.span.kind"
OPERATION_KEYS = (semconv.GEN_AI_OPERATION_NAME, OPENINFERENCE_SPAN_KIND, LLM_REQUEST_TYPE)
"""The attributes that can name an inference operation on their own (``traceloop.span.kind``
only ever says a span is not one)."""

_NOT_INFERENCE = ""


def resolve_operation(attributes: Mapping[str, object], span_name: str) -> str | None:
    """The inference operation the span names; ``""`` when it names a non-inference one.

    None means the span says nothing about its operation.
    """
    named = attributes.get(semconv.GEN_AI_OPERATION_NAME)
    if isinstance(named, str) and named.strip():
        return _inference(named)
    kind = attributes.get(OPENINFERENCE_SPAN_KIND)
    if isinstance(kind, str) and kind.strip():
        return OPENINFERENCE_KINDS.get(kind.strip().upper()) or _NOT_INFERENCE
    traceloop_kind = attributes.get(TRACELOOP_SPAN_KIND)
    if isinstance(traceloop_kind, str) and traceloop_kind.lower() in TRACELOOP_NON_INFERENCE_KINDS:
        return _NOT_INFERENCE
    request_type = attributes.get(LLM_REQUEST_TYPE)
    if isinstance(request_type, str) and request_type.strip() and request_type != "unknown":
        return _inference(request_type)
    first_word = span_name.split(" ", 1)[0].strip().lower() if span_name else ""
    operation = OPERATION_ALIASES.get(first_word, first_word)
    if operation in INFERENCE_OPERATIONS:
        return operation
    return None


def _inference(name: str) -> str:
    operation = name.strip().lower()
    operation = OPERATION_ALIASES.get(operation, operation)
    return operation if operation in INFERENCE_OPERATIONS else _NOT_INFERENCE
