"""The shared GenAI helpers on their own: provider names, usage records, stream proxies."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest
from opentelemetry.trace import StatusCode

from spanledger import semconv
from spanledger.instrumentation.genai import (
    HIDE,
    AsyncStreamProxy,
    InferenceUsage,
    StreamProxy,
    StreamSpan,
    provider_from_url,
    safe,
    server_address_port,
    start_inference_span,
)


@pytest.mark.parametrize(
    ("base_url", "provider"),
    [
        ("https://api.openai.com/v1", "openai"),
        ("https://my-res.openai.azure.com/openai", "azure.ai.openai"),
        ("https://my-res.cognitiveservices.azure.com/", "azure.ai.openai"),
        ("https://openrouter.ai/api/v1", "openrouter"),
        ("https://api.groq.com/openai/v1", "groq"),
        ("https://api.deepseek.com", "deepseek"),
        ("https://api.together.xyz/v1", "together_ai"),
        ("https://api.x.ai/v1", "x_ai"),
        ("https://api.mistral.ai/v1", "mistral_ai"),
        ("https://api.cohere.ai/compatibility/v1", "cohere"),
        ("https://ollama.com/v1", "ollama"),
        ("https://api.perplexity.ai", "perplexity"),
        ("https://api.fireworks.ai/inference/v1", "fireworks"),
        ("https://generativelanguage.googleapis.com/v1beta/openai/", "gcp.gemini"),
        ("http://localhost:11434/v1", "ollama"),
        ("http://127.0.0.1:1234/v1", "lm_studio"),
        ("http://10.0.0.5:8000/v1", "openai"),
        ("http://localhost:4000", "openai"),
        ("https://llm.internal.example.com/v1", "openai"),
        ("https://notopenrouter.ai.example.com", "openai"),
    ],
)
def test_provider_from_url(base_url, provider):
    assert provider_from_url(base_url) == provider


def test_unknown_host_keeps_the_sdk_default():
    assert provider_from_url("https://proxy.example.com", default="anthropic") == "anthropic"


def test_server_address_port_defaults_by_scheme():
    assert server_address_port("https://api.openai.com/v1") == ("api.openai.com", 443)
    assert server_address_port("http://127.0.0.1:8080/v1") == ("127.0.0.1", 8080)


def test_usage_update_keeps_known_fields_and_merges_finish_reasons():
    usage = InferenceUsage(input_tokens=10, finish_reasons=["stop"])
    usage.update(InferenceUsage(output_tokens=4, finish_reasons=["stop", "length"]))

    assert usage.attributes() == {
        semconv.GEN_AI_USAGE_INPUT_TOKENS: 10,
        semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 4,
        semconv.GEN_AI_RESPONSE_FINISH_REASONS: ["stop", "length"],
    }


def test_safe_logs_and_returns_the_default(caplog):
    @safe(default=-1)
    def explode() -> int:
        raise KeyError("boom")

    with caplog.at_level(logging.ERROR, logger="spanledger.instrumentation"):
        assert explode() == -1
    assert "explode" in caplog.records[0].getMessage()


class Chunks:
    """A minimal SDK-like stream: iterable, closable, a context manager."""

    def __init__(self, items: list[int], fail_at: int | None = None) -> None:
        self.items = items
        self.fail_at = fail_at
        self.closed = False

    def __iter__(self):
        for index, item in enumerate(self.items):
            if index == self.fail_at:
                raise ConnectionError("dropped")
            yield item

    def close(self) -> None:
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


class CountingProxy(StreamProxy):
    def on_item(self, item):
        usage = self._self_state.usage
        usage.output_tokens = (usage.output_tokens or 0) + item
        return HIDE if item == 0 else item


def _stream_state(tracer_provider) -> StreamSpan:
    tracer = tracer_provider.get_tracer("test")
    return StreamSpan(
        start_inference_span(
            tracer, operation="chat", provider="openai", request_model="m", stream=True
        )
    )


def test_proxy_keeps_isinstance_hides_items_and_completes(tracer_provider, span_exporter):
    proxy = CountingProxy(Chunks([1, 0, 2]), _stream_state(tracer_provider))

    assert isinstance(proxy, Chunks)
    assert list(proxy) == [1, 2]
    (span,) = span_exporter.get_finished_spans()
    assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 3
    assert span.attributes[semconv.STREAM_COMPLETED] is True


def test_proxy_ends_once_on_close_and_exit(tracer_provider, span_exporter):
    with CountingProxy(Chunks([1, 2, 3]), _stream_state(tracer_provider)) as proxy:
        assert next(proxy) == 1
        proxy.close()
    gc.collect()

    (span,) = span_exporter.get_finished_spans()
    assert span.attributes[semconv.STREAM_COMPLETED] is False
    assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 1


def test_proxy_error_marks_the_span(tracer_provider, span_exporter):
    proxy = CountingProxy(Chunks([5, 6, 7], fail_at=2), _stream_state(tracer_provider))

    with pytest.raises(ConnectionError):
        list(proxy)

    (span,) = span_exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "ConnectionError"
    assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 11


def test_abandoned_proxy_ends_on_garbage_collection(tracer_provider, span_exporter):
    proxy = CountingProxy(Chunks([1, 2]), _stream_state(tracer_provider))
    del proxy
    gc.collect()

    (span,) = span_exporter.get_finished_spans()
    assert span.attributes[semconv.STREAM_COMPLETED] is False


class AsyncChunks:
    def __init__(self, items: list[int]) -> None:
        self.items = items

    async def __aiter__(self):
        for item in self.items:
            yield item

    async def close(self) -> None:
        return None

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc_info):
        await self.close()


def test_async_proxy_completes_and_ends_early(tracer_provider, span_exporter):
    async def run() -> list[int]:
        full = AsyncStreamProxy(AsyncChunks([1, 2]), _stream_state(tracer_provider))
        items = [item async for item in full]
        async with AsyncStreamProxy(AsyncChunks([3, 4]), _stream_state(tracer_provider)) as early:
            items.append(await anext(early))
        return items

    assert asyncio.run(run()) == [1, 2, 3]
    completed = [
        span.attributes[semconv.STREAM_COMPLETED] for span in span_exporter.get_finished_spans()
    ]
    assert completed == [True, False]


def test_azure_client_is_named_azure_whatever_its_host():
    import openai

    from spanledger.instrumentation.openai.patch import _endpoint

    azure = openai.AzureOpenAI(
        api_key="k", api_version="2024-10-21", base_url="https://gateway.example.com/openai"
    )
    plain = openai.OpenAI(api_key="k", base_url="https://api.groq.com/openai/v1")

    assert _endpoint(azure) == ("azure.ai.openai", "gateway.example.com", 443)
    assert _endpoint(plain) == ("groq", "api.groq.com", 443)
    plain.base_url = "http://localhost:11434/v1"
    assert _endpoint(plain) == ("ollama", "localhost", 11434)
