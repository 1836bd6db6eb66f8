"""``AnthropicBedrock`` and ``AnthropicVertex``: the real SDK clients against the stand-in's
Bedrock and Vertex AI paths get our span, named after their platform, and no span of the SDK's."""

from __future__ import annotations

import asyncio

import anthropic
import pytest
from instrumentation_support import genai_prices_total, instrumented
from opentelemetry.trace import StatusCode

from spanledger import semconv
from spanledger.instrumentation.anthropic import AnthropicInstrumentor
from spanledger.standin import DEFAULT_TEXT, Scenario

MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]
BEDROCK_MODEL = "global.anthropic.claude-sonnet-4-5-20250929-v1:0"
VERTEX_MODEL = "claude-sonnet-4-5@20250929"
USAGE = {"input_tokens": 10, "cache_read_input_tokens": 2000, "output_tokens": 60}


def bedrock(llm, tracer_provider, kind=anthropic.AnthropicBedrock):
    return kind(
        aws_access_key="AKIDSTANDIN",
        aws_secret_key="standin-secret",
        aws_region="us-east-1",
        base_url=llm.url,
        max_retries=0,
        open_telemetry={"tracer_provider": tracer_provider},
    )


def vertex(llm, tracer_provider, kind=anthropic.AnthropicVertex):
    return kind(
        region="us-east5",
        project_id="test-project",
        access_token="test-token",
        base_url=llm.url + "/v1",
        max_retries=0,
        open_telemetry={"tracer_provider": tracer_provider},
    )


PLATFORMS = {
    "bedrock": (bedrock, anthropic.AsyncAnthropicBedrock, BEDROCK_MODEL, "aws.bedrock"),
    "vertex": (vertex, anthropic.AsyncAnthropicVertex, VERTEX_MODEL, "gcp.vertex_ai"),
}


def check(span, model: str, provider: str, streamed: bool) -> None:
    assert span.name == f"chat {model}"
    attributes = span.attributes
    assert attributes[semconv.GEN_AI_PROVIDER_NAME] == provider
    assert attributes[semconv.GEN_AI_REQUEST_MODEL] == model
    assert attributes[semconv.GEN_AI_REQUEST_STREAM] is streamed
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 2010
    assert attributes[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 2000
    assert attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 60
    assert attributes.get(semconv.STREAM_COMPLETED) is (True if streamed else None)


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_a_platform_call_gets_our_span_only(
    llm, tracer_provider, instrumentor, only_span, platform
):
    make, _, model, provider = PLATFORMS[platform]
    client = make(llm, tracer_provider)

    llm.push(Scenario(usage=USAGE))
    message = client.messages.create(model=model, max_tokens=256, messages=MESSAGES)
    assert message.content[0].text == DEFAULT_TEXT
    check(only_span(), model, provider, streamed=False)

    llm.push(Scenario(usage=USAGE))
    with client.messages.stream(model=model, max_tokens=256, messages=MESSAGES) as stream:
        assert stream.get_final_text() == DEFAULT_TEXT
    check(only_span(), model, provider, streamed=True)


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_async_platform_clients_are_traced_too(
    llm, tracer_provider, instrumentor, only_span, platform
):
    _, async_kind, model, provider = PLATFORMS[platform]
    make = PLATFORMS[platform][0]

    async def calls() -> None:
        client = make(llm, tracer_provider, async_kind)
        llm.push(Scenario(usage=USAGE))
        stream = await client.messages.create(
            model=model, max_tokens=256, messages=MESSAGES, stream=True
        )
        async for _ in stream:
            pass

    asyncio.run(calls())

    check(only_span(), model, provider, streamed=True)


def test_a_bedrock_stream_left_early_ends_its_span(llm, tracer_provider, instrumentor, only_span):
    client = bedrock(llm, tracer_provider)
    llm.push(Scenario(usage=USAGE))
    stream = client.messages.create(
        model=BEDROCK_MODEL, max_tokens=256, messages=MESSAGES, stream=True
    )
    next(iter(stream))
    stream.close()

    span = only_span()
    assert span.attributes[semconv.STREAM_COMPLETED] is False
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 2010


def test_an_exception_frame_in_a_bedrock_stream_fails_the_span(
    llm, tracer_provider, instrumentor, only_span
):
    client = bedrock(llm, tracer_provider)
    llm.push(Scenario(stream_error_after=3))

    with pytest.raises(anthropic.APIStatusError):
        for _ in client.messages.create(
            model=BEDROCK_MODEL, max_tokens=256, messages=MESSAGES, stream=True
        ):
            pass

    span = only_span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "modelStreamErrorException"


@pytest.mark.parametrize(
    ("platform", "model", "entry"),
    [
        ("bedrock", BEDROCK_MODEL, f"aws/{BEDROCK_MODEL}"),
        (
            "bedrock",
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "aws/regional.anthropic.claude-sonnet-4-5-20250929-v1:0",
        ),
        ("vertex", VERTEX_MODEL, "google/claude-sonnet-4-5"),
    ],
)
def test_platform_calls_are_priced_for_their_platform(llm, priced, platform, model, entry):
    make = PLATFORMS[platform][0]
    provider_id = entry.split("/", 1)[0]
    with instrumented(AnthropicInstrumentor(), priced.tracer_provider):
        client = make(llm, priced.tracer_provider)
        llm.push(Scenario(usage=USAGE))
        client.messages.create(model=model, max_tokens=256, messages=MESSAGES)

    (call,) = priced.calls()
    assert call.cost.pricing_model == entry
    assert call.cost.total == genai_prices_total(
        model,
        provider_id,
        call.start_time_unix_nano,
        input_tokens=2010,
        output_tokens=60,
        cache_read_tokens=2000,
    )
