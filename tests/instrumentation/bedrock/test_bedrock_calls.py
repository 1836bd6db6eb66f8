"""Every Bedrock runtime call shape through the real boto3: one span each, with the model id as
sent and the exact token counts the stand-in reported, for each model family."""

from __future__ import annotations

import gc
import json
from typing import Any

import pytest
from bedrock_support import bedrock_client
from botocore.eventstream import EventStream
from botocore.exceptions import ClientError, EventStreamError
from botocore.response import StreamingBody
from instrumentation_support import instrumented
from opentelemetry.trace import SpanKind, StatusCode

import spanledger
from spanledger import semconv
from spanledger.instrumentation.bedrock import BedrockInstrumentor
from spanledger.instrumentation.genai import CAPTURE_CONTENT_ENV
from spanledger.standin import DEFAULT_TEXT, Scenario, estimate_tokens

PROMPT = "What is the capital of France?"
MESSAGES = [{"role": "user", "content": [{"text": PROMPT}]}]
CLAUDE = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"

INPUT = semconv.GEN_AI_USAGE_INPUT_TOKENS
OUTPUT = semconv.GEN_AI_USAGE_OUTPUT_TOKENS
CACHE_READ = semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS
CACHE_WRITE = semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS
CACHED = {INPUT: 2510, OUTPUT: 60, CACHE_READ: 2000, CACHE_WRITE: 500}
"""10 input tokens beside 2,000 read from the cache and 500 written to it; 60 output tokens."""
CONVERSE_CACHED = {
    "inputTokens": 10,
    "cacheReadInputTokens": 2000,
    "cacheWriteInputTokens": 500,
    "outputTokens": 60,
}
"""The same, as Converse reports it."""

MISTRAL_PROMPT = f"<s>[INST] {PROMPT} [/INST]"
FAMILIES: dict[str, tuple[str, dict[str, Any], dict[str, Any] | None, str, dict[str, int]]] = {
    # family: (model id, request body, scenario usage, operation, expected counts)
    "anthropic": (
        CLAUDE,
        {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 256,
            "messages": [{"role": "user", "content": PROMPT}],
        },
        {
            "input_tokens": 10,
            "cache_read_input_tokens": 2000,
            "cache_creation_input_tokens": 500,
            "output_tokens": 60,
        },
        "chat",
        CACHED,
    ),
    "nova": (
        "eu.amazon.nova-pro-v1:0",
        {
            "schemaVersion": "messages-v1",
            "messages": MESSAGES,
            "inferenceConfig": {"maxTokens": 256},
        },
        {
            "inputTokens": 10,
            "cacheReadInputTokenCount": 2000,
            "cacheWriteInputTokenCount": 500,
            "outputTokens": 60,
        },
        "chat",
        CACHED,
    ),
    "llama": (
        "meta.llama3-1-70b-instruct-v1:0",
        {"prompt": PROMPT, "max_gen_len": 256},
        {"prompt_token_count": 1200, "generation_token_count": 60},
        "text_completion",
        {INPUT: 1200, OUTPUT: 60},
    ),
    "mistral": (
        "mistral.mistral-large-2402-v1:0",
        {"prompt": MISTRAL_PROMPT, "max_tokens": 256},
        None,
        "text_completion",
        {INPUT: estimate_tokens(MISTRAL_PROMPT), OUTPUT: estimate_tokens(DEFAULT_TEXT)},
    ),
}
FINISH = {"anthropic": "end_turn", "nova": "end_turn", "llama": "stop", "mistral": "stop"}


def only_span(exporter):
    spans = exporter.get_finished_spans()
    assert len(spans) == 1, [span.name for span in spans]
    return spans[0]


def counts(span) -> dict[str, int]:
    return {
        key: span.attributes[key]
        for key in (INPUT, OUTPUT, CACHE_READ, CACHE_WRITE)
        if key in span.attributes
    }


def test_converse_records_all_input_tokens_and_the_cache(client, llm, span_exporter):
    llm.push(Scenario(usage=CONVERSE_CACHED))

    reply = client.converse(modelId=CLAUDE, messages=MESSAGES, inferenceConfig={"maxTokens": 256})

    assert reply["output"]["message"]["content"] == [{"text": DEFAULT_TEXT}]
    span = only_span(span_exporter)
    assert span.name == f"chat {CLAUDE}"
    assert span.kind is SpanKind.CLIENT
    assert span.instrumentation_scope.name == "spanledger.instrumentation.bedrock"
    assert counts(span) == CACHED
    attributes = span.attributes
    assert attributes[semconv.GEN_AI_PROVIDER_NAME] == "aws.bedrock"
    assert attributes[semconv.GEN_AI_OPERATION_NAME] == "chat"
    assert attributes[semconv.GEN_AI_REQUEST_MODEL] == CLAUDE
    assert semconv.GEN_AI_RESPONSE_MODEL not in attributes
    assert attributes["gen_ai.request.max_tokens"] == 256
    assert attributes[semconv.GEN_AI_REQUEST_STREAM] is False
    assert attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("end_turn",)
    assert (attributes["server.address"], attributes["server.port"]) == ("127.0.0.1", llm.port)


@pytest.mark.parametrize(
    "model",
    [
        "anthropic.claude-3-haiku-20240307-v1:0",
        "global.anthropic.claude-haiku-4-5-20251001-v1:0",
        "apac.amazon.nova-micro-v1:0",
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20240620-v1:0",
        "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6",
    ],
)
def test_the_model_id_is_recorded_as_sent(client, llm, span_exporter, model):
    client.converse(modelId=model, messages=MESSAGES)

    span = only_span(span_exporter)
    assert span.attributes[semconv.GEN_AI_REQUEST_MODEL] == model
    assert span.name == f"chat {model}"
    assert llm.requests[0].path.endswith("/converse")


def test_converse_stream_reads_the_usage_from_its_metadata_event(client, llm, span_exporter):
    llm.push(Scenario(usage=CONVERSE_CACHED))

    reply = client.converse_stream(modelId=CLAUDE, messages=MESSAGES)
    assert isinstance(reply["stream"], EventStream)
    events = list(reply["stream"])

    text = "".join(
        e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e
    )
    assert text == DEFAULT_TEXT
    span = only_span(span_exporter)
    assert counts(span) == CACHED
    assert span.attributes[semconv.GEN_AI_REQUEST_STREAM] is True
    assert span.attributes[semconv.STREAM_COMPLETED] is True
    assert span.attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("end_turn",)


def test_a_converse_stream_closed_early_or_dropped_ends_its_span(client, llm, span_exporter):
    stream = client.converse_stream(modelId=CLAUDE, messages=MESSAGES)["stream"]
    next(iter(stream))
    stream.close()
    dropped = client.converse_stream(modelId=CLAUDE, messages=MESSAGES)
    del dropped
    gc.collect()

    closed, collected = span_exporter.get_finished_spans()
    for span in (closed, collected):
        assert span.attributes[semconv.STREAM_COMPLETED] is False
        assert OUTPUT not in span.attributes


def test_an_exception_inside_a_stream_fails_the_span(client, llm, span_exporter):
    llm.push(Scenario(stream_error_after=3))

    with pytest.raises(EventStreamError) as raised:
        list(client.converse_stream(modelId=CLAUDE, messages=MESSAGES)["stream"])

    assert raised.value.response["Error"]["Code"] == "modelStreamErrorException"
    span = only_span(span_exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "EventStreamError"
    assert span.attributes[semconv.STREAM_COMPLETED] is False


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_invoke_model_reads_each_family_s_body(client, llm, span_exporter, family):
    model, body, usage, operation, expected = FAMILIES[family]
    llm.push(Scenario(usage=usage))

    reply = client.invoke_model(modelId=model, body=json.dumps(body))

    assert isinstance(reply["body"], StreamingBody)
    answer = json.loads(reply["body"].read())
    assert DEFAULT_TEXT in json.dumps(answer)
    span = only_span(span_exporter)
    assert span.name == f"{operation} {model}"
    assert counts(span) == expected
    assert span.attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == (FINISH[family],)
    assert span.attributes["gen_ai.request.max_tokens"] == 256


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_invoke_model_with_response_stream_reads_each_family_s_chunks(
    client, llm, span_exporter, family
):
    model, body, usage, operation, expected = FAMILIES[family]
    llm.push(Scenario(usage=usage))

    reply = client.invoke_model_with_response_stream(modelId=model, body=json.dumps(body))
    chunks = [json.loads(event["chunk"]["bytes"]) for event in reply["body"]]

    assert "amazon-bedrock-invocationMetrics" in chunks[-1]
    span = only_span(span_exporter)
    assert span.name == f"{operation} {model}"
    assert counts(span) == expected
    assert span.attributes[semconv.STREAM_COMPLETED] is True
    assert span.attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == (FINISH[family],)


def test_a_body_cut_short_fails_the_span_and_the_application_s_read(client, llm, span_exporter):
    model, body, *_ = FAMILIES["nova"]
    llm.push(Scenario(drop_after=20))

    reply = client.invoke_model(modelId=model, body=json.dumps(body))

    with pytest.raises(Exception) as raised:
        reply["body"].read()
    span = only_span(span_exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == type(raised.value).__name__
    assert OUTPUT not in span.attributes


def test_titan_embeddings_count_their_input(client, span_exporter):
    text = "a document to embed"

    reply = client.invoke_model(
        modelId="amazon.titan-embed-text-v2:0", body=json.dumps({"inputText": text})
    )

    assert json.loads(reply["body"].read())["inputTextTokenCount"] == estimate_tokens(text)
    span = only_span(span_exporter)
    assert span.attributes[semconv.GEN_AI_OPERATION_NAME] == "embeddings"
    assert span.attributes[INPUT] == estimate_tokens(text)


def test_api_errors_pass_through_and_mark_the_span(client, llm, span_exporter):
    llm.push(Scenario(error=429))

    with pytest.raises(ClientError) as raised:
        client.converse(modelId=CLAUDE, messages=MESSAGES)

    assert type(raised.value) is client.exceptions.ThrottlingException
    span = only_span(span_exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "ThrottlingException"


def test_other_aws_calls_pass_by(llm, instrumentor, span_exporter):
    control_plane = bedrock_client(llm, "bedrock")
    runtime = bedrock_client(llm)

    with pytest.raises(ClientError):
        control_plane.list_foundation_models()
    with pytest.raises(ClientError):
        runtime.get_async_invoke(invocationArn="arn:aws:bedrock:us-east-1:1:async-invoke/x")

    assert span_exporter.get_finished_spans() == ()


def test_tags_are_on_the_span(llm, priced):
    with (
        spanledger.tags(customer="acme", team="search"),
        instrumented(BedrockInstrumentor(), priced.tracer_provider),
    ):
        bedrock_client(llm).converse(modelId=CLAUDE, messages=MESSAGES)

    (call,) = priced.calls()
    assert (call.tags["customer"], call.tags["team"]) == ("acme", "search")


def test_content_is_captured_only_when_asked(client, span_exporter, monkeypatch):
    client.converse(modelId=CLAUDE, messages=MESSAGES)
    monkeypatch.setenv(CAPTURE_CONTENT_ENV, "true")
    client.converse(modelId=CLAUDE, messages=MESSAGES, system=[{"text": "Be brief."}])
    list(client.converse_stream(modelId=CLAUDE, messages=MESSAGES)["stream"])

    plain, captured, streamed = span_exporter.get_finished_spans()
    assert "gen_ai.input.messages" not in plain.attributes
    assert json.loads(captured.attributes["gen_ai.input.messages"]) == [
        {"role": "system", "content": [{"text": "Be brief."}]},
        *MESSAGES,
    ]
    expected = [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": DEFAULT_TEXT}],
            "finish_reason": "end_turn",
        }
    ]
    assert json.loads(captured.attributes["gen_ai.output.messages"]) == expected
    assert json.loads(streamed.attributes["gen_ai.output.messages"]) == expected
