"""Token usage and response facts of Gemini results, Developer API and Vertex AI alike.

A ``GenerateContentResponse`` carries ``usage_metadata``:

| Gemini field | span attribute |
| --- | --- |
| ``prompt_token_count`` + ``tool_use_prompt_token_count`` | ``gen_ai.usage.input_tokens`` |
| ``cached_content_token_count`` | ``gen_ai.usage.cache_read.input_tokens`` |
| ``candidates_token_count`` + ``thoughts_token_count`` | ``gen_ai.usage.output_tokens`` |
| ``thoughts_token_count`` | ``gen_ai.usage.reasoning.output_tokens`` |

``prompt_token_count`` already includes the cached tokens, as the input total must; the tokens
of tool-use prompts (the results of Google's built-in tools fed back to the model) are billed as
input and reported apart. A stream repeats the usage on its chunks, complete on the last: the
last value of each field wins. An ``EmbedContentResponse`` reports
``usage_metadata.prompt_token_count``, or (Vertex AI text-embedding models) a
``statistics.token_count`` per embedding.
"""

from __future__ import annotations

from typing import Any

from spanledger.instrumentation.genai import InferenceUsage, count, read_field


def usage_from_response(response: Any) -> InferenceUsage:
    """Usage, model version, response id and finish reasons of one ``GenerateContentResponse``
    (a whole result or one chunk of a stream)."""
    usage = InferenceUsage()
    metadata = read_field(response, "usage_metadata")
    if metadata is not None:
        prompt = count(read_field(metadata, "prompt_token_count"))
        tool_use = count(read_field(metadata, "tool_use_prompt_token_count"))
        candidates = count(read_field(metadata, "candidates_token_count"))
        thoughts = count(read_field(metadata, "thoughts_token_count"))
        usage.input_tokens = _sum(prompt, tool_use) if prompt is not None else None
        usage.output_tokens = _sum(candidates, thoughts)
        usage.cache_read_input_tokens = count(read_field(metadata, "cached_content_token_count"))
        usage.reasoning_output_tokens = thoughts
    model = read_field(response, "model_version")
    if isinstance(model, str) and model:
        usage.response_model = model
    response_id = read_field(response, "response_id")
    if isinstance(response_id, str) and response_id:
        usage.response_id = response_id
    for candidate in read_field(response, "candidates") or ():
        reason = finish_reason(read_field(candidate, "finish_reason"))
        if reason and reason not in usage.finish_reasons:
            usage.finish_reasons.append(reason)
    return usage


def usage_from_embeddings(response: Any) -> InferenceUsage:
    """Input tokens of an ``EmbedContentResponse``."""
    metadata = read_field(response, "usage_metadata")
    prompt = count(read_field(metadata, "prompt_token_count")) if metadata is not None else None
    if prompt is None:
        counts = [
            read_field(read_field(embedding, "statistics"), "token_count")
            for embedding in read_field(response, "embeddings") or ()
        ]
        known = [int(value) for value in counts if isinstance(value, int | float)]
        prompt = sum(known) if known else None
    return InferenceUsage(input_tokens=prompt)


def finish_reason(value: Any) -> str | None:
    """A candidate's finish reason in lower case (``STOP`` → ``stop``); ``None`` when unset."""
    value = getattr(value, "value", value)
    if not isinstance(value, str) or not value or value == "FINISH_REASON_UNSPECIFIED":
        return None
    return value.lower()


def _sum(first: int | None, second: int | None) -> int | None:
    if first is None and second is None:
        return None
    return (first or 0) + (second or 0)
