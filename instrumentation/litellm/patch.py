"""What each patched LiteLLM function is, and how its result is read.

``litellm.completion``, ``acompletion``, ``embedding`` and ``aembedding`` each make one call to a
provider, which LiteLLM resolves from the model (``anthropic/claude-sonnet-4-5``) and the
arguments with ``litellm.get_llm_provider``: the span names that provider and the model it is
given, not LiteLLM. A ``Router`` calls these same functions (looked up on the ``litellm`` module
when it calls) once per deployment it tries.

A streamed completion returns a ``CustomStreamWrapper``, iterated sync or async. Unless the
caller asked for it, the call asks the stream for its usage (``stream_options``), and the chunk
that carries only the usage is kept from the caller, who did not ask for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from spanledger.instrumentation.genai import (
    HIDE,
    OPERATION_CHAT,
    OPERATION_EMBEDDINGS,
    AsyncStreamProxy,
    Call,
    CallDescription,
    ReplyText,
    StreamProxy,
    capture_content_enabled,
    message_text,
    read_field,
    record_output_messages,
    text_message,
    text_messages,
)
from spanledger.instrumentation.genai.endpoints import server_address_port

from .usage import usage_from_response

PROVIDERS: dict[str, str] = {
    "openai": "openai",
    "text-completion-openai": "openai",
    "azure": "azure.ai.openai",
    "azure_text": "azure.ai.openai",
    "azure_ai": "azure.ai.inference",
    "anthropic": "anthropic",
    "anthropic_text": "anthropic",
    "bedrock": "aws.bedrock",
    "sagemaker": "aws.sagemaker",
    "vertex_ai": "gcp.vertex_ai",
    "vertex_ai_beta": "gcp.vertex_ai",
    "gemini": "gcp.gemini",
    "mistral": "mistral_ai",
    "codestral": "mistral_ai",
    "text-completion-codestral": "mistral_ai",
    "cohere": "cohere",
    "cohere_chat": "cohere",
    "ollama": "ollama",
    "ollama_chat": "ollama",
    "xai": "x_ai",
    "together_ai": "together_ai",
    "fireworks_ai": "fireworks",
    "hosted_vllm": "vllm",
    "watsonx": "ibm.watsonx.ai",
}
"""LiteLLM's provider names → ``gen_ai.provider.name``; others (``groq``, ``deepseek``,
``openrouter``, ``perplexity``, ``cerebras``…) are already the same, and are kept as they are."""


@dataclass(frozen=True, slots=True)
class Request:
    """What ``settle`` needs to know of the request."""

    route: str
    """LiteLLM's provider name, as it prefixes the models it names (``ollama_chat``)."""
    hide_usage_chunk: bool = False
    """The call asked the stream for its usage on the caller's behalf."""


def _resolve(model: Any, kwargs: Mapping[str, Any]) -> tuple[str, str, str | None]:
    """``(model, LiteLLM provider, api base)`` as LiteLLM resolves them for this call."""
    from litellm import get_llm_provider

    api_base = kwargs.get("api_base") or kwargs.get("base_url")
    model_id, route, _, resolved_base = get_llm_provider(
        model=model,
        custom_llm_provider=kwargs.get("custom_llm_provider"),
        api_base=api_base if isinstance(api_base, str) else None,
    )
    return model_id, route, resolved_base or api_base


def _describe(
    operation: str, args: tuple, kwargs: dict, messages: Any = None
) -> CallDescription | None:
    model = kwargs.get("model", args[0] if args else None)
    if not isinstance(model, str) or not model:
        return None
    try:
        model_id, route, api_base = _resolve(model, kwargs)
    except Exception:
        return None  # LiteLLM cannot route the call either: it fails before sending anything.
    address, port = server_address_port(api_base) if api_base else (None, None)
    stream = bool(kwargs.get("stream")) and operation == OPERATION_CHAT
    call_kwargs = None
    options = kwargs.get("stream_options")
    asked = isinstance(options, Mapping) and options.get("include_usage") is True
    if stream and not asked:
        call_kwargs = {**kwargs, "stream_options": {**(options or {}), "include_usage": True}}
    attributes: dict[str, Any] = {}
    for attribute, name in (
        ("gen_ai.request.max_tokens", "max_tokens"),
        ("gen_ai.request.temperature", "temperature"),
        ("gen_ai.request.top_p", "top_p"),
    ):
        value = kwargs.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            attributes[attribute] = value
    return CallDescription(
        operation,
        PROVIDERS.get(route, route),
        model_id,
        stream=stream,
        server_address=address,
        server_port=port,
        attributes=attributes,
        input_messages=(lambda: text_messages(messages)) if messages is not None else None,
        details=Request(route, hide_usage_chunk=call_kwargs is not None),
        call_kwargs=call_kwargs,
    )


def describe_completion(_: Any, args: tuple, kwargs: dict) -> CallDescription | None:
    messages = kwargs.get("messages", args[1] if len(args) > 1 else None)
    return _describe(OPERATION_CHAT, args, kwargs, messages)


def describe_embedding(_: Any, args: tuple, kwargs: dict) -> CallDescription | None:
    return _describe(OPERATION_EMBEDDINGS, args, kwargs)


def settle(call: Call, result: Any) -> Any:
    """A whole response of ``completion`` or ``embedding``, or a stream iterated sync."""
    if call.description.stream:
        return StreamProxy(result, call, _ChunkReader(call))
    return _settle_whole(call, result)


def settle_async(call: Call, result: Any) -> Any:
    """A whole response of ``acompletion`` or ``aembedding``, or a stream iterated async."""
    if call.description.stream:
        return AsyncLiteLLMStream(result, call, _ChunkReader(call))
    return _settle_whole(call, result)


def _settle_whole(call: Call, result: Any) -> Any:
    request: Request = call.description.details
    usage = usage_from_response(result, request.route)
    call.usage.update(usage)
    if capture_content_enabled() and call.description.operation == OPERATION_CHAT:
        messages = [
            text_message(
                "assistant",
                message_text(read_field(read_field(choice, "message"), "content")),
                read_field(choice, "finish_reason"),
            )
            for choice in read_field(result, "choices") or ()
        ]
        record_output_messages(call.span, messages)
    call.finish(completed=None)
    return result


class _ChunkReader:
    """Reads each stream chunk into the call; hides the usage chunk the caller did not ask for."""

    __slots__ = ("call", "reply", "request")

    def __init__(self, call: Call) -> None:
        self.call = call
        self.request: Request = call.description.details
        self.reply = ReplyText()

    def __call__(self, chunk: Any) -> Any:
        seen = usage_from_response(chunk, self.request.route)
        self.call.usage.update(seen)
        choices = read_field(chunk, "choices") or ()
        for choice in choices[:1]:
            self.reply.add(read_field(read_field(choice, "delta"), "content"))
        if seen.finish_reasons:
            self.reply.record(self.call.span, seen.finish_reasons[0])
        if self.request.hide_usage_chunk and seen.input_tokens is not None and _empty(choices):
            return HIDE
        return chunk


_DELTA_FIELDS = ("content", "tool_calls", "function_call", "reasoning_content", "audio")


def _empty(choices: Any) -> bool:
    """Whether a chunk's choices say nothing: none at all (LiteLLM 1.110), or one whose delta is
    empty and that does not finish (1.108)."""
    for choice in choices:
        if read_field(choice, "finish_reason"):
            return False
        delta = read_field(choice, "delta")
        if any(read_field(delta, name) for name in _DELTA_FIELDS):
            return False
    return True


class AsyncLiteLLMStream(AsyncStreamProxy):
    """A ``CustomStreamWrapper`` iterated async. LiteLLM closes it with ``aclose()``, or
    ``close()``, which is sync."""

    async def aclose(self) -> None:
        try:
            await self.__wrapped__.aclose()
        finally:
            self._self_state.finish(completed=False)

    def close(self) -> None:  # type: ignore[override]  # LiteLLM's is sync
        try:
            self.__wrapped__.close()
        finally:
            self._self_state.finish(completed=False)
