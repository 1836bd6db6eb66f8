"""Token usage and response facts of Cohere v2 results.

A chat reports two sets of figures in ``usage``; the billed ones are recorded as the call's
usage, because they are what Cohere charges:

| Cohere field | span attribute |
| --- | --- |
| ``billed_units.input_tokens`` | ``gen_ai.usage.input_tokens`` |
| ``billed_units.output_tokens`` | ``gen_ai.usage.output_tokens`` |
| ``tokens.input_tokens`` | ``cohere.usage.tokens.input_tokens`` |
| ``tokens.output_tokens`` | ``cohere.usage.tokens.output_tokens`` |
| ``cached_tokens`` | ``cohere.usage.cached_tokens`` |

``tokens`` is what the model processed, Cohere's prompt template included, which is not billed.
``cached_tokens`` counts prompt tokens served from Cohere's cache; Cohere does not say whether
the billed input includes them, so they are not written as cache reads.

When ``billed_units`` lacks a count, the processed one stands in for it. A stream reports its
usage in the ``message-end`` event. Embed bills ``meta.billed_units.input_tokens`` (and
``images``, kept as ``cohere.usage.billed_units.images``); rerank bills
``meta.billed_units.search_units`` (``spanledger.usage.search_units``). The SDK's models type
every count as a float (``12.0``).
"""

from __future__ import annotations

from typing import Any

from spanledger.instrumentation.genai import InferenceUsage, count_whole, read_field

TOKENS_INPUT = "cohere.usage.tokens.input_tokens"
TOKENS_OUTPUT = "cohere.usage.tokens.output_tokens"
CACHED_TOKENS = "cohere.usage.cached_tokens"
BILLED_IMAGES = "cohere.usage.billed_units.images"
SEARCH_UNITS = "spanledger.usage.search_units"


def read_usage(usage: Any, into: InferenceUsage) -> dict[str, int]:
    """Write a chat's ``usage`` into ``into``; return the Cohere-specific attributes."""
    billed = read_field(usage, "billed_units")
    processed = read_field(usage, "tokens")
    processed_input = count_whole(read_field(processed, "input_tokens"))
    processed_output = count_whole(read_field(processed, "output_tokens"))
    billed_input = count_whole(read_field(billed, "input_tokens"))
    billed_output = count_whole(read_field(billed, "output_tokens"))
    into.input_tokens = billed_input if billed_input is not None else processed_input
    into.output_tokens = billed_output if billed_output is not None else processed_output
    extra = {
        TOKENS_INPUT: processed_input,
        TOKENS_OUTPUT: processed_output,
        CACHED_TOKENS: count_whole(read_field(usage, "cached_tokens")),
    }
    return {name: value for name, value in extra.items() if value is not None}


def finish_reason(value: Any) -> str | None:
    """Cohere's finish reason in lower case (``COMPLETE`` → ``complete``)."""
    value = getattr(value, "value", value)
    return value.lower() if isinstance(value, str) and value else None


def usage_from_chat(response: Any) -> tuple[InferenceUsage, dict[str, int]]:
    """Usage, id and finish reason of a ``V2ChatResponse``, and the Cohere-specific figures."""
    usage = InferenceUsage()
    extra = read_usage(read_field(response, "usage"), usage) if response is not None else {}
    response_id = read_field(response, "id")
    if isinstance(response_id, str) and response_id:
        usage.response_id = response_id
    reason = finish_reason(read_field(response, "finish_reason"))
    if reason:
        usage.finish_reasons.append(reason)
    return usage, extra


def usage_from_meta(response: Any) -> tuple[InferenceUsage, dict[str, int]]:
    """Billed input tokens and id of an embed or rerank response, and the other billed units."""
    billed = read_field(read_field(response, "meta"), "billed_units")
    usage = InferenceUsage(input_tokens=count_whole(read_field(billed, "input_tokens")))
    response_id = read_field(response, "id")
    if isinstance(response_id, str) and response_id:
        usage.response_id = response_id
    extra = {
        BILLED_IMAGES: count_whole(read_field(billed, "images")),
        SEARCH_UNITS: count_whole(read_field(billed, "search_units")),
    }
    return usage, {name: value for name, value in extra.items() if value is not None}
