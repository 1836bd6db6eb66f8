"""The instrumentation never changes what the SDK does: errors, types, faults, switches."""

from __future__ import annotations

import json
import logging
from importlib.metadata import entry_points

import openai
import pytest
import wrapt
from openai._base_client import AsyncAPIClient, SyncAPIClient
from openai._legacy_response import LegacyAPIResponse
from openai._response import BaseAPIResponse
from openai.types.chat import ChatCompletion
from openai_support import MESSAGES, only_span, scenario
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import StatusCode

from spanledger import semconv
from spanledger.instrumentation.genai import CAPTURE_CONTENT_ENV
from spanledger.instrumentation.genai import call as kit_call
from spanledger.instrumentation.openai import OpenAIInstrumentor, patch
from spanledger.standin import DEFAULT_TEXT, StandIn

PATCHED = (
    (SyncAPIClient, "request"),
    (AsyncAPIClient, "request"),
    (BaseAPIResponse, "_parse"),
    (LegacyAPIResponse, "_parse"),
)


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
    ],
)
def test_sdk_errors_pass_through_and_mark_the_span(client, span_exporter, status, error_class):
    with pytest.raises(error_class) as raised:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, extra_headers=scenario(error=status)
        )

    assert type(raised.value) is error_class
    assert raised.value.status_code == status
    span = only_span(span_exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == error_class.__name__
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in span.attributes


def test_connection_error_passes_through(tracer_provider, instrumentor, span_exporter):
    unreachable = StandIn().start()
    base_url = unreachable.openai_base_url
    unreachable.stop()
    sdk = openai.OpenAI(api_key="test-key", base_url=base_url, max_retries=0)

    with pytest.raises(openai.APIConnectionError):
        sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert only_span(span_exporter).attributes["error.type"] == "APIConnectionError"


def test_fault_reading_usage_is_logged_and_the_call_succeeds(
    client, span_exporter, monkeypatch, caplog
):
    def broken(result):
        raise RuntimeError("usage reader exploded")

    monkeypatch.setattr(patch, "usage_from_result", broken)
    with caplog.at_level(logging.ERROR, logger="spanledger.instrumentation"):
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert isinstance(reply, ChatCompletion)
    assert reply.usage.prompt_tokens == 8
    span = only_span(span_exporter)
    assert span.status.status_code is StatusCode.UNSET
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in span.attributes
    assert any("usage reader exploded" in record.exc_text for record in caplog.records)


def test_fault_reading_stream_chunks_leaves_the_stream_intact(
    client, span_exporter, monkeypatch, caplog
):
    def broken(tokens):
        raise ValueError("chunk reader exploded")

    monkeypatch.setattr(patch, "usage_from_tokens", broken)
    with caplog.at_level(logging.ERROR, logger="spanledger.instrumentation"):
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        seen = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)

    # The usage chunk could not be read, so it was not hidden either; the content is intact.
    assert seen == DEFAULT_TEXT
    assert only_span(span_exporter).attributes[semconv.STREAM_COMPLETED] is True
    assert any("chunk reader exploded" in (record.exc_text or "") for record in caplog.records)


def test_fault_starting_the_span_leaves_the_call_uninstrumented(
    client, llm, span_exporter, monkeypatch, caplog
):
    def broken(*args, **kwargs):
        raise RuntimeError("span start exploded")

    monkeypatch.setattr(kit_call, "start_inference_span", broken)
    with caplog.at_level(logging.ERROR, logger="spanledger.instrumentation"):
        chunks = list(
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        )

    assert chunks
    assert span_exporter.get_finished_spans() == ()
    assert "stream_options" not in llm.requests[-1].json
    assert any("span start exploded" in (record.exc_text or "") for record in caplog.records)


def test_uninstrument_restores_every_patched_callable(tracer_provider):
    originals = [getattr(owner, name) for owner, name in PATCHED]
    instrumentor = OpenAIInstrumentor()

    instrumentor.instrument(tracer_provider=tracer_provider)
    try:
        for owner, name in PATCHED:
            assert isinstance(owner.__dict__[name], wrapt.FunctionWrapper), name
    finally:
        instrumentor.uninstrument()

    for (owner, name), original in zip(PATCHED, originals, strict=True):
        assert getattr(owner, name) is original, name
        assert not isinstance(owner.__dict__[name], wrapt.ObjectProxy), name


def test_uninstrumented_calls_make_no_spans(client, instrumentor, span_exporter):
    instrumentor.uninstrument()

    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert span_exporter.get_finished_spans() == ()


def test_suppressed_instrumentation_makes_no_span_and_leaves_the_request(
    client, llm, span_exporter
):
    with suppress_instrumentation():
        list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))

    assert span_exporter.get_finished_spans() == ()
    assert "stream_options" not in llm.requests[-1].json


def test_unsampled_span_gets_no_attributes_and_the_request_is_untouched(llm, span_exporter):
    provider = TracerProvider(sampler=ALWAYS_OFF)
    provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        sdk = openai.OpenAI(api_key="test-key", base_url=llm.openai_base_url, max_retries=0)
        chunks = list(sdk.chat.completions.create(model="m", messages=MESSAGES, stream=True))
        sdk.chat.completions.create(model="m", messages=MESSAGES)
    finally:
        instrumentor.uninstrument()

    assert chunks
    assert span_exporter.get_finished_spans() == ()
    assert "stream_options" not in llm.requests[0].json


def test_message_content_is_not_captured_by_default(client, span_exporter, monkeypatch):
    monkeypatch.delenv(CAPTURE_CONTENT_ENV, raising=False)

    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    attributes = only_span(span_exporter).attributes
    assert "gen_ai.input.messages" not in attributes
    assert "gen_ai.output.messages" not in attributes
    assert not any(MESSAGES[0]["content"] in str(value) for value in attributes.values())


def test_message_content_is_captured_when_asked(client, span_exporter, monkeypatch):
    monkeypatch.setenv(CAPTURE_CONTENT_ENV, "true")

    reply = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    attributes = only_span(span_exporter).attributes
    assert json.loads(attributes["gen_ai.input.messages"]) == MESSAGES
    output = json.loads(attributes["gen_ai.output.messages"])
    assert output[0]["content"] == reply.choices[0].message.content


def test_streamed_content_is_captured_when_asked(client, span_exporter, monkeypatch):
    monkeypatch.setenv(CAPTURE_CONTENT_ENV, "SPAN_ONLY")

    text = "".join(
        chunk.choices[0].delta.content or ""
        for chunk in client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True
        )
        if chunk.choices
    )

    output = json.loads(only_span(span_exporter).attributes["gen_ai.output.messages"])
    assert output == [{"role": "assistant", "content": text}]


def test_entry_point_names_the_instrumentor():
    (entry_point,) = [
        ep
        for ep in entry_points(group="opentelemetry_instrumentor")
        if ep.name == "spanledger_openai"
    ]
    assert entry_point.load() is OpenAIInstrumentor
    assert OpenAIInstrumentor().instrumentation_dependencies() == ("openai >= 3.0, < 4",)


def test_responses_content_is_captured_when_asked(client, span_exporter, monkeypatch):
    monkeypatch.setenv(CAPTURE_CONTENT_ENV, "true")

    response = client.responses.create(model="gpt-4.1", input="Say hi", instructions="Be brief.")

    attributes = only_span(span_exporter).attributes
    assert json.loads(attributes["gen_ai.input.messages"]) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Say hi"},
    ]
    output = json.loads(attributes["gen_ai.output.messages"])
    assert output == [{"role": "assistant", "content": response.output_text}]


def test_an_unsupported_sdk_version_is_left_alone(tracer_provider, monkeypatch):
    monkeypatch.setattr(OpenAIInstrumentor, "instruments", ("openai >= 99",))
    originals = [getattr(owner, name) for owner, name in PATCHED]
    instrumentor = OpenAIInstrumentor()

    # As opentelemetry-instrument does after its own, distribution-wide check.
    instrumentor.instrument(tracer_provider=tracer_provider, skip_dep_check=True)
    try:
        assert [getattr(owner, name) for owner, name in PATCHED] == originals
    finally:
        instrumentor.uninstrument()
