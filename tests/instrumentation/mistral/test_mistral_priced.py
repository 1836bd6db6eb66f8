"""mistralai calls through the real processor: the counted tokens are the ones Mistral reported
and the cost is what ``genai_prices.calc_price`` charges."""

from __future__ import annotations

import asyncio

import pytest
from instrumentation_support import genai_prices_total, instrumented
from mistral_support import Mistral, cached

import spanledger
from spanledger import semconv
from spanledger.instrumentation.mistral import MistralInstrumentor
from spanledger.standin import DEFAULT_TEXT, Scenario, estimate_tokens

MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]
REPLY_TOKENS = estimate_tokens(DEFAULT_TEXT)


@pytest.fixture
def priced_client(llm, priced):
    with instrumented(MistralInstrumentor(), priced.tracer_provider):
        yield Mistral(api_key="test-key", server_url=llm.mistral_base_url)


def test_a_chat_call_with_cached_tokens_is_priced_with_its_tags(priced_client, llm, priced):
    llm.push(
        Scenario(usage={"prompt_tokens": 12_000, "prompt_tokens_details": {"cached_tokens": 8_000}})
    )
    with spanledger.tags(customer="acme", feature="search"):
        priced_client.chat.complete(model="mistral-small-2603", messages=MESSAGES)

    (call,) = priced.calls()
    assert call.tags == {"customer": "acme", "feature": "search", "team": "(none)", "env": "(none)"}
    assert call.usage.provider == "mistral_ai"
    cache_read = cached(8_000) or 0
    assert (call.usage.input_tokens, call.usage.cache_read_tokens) == (12_000, cache_read)
    assert call.usage.output_tokens == REPLY_TOKENS
    assert call.cost.status == semconv.STATUS_PRICED
    assert call.cost.pricing_model == "mistral/mistral-small-2603"
    expected = genai_prices_total(
        "mistral-small-2603",
        "mistral",
        call.start_time_unix_nano,
        input_tokens=12_000,
        cache_read_tokens=cache_read,
        output_tokens=REPLY_TOKENS,
    )
    assert call.cost.total == expected
    forwarded = priced.forwarded()["chat mistral-small-2603"]
    assert forwarded[semconv.GEN_AI_USAGE_COST] == pytest.approx(float(expected))


def test_an_async_stream_is_priced_once_it_ends(priced_client, llm, priced):
    llm.push(Scenario(usage={"prompt_tokens": 3_000, "completion_tokens": 700}))

    async def main() -> None:
        stream = await priced_client.chat.stream_async(
            model="mistral-large-latest", messages=MESSAGES
        )
        async for _ in stream:
            pass

    asyncio.run(main())

    (call,) = priced.calls()
    assert (call.usage.input_tokens, call.usage.output_tokens) == (3_000, 700)
    assert call.cost.total == genai_prices_total(
        "mistral-large-latest",
        "mistral",
        call.start_time_unix_nano,
        input_tokens=3_000,
        output_tokens=700,
    )


def test_fill_in_the_middle_and_embeddings_are_priced(priced_client, llm, priced):
    llm.push(
        Scenario(usage={"prompt_tokens": 500, "completion_tokens": 40}),
        Scenario(usage={"prompt_tokens": 2_000}),
    )
    list(priced_client.fim.stream(model="codestral-2508", prompt="def f(", suffix="return 1"))
    priced_client.embeddings.create(model="mistral-embed", inputs=["one", "two"])

    embeddings, fim = sorted(priced.calls(), key=lambda call: call.usage.operation)
    assert (embeddings.usage.operation, fim.usage.operation) == ("embeddings", "text_completion")
    assert fim.cost.total == genai_prices_total(
        "codestral-2508", "mistral", fim.start_time_unix_nano, input_tokens=500, output_tokens=40
    )
    assert embeddings.usage.input_tokens == 2_000
    assert embeddings.cost.total == genai_prices_total(
        "mistral-embed",
        "mistral",
        embeddings.start_time_unix_nano,
        input_tokens=2_000,
        output_tokens=0,
    )


def test_a_model_without_a_price_is_counted_unpriced(priced_client, priced):
    priced_client.chat.complete(model="ft:open-mistral-7b:acme:1234", messages=MESSAGES)

    (call,) = priced.calls()
    assert call.cost.status == semconv.STATUS_UNPRICED
    assert "ft:open-mistral-7b:acme:1234" in call.cost.reason
    assert call.cost.total == 0
