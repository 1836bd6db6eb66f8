"""Token usage and response facts of Mistral results.

A chat or fill-in-the-middle completion (and the last chunk of its stream) carries ``usage``:

| Mistral field | span attribute |
| --- | --- |
| ``prompt_tokens`` | ``gen_ai.usage.input_tokens`` (cached tokens included) |
| ``prompt_tokens_details.cached_tokens`` | ``gen_ai.usage.cache_read.input_tokens`` |
| ``completion_tokens`` | ``gen_ai.usage.output_tokens`` (reasoning included) |

Mistral reports no reasoning count apart: a reasoning model's thinking is part of
``completion_tokens``. The SDK keeps ``prompt_tokens_details`` as an extra field of ``UsageInfo``
(a mapping) from 1.9 on; earlier versions drop it. An embeddings response reports ``prompt_tokens``.
"""

from __future__ import annotations

from typing import Any

from spanledger.instrumentation.genai import InferenceUsage, count, read_field


def usage_from_response(response: Any) -> InferenceUsage:
    """Usage, model, id and finish reasons of a completion, or of one chunk of its stream."""
    usage = InferenceUsage()
    reported = read_field(response, "usage")
    if reported is not None:
        usage.input_tokens = count(read_field(reported, "prompt_tokens"))
        usage.output_tokens = count(read_field(reported, "completion_tokens"))
        details = read_field(reported, "prompt_tokens_details")
        usage.cache_read_input_tokens = count(read_field(details, "cached_tokens"))
    model = read_field(response, "model")
    if isinstance(model, str) and model:
        usage.response_model = model
    response_id = read_field(response, "id")
    if isinstance(response_id, str) and response_id:
        usage.response_id = response_id
    for choice in read_field(response, "choices") or ():
        reason = read_field(choice, "finish_reason")
        reason = getattr(reason, "value", reason)
        if isinstance(reason, str) and reason and reason not in usage.finish_reasons:
            usage.finish_reasons.append(reason)
    return usage


def usage_from_embeddings(response: Any) -> InferenceUsage:
    """Input tokens, model and id of an embeddings response."""
    usage = usage_from_response(response)
    usage.output_tokens = None
    return usage
