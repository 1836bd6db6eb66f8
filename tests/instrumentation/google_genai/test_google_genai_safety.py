"""The google-genai instrumentation never changes what the SDK does, and leaves nothing behind."""

from __future__ import annotations

import logging
from importlib.metadata import version

import pytest
import wrapt
from google.genai import models, types
from google_genai_support import gemini_client
from opentelemetry.instrumentation.dependencies import get_dependency_conflicts
from packaging.requirements import Requirement

from spanledger.instrumentation.google_genai import GoogleGenAIInstrumentor, patch

PATCHED = (
    (models.Models, "_generate_content"),
    (models.Models, "_generate_content_stream"),
    (models.Models, "embed_content"),
    (models.AsyncModels, "_generate_content"),
    (models.AsyncModels, "_generate_content_stream"),
    (models.AsyncModels, "embed_content"),
)


def test_the_installed_sdk_is_in_the_declared_range():
    (requirement,) = GoogleGenAIInstrumentor().instrumentation_dependencies()

    assert Requirement(requirement).name == "google-genai"
    assert get_dependency_conflicts([requirement]) is None, version("google-genai")


def test_uninstrument_restores_every_method(llm, tracer_provider, span_exporter):
    originals = {(owner, name): owner.__dict__[name] for owner, name in PATCHED}
    instrumentor = GoogleGenAIInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider)
    assert all(isinstance(owner.__dict__[name], wrapt.FunctionWrapper) for owner, name in PATCHED)

    instrumentor.uninstrument()

    assert {(owner, name): owner.__dict__[name] for owner, name in PATCHED} == originals
    client = gemini_client(llm)
    client.models.generate_content(model="gemini-2.5-flash", contents="hello")
    assert span_exporter.get_finished_spans() == ()


def test_a_fault_reading_the_result_is_logged_and_the_result_returned(
    llm, instrumentor, span_exporter, monkeypatch, caplog
):
    def broken(response):
        raise RuntimeError("usage reader exploded")

    monkeypatch.setattr(patch, "usage_from_response", broken)
    client = gemini_client(llm)
    with caplog.at_level(logging.ERROR, logger="spanledger.instrumentation"):
        reply = client.models.generate_content(model="gemini-2.5-flash", contents="hello")
        chunks = list(
            client.models.generate_content_stream(model="gemini-2.5-flash", contents="hi")
        )

    assert isinstance(reply, types.GenerateContentResponse)
    assert reply.usage_metadata.prompt_token_count == 2
    assert "".join(chunk.text for chunk in chunks) == reply.text
    assert "usage reader exploded" in caplog.text
    assert len(span_exporter.get_finished_spans()) == 2


def test_sdk_argument_errors_pass_through(llm, instrumentor, span_exporter):
    client = gemini_client(llm)
    with pytest.raises(ValueError, match="model"):
        client.models.generate_content(model="", contents="hello")

    (span,) = span_exporter.get_finished_spans()
    assert (span.name, span.attributes["error.type"]) == ("generate_content", "ValueError")
