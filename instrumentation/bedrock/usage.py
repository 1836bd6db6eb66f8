"""Token usage of Bedrock runtime answers: Converse, and each model family's InvokeModel body.

Converse reports ``usage`` with ``inputTokens`` that leave out the prompt cache, and the cache
apart: the input total of the GenAI conventions is ``inputTokens + cacheReadInputTokens +
cacheWriteInputTokens``.

InvokeModel answers in the model family's own body, recognised by its shape (the model id may
be an inference profile's ARN that names no family):

| family | body | usage |
| --- | --- | --- |
| Anthropic | a Messages API Message, or its stream events | as the Anthropic API |
| Amazon Nova | ``output``, ``usage`` | as Converse; cache counts ``…InputTokenCount`` |
| Meta Llama | ``generation`` | ``prompt_token_count``, ``generation_token_count`` |
| Titan embeddings | ``embedding`` | ``inputTextTokenCount`` |
| Mistral and others | ``outputs``... | none in the body |

What the body does not tell is taken from Bedrock's own counts: the
``X-Amzn-Bedrock-Input-Token-Count`` / ``-Output-Token-Count`` headers of InvokeModel (and the
``-Cache-Read-…`` / ``-Cache-Write-…`` ones), and the ``amazon-bedrock-invocationMetrics`` of a
stream's last chunk.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from spanledger.instrumentation.anthropic.usage import StreamAccumulator, facts_from_message
from spanledger.instrumentation.anthropic.usage import to_inference_usage as anthropic_usage
from spanledger.instrumentation.genai import InferenceUsage, count, read_field

INVOCATION_METRICS = "amazon-bedrock-invocationMetrics"
_HEADER_COUNTS = (
    ("x-amzn-bedrock-input-token-count", "input"),
    ("x-amzn-bedrock-output-token-count", "output"),
    ("x-amzn-bedrock-cache-read-input-token-count", "cache_read"),
    ("x-amzn-bedrock-cache-write-input-token-count", "cache_write"),
)


def _plus(*values: int | None) -> int | None:
    known = [value for value in values if value is not None]
    return sum(known) if known else None


def _reason(value: Any) -> list[str]:
    return [value] if isinstance(value, str) and value else []


def _with_cache(
    input_tokens: int | None, output_tokens: int | None, read: int | None, write: int | None
) -> InferenceUsage:
    """A usage record from counts whose input leaves out the cache reads and writes."""
    total = _plus(input_tokens, read, write) if input_tokens is not None else None
    return InferenceUsage(total, output_tokens, read, write)


def converse_usage(usage: Any) -> InferenceUsage:
    """A Converse ``usage`` (of the answer, or of a stream's ``metadata`` event)."""
    return _with_cache(
        count(read_field(usage, "inputTokens")),
        count(read_field(usage, "outputTokens")),
        count(read_field(usage, "cacheReadInputTokens")),
        count(read_field(usage, "cacheWriteInputTokens")),
    )


def converse_result(result: Any) -> InferenceUsage:
    """Usage and stop reason of a whole Converse answer."""
    usage = converse_usage(read_field(result, "usage"))
    usage.finish_reasons = _reason(read_field(result, "stopReason"))
    return usage


def _nova_usage(usage: Any) -> InferenceUsage:
    return _with_cache(
        count(read_field(usage, "inputTokens")),
        count(read_field(usage, "outputTokens")),
        count(read_field(usage, "cacheReadInputTokenCount")),
        count(read_field(usage, "cacheWriteInputTokenCount")),
    )


def _anthropic(body: Mapping[str, Any]) -> InferenceUsage:
    usage = anthropic_usage(facts_from_message(body))
    # Bedrock's Message names the Claude model without the Bedrock id (region scope, version);
    # the id the call was made with is the one that says which price applies.
    usage.response_model = None
    return usage


def body_usage(body: Any) -> InferenceUsage:
    """Usage, response id and stop reasons of a whole InvokeModel body of any known family."""
    if not isinstance(body, Mapping):
        return InferenceUsage()
    if body.get("type") == "message":
        return _anthropic(body)
    if "output" in body and "usage" in body:
        usage = _nova_usage(body["usage"])
        usage.finish_reasons = _reason(body.get("stopReason"))
        return usage
    if "generation" in body:
        return InferenceUsage(
            count(body.get("prompt_token_count")),
            count(body.get("generation_token_count")),
            finish_reasons=_reason(body.get("stop_reason")),
        )
    if "inputTextTokenCount" in body:
        return InferenceUsage(count(body.get("inputTextTokenCount")))
    usage = InferenceUsage()
    for output in body.get("outputs") or ():
        usage.finish_reasons += _reason(read_field(output, "stop_reason"))
    return usage


def header_usage(headers: Mapping[str, str] | None) -> InferenceUsage:
    """Bedrock's token-count headers of an InvokeModel answer (their input counts all input)."""
    found: dict[str, int] = {}
    for header, name in _HEADER_COUNTS:
        value = (headers or {}).get(header)
        if isinstance(value, str) and value.isdigit():
            found[name] = int(value)
    return InferenceUsage(
        found.get("input"), found.get("output"), found.get("cache_read"), found.get("cache_write")
    )


def metrics_usage(metrics: Any) -> InferenceUsage:
    """The ``amazon-bedrock-invocationMetrics`` of a stream's last chunk."""
    return InferenceUsage(
        count(read_field(metrics, "inputTokenCount")),
        count(read_field(metrics, "outputTokenCount")),
        count(read_field(metrics, "cacheReadInputTokenCount")),
        count(read_field(metrics, "cacheWriteInputTokenCount")),
    )


def fill_missing(usage: InferenceUsage, fallback: InferenceUsage) -> None:
    """Take from ``fallback`` the token counts ``usage`` does not have."""
    for name in (
        "input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
    ):
        if getattr(usage, name) is None:
            setattr(usage, name, getattr(fallback, name))


class InvokeStreamReader:
    """Reads the decoded chunks of an InvokeModelWithResponseStream answer into ``usage``, one
    at a time, so that a stream left early keeps what it told so far."""

    def __init__(self, usage: InferenceUsage) -> None:
        self.usage = usage
        self._anthropic: StreamAccumulator | None = None

    def add(self, chunk: Any) -> None:
        if not isinstance(chunk, Mapping):
            return
        usage = self.usage
        kind = chunk.get("type")
        if isinstance(kind, str):
            if self._anthropic is None:
                self._anthropic = StreamAccumulator()
            self._anthropic.add(kind, chunk)
            found = anthropic_usage(self._anthropic.facts)
            found.response_model = None
            usage.update(found)
        elif "metadata" in chunk:
            usage.update(_nova_usage(read_field(chunk["metadata"], "usage")))
        elif "messageStop" in chunk:
            usage.update(
                InferenceUsage(finish_reasons=_reason(chunk["messageStop"].get("stopReason")))
            )
        elif "generation" in chunk:
            reasons = _reason(chunk.get("stop_reason"))
            prompt = count(chunk.get("prompt_token_count"))
            usage.update(
                InferenceUsage(
                    prompt, count(chunk.get("generation_token_count")), finish_reasons=reasons
                )
            )
        else:
            for output in chunk.get("outputs") or ():
                usage.update(
                    InferenceUsage(finish_reasons=_reason(read_field(output, "stop_reason")))
                )
        metrics = chunk.get(INVOCATION_METRICS)
        if metrics is not None:
            fill_missing(usage, metrics_usage(metrics))
