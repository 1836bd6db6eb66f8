"""Every call shape of the real google-genai SDK, Gemini Developer API and Vertex AI: one span
each, with the provider, model and the exact token counts the stand-in reported."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from google import genai
from google.genai import errors, types
from google_genai_support import CLIENTS, gemini_client, reports_embedding_usage, vertex_client
from instrumentation_support import instrumented
from opentelemetry.instrumentation.httpx import HTTPX2ClientInstrumentor, HTTPXClientInstrumentor
from opentelemetry.trace import SpanKind, StatusCode

import spanledger
from spanledger import semconv
from spanledger.instrumentation.genai import CAPTURE_CONTENT_ENV
from spanledger.instrumentation.google_genai import GoogleGenAIInstrumentor
from spanledger.standin import DEFAULT_TEXT, Scenario, estimate_tokens

MODEL = "gemini-2.5-flash"
PROMPT = "What is the capital of France?"
"""30 characters: 8 prompt tokens by the stand-in's rule."""

USAGE = {
    "promptTokenCount": 1200,
    "cachedContentTokenCount": 1000,
    "candidatesTokenCount": 50,
    "thoughtsTokenCount": 30,
    "toolUsePromptTokenCount": 20,
}
EXPECTED = {
    semconv.GEN_AI_USAGE_INPUT_TOKENS: 1220,
    semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 1000,
    semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 80,
    semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: 30,
}


async def _collect(stream: Any) -> list[Any]:
    return [chunk async for chunk in stream]


async def _async_stream(client: genai.Client) -> list[Any]:
    return await _collect(
        await client.aio.models.generate_content_stream(model=MODEL, contents=PROMPT)
    )


async def _async_chat(client: genai.Client) -> Any:
    return await client.aio.chats.create(model=MODEL).send_message(PROMPT)


async def _async_chat_stream(client: genai.Client) -> list[Any]:
    chat = client.aio.chats.create(model=MODEL)
    return await _collect(await chat.send_message_stream(PROMPT))


SHAPES: dict[str, tuple[bool, Callable[[genai.Client], Any]]] = {
    "generate": (False, lambda c: c.models.generate_content(model=MODEL, contents=PROMPT)),
    "stream": (
        True,
        lambda c: list(c.models.generate_content_stream(model=MODEL, contents=PROMPT)),
    ),
    "async generate": (
        False,
        lambda c: asyncio.run(c.aio.models.generate_content(model=MODEL, contents=PROMPT)),
    ),
    "async stream": (True, lambda c: asyncio.run(_async_stream(c))),
    "chat": (False, lambda c: c.chats.create(model=MODEL).send_message(PROMPT)),
    "chat stream": (True, lambda c: list(c.chats.create(model=MODEL).send_message_stream(PROMPT))),
    "async chat": (False, lambda c: asyncio.run(_async_chat(c))),
    "async chat stream": (True, lambda c: asyncio.run(_async_chat_stream(c))),
}


def only_span(exporter):
    spans = exporter.get_finished_spans()
    assert len(spans) == 1, [span.name for span in spans]
    return spans[0]


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_each_call_shape_records_one_span_with_the_reported_usage(
    client, llm, span_exporter, provider, shape
):
    streamed, make_call = SHAPES[shape]
    llm.push(Scenario(usage=USAGE))

    make_call(client)

    span = only_span(span_exporter)
    assert span.name == f"generate_content {MODEL}"
    assert span.kind is SpanKind.CLIENT
    assert span.instrumentation_scope.name == "spanledger.instrumentation.google_genai"
    attributes = span.attributes
    assert attributes[semconv.GEN_AI_OPERATION_NAME] == "generate_content"
    assert attributes[semconv.GEN_AI_PROVIDER_NAME] == provider
    assert attributes[semconv.GEN_AI_REQUEST_MODEL] == MODEL
    assert attributes[semconv.GEN_AI_RESPONSE_MODEL] == MODEL
    assert attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert attributes[semconv.GEN_AI_REQUEST_STREAM] is streamed
    assert {key: attributes.get(key) for key in EXPECTED} == EXPECTED
    assert attributes.get(semconv.STREAM_COMPLETED) is (True if streamed else None)
    assert attributes["server.address"] == "127.0.0.1"
    assert attributes["server.port"] == llm.port
    assert span.status.status_code is StatusCode.UNSET


def test_default_figures_without_a_scenario(client, span_exporter):
    reply = client.models.generate_content(model=MODEL, contents=PROMPT)

    assert reply.text == DEFAULT_TEXT
    attributes = only_span(span_exporter).attributes
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == estimate_tokens(PROMPT)
    assert attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == estimate_tokens(DEFAULT_TEXT)
    for absent in (
        semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
        semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
    ):
        assert absent not in attributes


def test_the_response_id_is_recorded_when_the_sdk_reports_it(client, span_exporter):
    reply = client.models.generate_content(model=MODEL, contents=PROMPT)

    # Older SDKs drop the Developer API's responseId; the span then has none either.
    recorded = only_span(span_exporter).attributes.get(semconv.GEN_AI_RESPONSE_ID)
    assert recorded == reply.response_id
    assert reply.response_id is None or reply.response_id.startswith("standin")


def test_resource_names_of_the_model_are_recorded_as_its_id(client, span_exporter, provider):
    name = "models/gemini-2.5-flash"
    if provider == "gcp.vertex_ai":
        name = "publishers/google/models/gemini-2.5-flash"

    client.models.generate_content(model=name, contents=PROMPT)

    assert only_span(span_exporter).attributes[semconv.GEN_AI_REQUEST_MODEL] == MODEL


def test_embed_content_records_the_input_tokens(client, span_exporter, provider):
    texts = ["first text to embed", "second"]

    reply = client.models.embed_content(model="gemini-embedding-001", contents=texts)
    asyncio.run(client.aio.models.embed_content(model="gemini-embedding-001", contents=texts))

    assert len(reply.embeddings) == 2
    sync, in_async = span_exporter.get_finished_spans()
    for span in (sync, in_async):
        assert span.name == "embeddings gemini-embedding-001"
        assert span.attributes[semconv.GEN_AI_OPERATION_NAME] == "embeddings"
        assert span.attributes[semconv.GEN_AI_PROVIDER_NAME] == provider
        if reports_embedding_usage(reply):
            tokens = sum(map(estimate_tokens, texts))
            assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == tokens
        else:
            assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in span.attributes


def test_vertex_text_embedding_models_count_tokens_per_instance(llm, instrumentor, span_exporter):
    texts = ["first text to embed", "second"]
    client = vertex_client(llm)  # held: a client closes its connections when collected
    client.models.embed_content(model="text-embedding-005", contents=texts)

    span = only_span(span_exporter)
    assert llm.requests[0].path.endswith("/models/text-embedding-005:predict")
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == sum(map(estimate_tokens, texts))


def get_weather(city: str) -> str:
    """Tells the weather in a city."""
    return f"sunny in {city}"


# Real types, not the strings ``from __future__ import annotations`` leaves: older SDKs read the
# annotations as they are.
get_weather.__annotations__ = {"city": str, "return": str}


def test_automatic_function_calling_records_every_model_request(client, llm, span_exporter):
    llm.push(
        Scenario(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}]),
        Scenario(text="It is sunny in Paris.", usage={"promptTokenCount": 40}),
    )

    reply = client.models.generate_content(
        model=MODEL,
        contents="Weather in Paris?",
        config=types.GenerateContentConfig(tools=[get_weather]),
    )

    assert reply.text == "It is sunny in Paris."
    first, second = span_exporter.get_finished_spans()
    assert len(llm.requests) == 2
    assert first.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == estimate_tokens(
        "Weather in Paris?"
    )
    assert second.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 40


def test_a_stream_left_early_keeps_the_usage_seen(client, llm, span_exporter):
    llm.push(Scenario(usage=USAGE, chunks=4))
    stream = client.models.generate_content_stream(model=MODEL, contents=PROMPT)
    next(stream)
    stream.close()

    attributes = only_span(span_exporter).attributes
    assert attributes[semconv.STREAM_COMPLETED] is False
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 1200
    assert semconv.GEN_AI_USAGE_OUTPUT_TOKENS not in attributes


def test_an_abandoned_async_stream_ends_its_span(client, llm, span_exporter):
    async def first_chunk() -> None:
        stream = await client.aio.models.generate_content_stream(model=MODEL, contents=PROMPT)
        async for _ in stream:
            break
        await stream.aclose()

    asyncio.run(first_chunk())

    assert only_span(span_exporter).attributes[semconv.STREAM_COMPLETED] is False


def test_a_stream_cut_short_fails_the_span(client, llm, span_exporter):
    llm.push(Scenario(usage=USAGE, chunks=4, drop_after=2))

    with pytest.raises(Exception) as raised:
        list(client.models.generate_content_stream(model=MODEL, contents=PROMPT))

    span = only_span(span_exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == type(raised.value).__name__
    assert span.attributes[semconv.STREAM_COMPLETED] is False
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 1200


@pytest.mark.parametrize(
    ("status", "error"), [(429, errors.ClientError), (503, errors.ServerError)]
)
def test_api_errors_pass_through_and_mark_the_span(client, llm, span_exporter, status, error):
    llm.push(Scenario(error=status))

    with pytest.raises(error) as raised:
        client.models.generate_content(model=MODEL, contents=PROMPT)

    assert raised.value.code == status
    span = only_span(span_exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == error.__name__


def test_http_spans_nest_under_the_call_span(
    llm, instrumentor, provider, span_exporter, tracer_provider
):
    # Recent SDKs send through httpx2 when it is installed, older ones through httpx.
    http_instrumentors = (HTTPX2ClientInstrumentor(), HTTPXClientInstrumentor())
    for http_instrumentor in http_instrumentors:
        http_instrumentor.instrument(tracer_provider=tracer_provider)
    try:
        client = CLIENTS[provider](llm)
        client.models.generate_content(model=MODEL, contents=PROMPT)
        list(client.models.generate_content_stream(model=MODEL, contents=PROMPT))
    finally:
        for http_instrumentor in http_instrumentors:
            http_instrumentor.uninstrument()

    spans = span_exporter.get_finished_spans()
    calls = [span for span in spans if span.name.startswith("generate_content")]
    http = [span for span in spans if span.name == "POST"]
    assert len(calls) == len(http) == 2
    assert {span.parent.span_id for span in http} == {span.context.span_id for span in calls}


def test_tags_are_on_the_span(llm, priced):
    with (
        spanledger.tags(customer="acme", feature="search"),
        instrumented(GoogleGenAIInstrumentor(), priced.tracer_provider),
    ):
        client = gemini_client(llm)
        client.models.generate_content(model=MODEL, contents=PROMPT)

    attributes = priced.forwarded()[f"generate_content {MODEL}"]
    assert (attributes["customer"], attributes["feature"]) == ("acme", "search")
    (call,) = priced.calls()
    assert call.tags["customer"] == "acme"


def test_content_is_captured_only_when_asked(client, llm, span_exporter, monkeypatch):
    client.models.generate_content(model=MODEL, contents=PROMPT)
    monkeypatch.setenv(CAPTURE_CONTENT_ENV, "true")
    client.models.generate_content(model=MODEL, contents=PROMPT)
    list(client.models.generate_content_stream(model=MODEL, contents=PROMPT))

    plain, captured, streamed = span_exporter.get_finished_spans()
    assert "gen_ai.input.messages" not in plain.attributes
    assert "gen_ai.output.messages" not in plain.attributes
    for span in (captured, streamed):
        assert json.loads(span.attributes["gen_ai.input.messages"]) == [
            {"role": "user", "parts": [{"type": "text", "content": PROMPT}]}
        ]
        assert json.loads(span.attributes["gen_ai.output.messages"]) == [
            {
                "role": "model",
                "parts": [{"type": "text", "content": DEFAULT_TEXT}],
                "finish_reason": "stop",
            }
        ]
