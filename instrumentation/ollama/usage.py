"""Token usage and response facts of Ollama results.

| Ollama field | span attribute |
| --- | --- |
| ``prompt_eval_count`` | ``gen_ai.usage.input_tokens`` |
| ``eval_count`` | ``gen_ai.usage.output_tokens`` (a thinking model's thinking included) |
| ``model`` | ``gen_ai.response.model`` |
| ``done_reason`` | ``gen_ai.response.finish_reasons`` |

A stream reports them on its last item (``done`` true). ``prompt_eval_count`` counts the prompt
tokens the model evaluated for this call: a prefix still in the model's cache from an earlier
call is not counted, and Ollama leaves the field out when it is 0 (the whole prompt was cached);
a finished reply that counts output but no prompt is then written with 0 input tokens. An
``/api/embed`` reply reports ``prompt_eval_count``; the older ``/api/embeddings`` none.
"""

from __future__ import annotations

from typing import Any

from spanledger.instrumentation.genai import InferenceUsage, count, read_field


def usage_from_response(response: Any) -> InferenceUsage:
    """Usage, model and finish reason of a chat or generate reply, or of one stream item."""
    usage = InferenceUsage()
    model = read_field(response, "model")
    if isinstance(model, str) and model:
        usage.response_model = model
    if read_field(response, "done") is not True:
        return usage
    usage.input_tokens = count(read_field(response, "prompt_eval_count"))
    usage.output_tokens = count(read_field(response, "eval_count"))
    if usage.input_tokens is None and usage.output_tokens is not None:
        usage.input_tokens = 0
    reason = read_field(response, "done_reason")
    if isinstance(reason, str) and reason:
        usage.finish_reasons.append(reason)
    return usage


def usage_from_embed(response: Any) -> InferenceUsage:
    """Input tokens and model of an ``/api/embed`` reply (none for ``/api/embeddings``)."""
    usage = InferenceUsage(input_tokens=count(read_field(response, "prompt_eval_count")))
    model = read_field(response, "model")
    if isinstance(model, str) and model:
        usage.response_model = model
    return usage
