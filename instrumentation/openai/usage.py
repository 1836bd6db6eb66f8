"""Read token usage and response facts from OpenAI results, as models or as decoded JSON.

Covers Chat Completions (``ChatCompletion`` and its chunks), legacy Completions, Embeddings and
the Responses API (``Response`` and its streamed ``response.*`` events). OpenAI-compatible
providers add fields that are read too: OpenRouter's ``usage.cost`` and DeepSeek's
``usage.prompt_cache_hit_tokens``.
"""

from __future__ import annotations

from typing import Any

from spanledger.instrumentation.genai import InferenceUsage
from spanledger.instrumentation.genai.fields import count as _int
from spanledger.instrumentation.genai.fields import read_field

_EMPTY: dict[str, Any] = {}

# Responses API stream events that carry the whole ``response`` object.
RESPONSE_EVENTS = frozenset(
    {
        "response.created",
        "response.in_progress",
        "response.completed",
        "response.incomplete",
        "response.failed",
        "response.queued",
    }
)


def _float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def fields_of(obj: Any) -> dict[str, Any]:
    """The fields of a model (extra fields included) or decoded JSON object, as a dict."""
    if type(obj) is dict:
        return obj
    if obj is None:
        return _EMPTY
    fields = getattr(obj, "__dict__", None)
    if type(fields) is not dict:
        return _EMPTY
    extra = getattr(obj, "__pydantic_extra__", None)
    return {**fields, **extra} if extra else fields


def usage_from_tokens(usage: Any) -> InferenceUsage:
    """Token counts from a ``usage`` object of any OpenAI API shape."""
    if usage is None:
        return InferenceUsage()
    tokens = fields_of(usage)
    get = tokens.get
    input_tokens = _int(get("prompt_tokens"))
    if input_tokens is not None:
        # Chat Completions, Completions, Embeddings.
        output_tokens = _int(get("completion_tokens"))
        cache_read = _int(fields_of(get("prompt_tokens_details")).get("cached_tokens"))
        if cache_read is None:
            cache_read = _int(get("prompt_cache_hit_tokens"))
        output_details = get("completion_tokens_details")
    else:
        # Responses API.
        input_tokens = _int(get("input_tokens"))
        output_tokens = _int(get("output_tokens"))
        cache_read = _int(fields_of(get("input_tokens_details")).get("cached_tokens"))
        output_details = get("output_tokens_details")
    reasoning = _int(fields_of(output_details).get("reasoning_tokens"))
    # Positional: calling a class with keywords builds a dict of them on every call.
    found = InferenceUsage(input_tokens, output_tokens, cache_read, None, reasoning)
    found.reported_cost = _float(get("cost"))
    return found


def usage_from_result(result: Any) -> InferenceUsage:
    """Usage, response id, model and finish reasons of a whole (non-streamed) result."""
    fields = fields_of(result)
    usage = usage_from_tokens(fields.get("usage"))
    response_id = fields.get("id")
    model = fields.get("model")
    if isinstance(response_id, str):
        usage.response_id = response_id
    if isinstance(model, str):
        usage.response_model = model
    choices = fields.get("choices")
    if isinstance(choices, list):
        reasons = usage.finish_reasons
        for choice in choices:
            reason = read_field(choice, "finish_reason")
            if reason and reason not in reasons:
                reasons.append(str(reason))
    else:
        status = fields.get("status")
        reason = fields_of(fields.get("incomplete_details")).get("reason")
        if reason or status:
            usage.finish_reasons.append(str(reason or status))
    return usage


def reported_cost_from_headers(headers: Any) -> float | None:
    """A proxy's cost for the call, from the ``x-litellm-response-cost`` header."""
    if headers is None:
        return None
    return _float(headers.get("x-litellm-response-cost"))
