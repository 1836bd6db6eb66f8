"""cohere v2 calls through the real processor: chats and embeddings are priced on the units
Cohere billed, as ``genai_prices.calc_price`` charges them; what the table cannot price (rerank
search units, an embedding model it does not list) is counted unpriced, with the reason."""

from __future__ import annotations

import asyncio

import cohere
import pytest
from instrumentation_support import genai_prices_total, instrumented

import spanledger
from spanledger import semconv
from spanledger.instrumentation.cohere import CohereInstrumentor
from spanledger.standin import Scenario

MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture
def priced_client(llm, priced):
    with instrumented(CohereInstrumentor(), priced.tracer_provider):
        yield cohere.ClientV2(api_key="test-key", base_url=llm.url)


def test_a_chat_is_priced_on_its_billed_units_not_the_processed_tokens(priced_client, llm, priced):
    billed = {"input_tokens": 12_000, "output_tokens": 700}
    processed = {"input_tokens": 12_480, "output_tokens": 700}
    llm.push(Scenario(usage={"billed_units": billed, "tokens": processed}))
    with spanledger.tags(customer="acme"):
        priced_client.chat(model="command-r-plus-08-2024", messages=MESSAGES)

    (call,) = priced.calls()
    assert call.tags["customer"] == "acme"
    assert call.usage.provider == "cohere"
    assert (call.usage.input_tokens, call.usage.output_tokens) == (12_000, 700)
    assert call.cost.status == semconv.STATUS_PRICED
    assert call.cost.pricing_model == "cohere/command-r-plus"
    expected = genai_prices_total(
        "command-r-plus-08-2024",
        "cohere",
        call.start_time_unix_nano,
        input_tokens=12_000,
        output_tokens=700,
    )
    assert call.cost.total == expected
    forwarded = priced.forwarded()["chat command-r-plus-08-2024"]
    assert forwarded[semconv.GEN_AI_USAGE_COST] == pytest.approx(float(expected))
    assert forwarded["cohere.usage.tokens.input_tokens"] == 12_480


def test_an_async_stream_is_priced_once_it_ends(llm, priced):
    llm.push(Scenario(usage={"billed_units": {"input_tokens": 3_000, "output_tokens": 400}}))

    async def main() -> None:
        client = cohere.AsyncClientV2(api_key="test-key", base_url=llm.url)
        async for _ in client.chat_stream(model="command-r7b-12-2024", messages=MESSAGES):
            pass

    with instrumented(CohereInstrumentor(), priced.tracer_provider):
        asyncio.run(main())

    (call,) = priced.calls()
    assert (call.usage.input_tokens, call.usage.output_tokens) == (3_000, 400)
    assert call.cost.total == genai_prices_total(
        "command-r7b-12-2024",
        "cohere",
        call.start_time_unix_nano,
        input_tokens=3_000,
        output_tokens=400,
    )


def test_embeddings_are_priced_per_input_token_where_the_table_lists_the_model(
    priced_client, llm, priced
):
    llm.push(Scenario(usage={"input_tokens": 50_000}), Scenario(usage={"input_tokens": 800}))
    priced_client.embed(
        model="embed-v4.0",
        input_type="search_document",
        texts=["a", "b"],
        embedding_types=["float"],
    )
    priced_client.embed(
        model="embed-english-v3.0",
        input_type="search_document",
        texts=["a"],
        embedding_types=["float"],
    )

    unlisted, listed = sorted(priced.calls(), key=lambda call: call.usage.request_model)
    assert listed.usage.request_model == "embed-v4.0"
    assert listed.usage.input_tokens == 50_000
    assert listed.cost.total == genai_prices_total(
        "embed-v4.0", "cohere", listed.start_time_unix_nano, input_tokens=50_000, output_tokens=0
    )
    assert unlisted.cost.status == semconv.STATUS_UNPRICED
    assert "embed-english-v3.0" in unlisted.cost.reason
    assert unlisted.usage.input_tokens == 800


def test_a_rerank_is_counted_unpriced_as_its_search_units_have_no_price(priced_client, priced):
    priced_client.rerank(model="rerank-v3.5", query="capital", documents=["Paris", "Rome"])

    (call,) = priced.calls()
    assert (call.usage.operation, call.usage.request_model) == ("rerank", "rerank-v3.5")
    assert call.cost.status == semconv.STATUS_UNPRICED
    assert "search units (1)" in call.cost.reason
    assert call.cost.total == 0
    forwarded = priced.forwarded()["rerank rerank-v3.5"]
    assert forwarded[semconv.COST_STATUS] == semconv.STATUS_UNPRICED
    assert semconv.GEN_AI_USAGE_COST not in forwarded
