"""Token usage, response facts and LiteLLM's own cost of a LiteLLM result.

LiteLLM answers every provider in OpenAI's shape and counts the same way for all of them:

| LiteLLM field | span attribute |
| --- | --- |
| ``usage.prompt_tokens`` | ``gen_ai.usage.input_tokens`` (cache reads and writes included) |
| ``usage.prompt_tokens_details.cached_tokens`` | ``gen_ai.usage.cache_read.input_tokens`` |
| ``usage.cache_creation_input_tokens`` | ``gen_ai.usage.cache_creation.input_tokens`` |
| ``usage.completion_tokens`` | ``gen_ai.usage.output_tokens`` |
| ``usage.completion_tokens_details.reasoning_tokens`` | ``gen_ai.usage.reasoning.output_tokens`` |
| ``_hidden_params["response_cost"]`` | ``spanledger.cost.reported`` |

``prompt_tokens`` includes the cached tokens for every provider, Anthropic's included (LiteLLM
adds them up). LiteLLM's cost comes from its own price list. It says $0 for what that list does
not price (self-hosted models, unknown ones): a $0 cost for a call that used tokens is not a
price, and is left out. A stream carries the usage and the cost on its last chunk when it was
asked for them (``stream_options={"include_usage": True}``). A response's ``model`` may carry
LiteLLM's provider route (``ollama_chat/llama3.2``); the route is taken off.
"""

from __future__ import annotations

from typing import Any

from spanledger.instrumentation.genai import InferenceUsage, count, read_field


def _cost(response: Any, used_tokens: bool) -> float | None:
    hidden = getattr(response, "_hidden_params", None)
    cost = hidden.get("response_cost") if isinstance(hidden, dict) else None
    if not isinstance(cost, int | float) or isinstance(cost, bool) or cost < 0:
        return None
    if cost == 0 and used_tokens:
        return None
    return float(cost)


def usage_from_response(response: Any, route: str | None = None) -> InferenceUsage:
    """Usage, model, id, finish reasons and cost of a ``ModelResponse``, an
    ``EmbeddingResponse`` or one stream chunk; ``route`` is LiteLLM's provider name."""
    result = InferenceUsage()
    usage = read_field(response, "usage")
    if usage is not None:
        result.input_tokens = count(read_field(usage, "prompt_tokens"))
        result.output_tokens = count(read_field(usage, "completion_tokens"))
        prompt_details = read_field(usage, "prompt_tokens_details")
        result.cache_read_input_tokens = count(read_field(prompt_details, "cached_tokens")) or None
        written = count(read_field(usage, "cache_creation_input_tokens"))
        result.cache_creation_input_tokens = written or None
        completion_details = read_field(usage, "completion_tokens_details")
        reasoning = count(read_field(completion_details, "reasoning_tokens"))
        result.reasoning_output_tokens = reasoning or None
        used = bool(result.input_tokens or result.output_tokens)
        result.reported_cost = _cost(response, used)
    model = read_field(response, "model")
    if isinstance(model, str) and model:
        prefix = f"{route}/" if route else None
        result.response_model = model.removeprefix(prefix) if prefix else model
    response_id = read_field(response, "id")
    if isinstance(response_id, str) and response_id:
        result.response_id = response_id
    for choice in read_field(response, "choices") or ():
        reason = read_field(choice, "finish_reason")
        if isinstance(reason, str) and reason and reason not in result.finish_reasons:
            result.finish_reasons.append(reason)
    return result
