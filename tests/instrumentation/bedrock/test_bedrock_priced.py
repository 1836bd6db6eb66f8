"""Bedrock calls through the real processor: the counted tokens are the ones Bedrock reported and
the cost is what ``genai_prices.calc_price`` charges for the model id as sent."""

from __future__ import annotations

import json

import pytest
from bedrock_support import bedrock_client
from instrumentation_support import genai_prices_total, instrumented

from spanledger import semconv
from spanledger.instrumentation.bedrock import BedrockInstrumentor
from spanledger.standin import DEFAULT_TEXT, Scenario, estimate_tokens

MESSAGES = [{"role": "user", "content": [{"text": "What is the capital of France?"}]}]
CONVERSE_USAGE = {
    "inputTokens": 3_000,
    "cacheReadInputTokens": 40_000,
    "cacheWriteInputTokens": 5_000,
    "outputTokens": 900,
}


@pytest.fixture
def client(llm, priced):
    with instrumented(BedrockInstrumentor(), priced.tracer_provider):
        yield bedrock_client(llm)


@pytest.mark.parametrize(
    ("model_id", "entry"),
    [
        (
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "regional.anthropic.claude-sonnet-4-5-20250929-v1:0",
        ),
        (
            "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
        ),
        (
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/eu.amazon.nova-pro-v1:0",
            "amazon.nova-pro-v1:0",
        ),
    ],
)
def test_converse_with_the_cache_is_priced_for_the_id_as_sent(client, llm, priced, model_id, entry):
    llm.push(Scenario(usage=CONVERSE_USAGE))
    client.converse(modelId=model_id, messages=MESSAGES)

    (call,) = priced.calls()
    assert call.usage.provider == "aws.bedrock"
    assert call.usage.input_tokens == 48_000
    assert (call.usage.cache_read_tokens, call.usage.cache_write_tokens) == (40_000, 5_000)
    assert call.usage.output_tokens == 900
    assert call.cost.pricing_model == f"aws/{entry}"
    assert call.cost.total == genai_prices_total(
        model_id.rsplit("/", 1)[-1],
        "aws",
        call.start_time_unix_nano,
        input_tokens=48_000,
        output_tokens=900,
        cache_read_tokens=40_000,
        cache_write_tokens=5_000,
    )


def test_invoke_model_streams_and_bodies_are_priced(client, llm, priced):
    llama = "us.meta.llama3-3-70b-instruct-v1:0"
    mistral = "mistral.mistral-large-2402-v1:0"
    llm.push(Scenario(usage={"prompt_token_count": 20_000, "generation_token_count": 1_500}))
    reply = client.invoke_model_with_response_stream(
        modelId=llama, body=json.dumps({"prompt": "Summarise the ticket."})
    )
    list(reply["body"])
    client.invoke_model(modelId=mistral, body=json.dumps({"prompt": "Summarise the ticket."}))

    by_model = {call.usage.request_model: call for call in priced.calls()}
    streamed, whole = by_model[llama], by_model[mistral]
    assert (streamed.usage.input_tokens, streamed.usage.output_tokens) == (20_000, 1_500)
    assert streamed.cost.total == genai_prices_total(
        llama, "aws", streamed.start_time_unix_nano, input_tokens=20_000, output_tokens=1_500
    )
    prompt, output = estimate_tokens("Summarise the ticket."), estimate_tokens(DEFAULT_TEXT)
    assert (whole.usage.input_tokens, whole.usage.output_tokens) == (prompt, output)
    assert whole.cost.total == genai_prices_total(
        mistral, "aws", whole.start_time_unix_nano, input_tokens=prompt, output_tokens=output
    )


def test_an_application_inference_profile_is_counted_unpriced_naming_it(client, priced):
    arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6"
    client.converse(modelId=arn, messages=MESSAGES)

    (call,) = priced.calls()
    assert call.cost.status == semconv.STATUS_UNPRICED
    assert arn in call.cost.reason
    forwarded = priced.forwarded()[f"chat {arn}"]
    assert forwarded[semconv.COST_STATUS] == semconv.STATUS_UNPRICED
