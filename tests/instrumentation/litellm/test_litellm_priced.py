"""LiteLLM calls through the real processor: each call counted once. When LiteLLM goes through
the ``openai`` SDK, the SDK's span inside ours is the one counted (the innermost inference span)
and ours is ``not_counted``; otherwise ours is counted, priced by LiteLLM's own cost when the
processor prefers reported costs (the default), or by the price table when it does not."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import litellm
import pytest
from instrumentation_support import genai_prices_total, instrumented
from litellm_support import MESSAGES, anthropic_route, ollama_route, openai_route
from provider_support import PricedWith, forwarded_spans

import spanledger
from spanledger import semconv
from spanledger.instrumentation.litellm import LiteLLMInstrumentor
from spanledger.instrumentation.openai import OpenAIInstrumentor
from spanledger.processor.pricing import PricingConfig
from spanledger.standin import Scenario

SCOPE = "spanledger.instrumentation.litellm"


@pytest.fixture
def traced(priced) -> Iterator[None]:
    with (
        instrumented(OpenAIInstrumentor(), priced.tracer_provider),
        instrumented(LiteLLMInstrumentor(), priced.tracer_provider),
    ):
        yield


def statuses(priced) -> list[tuple[str, str]]:
    """``(scope, cost status)`` of every inference span the processor forwarded."""
    return sorted(
        (scope.rsplit(".", 1)[-1], attributes[semconv.COST_STATUS])
        for scope, _, attributes in forwarded_spans(priced)
        if semconv.GEN_AI_OPERATION_NAME in attributes
    )


@pytest.mark.usefixtures("traced")
def test_through_the_openai_sdk_the_call_is_counted_once_on_the_sdks_span(llm, priced):
    llm.push(
        Scenario(usage={"prompt_tokens": 12_000, "prompt_tokens_details": {"cached_tokens": 8_000}})
    )
    with spanledger.tags(customer="acme"):
        litellm.completion(messages=MESSAGES, **openai_route(llm))

    (call,) = priced.calls()
    assert call.tags["customer"] == "acme"
    assert (call.usage.provider, call.usage.input_tokens, call.usage.cache_read_tokens) == (
        "openai",
        12_000,
        8_000,
    )
    assert call.cost.source == semconv.SOURCE_PRICE_TABLE
    assert call.cost.total == genai_prices_total(
        "gpt-4o-mini",
        "openai",
        call.start_time_unix_nano,
        input_tokens=12_000,
        cache_read_tokens=8_000,
        output_tokens=call.usage.output_tokens,
    )
    assert statuses(priced) == [("litellm", "not_counted"), ("openai", "priced")]


@pytest.mark.usefixtures("traced")
def test_a_stream_through_the_openai_sdk_is_counted_once_too(llm, priced):
    list(litellm.completion(messages=MESSAGES, stream=True, **openai_route(llm)))

    (call,) = priced.calls()
    assert call.usage.output_tokens > 0
    assert statuses(priced) == [("litellm", "not_counted"), ("openai", "priced")]


CACHED_ANTHROPIC = Scenario(
    usage={"input_tokens": 1_000, "cache_read_input_tokens": 20_000, "output_tokens": 500}
)


@pytest.mark.usefixtures("traced")
def test_elsewhere_our_span_is_counted_at_litellms_own_cost(llm, priced):
    llm.push(CACHED_ANTHROPIC)
    reply = litellm.completion(messages=MESSAGES, **anthropic_route(llm, "claude-sonnet-4-5"))

    (call,) = priced.calls()
    assert (call.usage.provider, call.usage.request_model) == ("anthropic", "claude-sonnet-4-5")
    assert (call.usage.input_tokens, call.usage.cache_read_tokens) == (21_000, 20_000)
    assert call.cost.source == semconv.SOURCE_PROVIDER_REPORTED
    reported = reply._hidden_params["response_cost"]
    assert float(call.cost.total) == pytest.approx(reported)
    assert statuses(priced) == [("litellm", "priced")]


def test_with_reported_costs_not_preferred_the_price_table_prices_it(llm):
    processor = PricedWith(PricingConfig(prefer_reported=False)).start()
    try:
        llm.push(CACHED_ANTHROPIC)
        with instrumented(LiteLLMInstrumentor(), processor.tracer_provider):
            litellm.completion(messages=MESSAGES, **anthropic_route(llm, "claude-sonnet-4-5"))

        (call,) = processor.calls()
        assert call.cost.source == semconv.SOURCE_PRICE_TABLE
        assert call.cost.total == genai_prices_total(
            "claude-sonnet-4-5",
            "anthropic",
            call.start_time_unix_nano,
            input_tokens=21_000,
            cache_read_tokens=20_000,
            output_tokens=500,
        )
        assert call.usage.reported_cost > Decimal(0)
    finally:
        processor.stop()


@pytest.mark.usefixtures("traced")
def test_a_self_hosted_model_through_litellm_is_unpriced_not_free(llm, priced):
    list(litellm.completion(messages=MESSAGES, stream=True, **ollama_route(llm)))

    (call,) = priced.calls()
    assert (call.usage.provider, call.usage.request_model) == ("ollama", "llama3.2")
    assert call.cost.status == semconv.STATUS_UNPRICED
    assert "'ollama'" in call.cost.reason


@pytest.mark.usefixtures("traced")
def test_a_router_counts_each_call_once(llm, priced):
    router = litellm.Router(
        model_list=[
            {"model_name": "fast", "litellm_params": openai_route(llm)},
            {"model_name": "smart", "litellm_params": anthropic_route(llm)},
        ]
    )
    router.completion(model="fast", messages=MESSAGES)
    router.completion(model="smart", messages=MESSAGES)

    calls = priced.calls()
    assert sorted(call.usage.provider for call in calls) == ["anthropic", "openai"]
    assert {call.cost.status for call in calls} == {semconv.STATUS_PRICED}
    assert statuses(priced) == [
        ("litellm", "not_counted"),
        ("litellm", "priced"),
        ("openai", "priced"),
    ]
