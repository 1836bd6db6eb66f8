"""The Bedrock instrumentation never changes what botocore does, and leaves nothing behind."""

from __future__ import annotations

import json
import logging
from importlib.metadata import version

import wrapt
from bedrock_support import bedrock_client
from botocore.client import BaseClient
from opentelemetry.instrumentation.dependencies import get_dependency_conflicts
from packaging.requirements import Requirement

from spanledger.instrumentation.bedrock import BedrockInstrumentor, patch
from spanledger.standin import DEFAULT_TEXT

MESSAGES = [{"role": "user", "content": [{"text": "hello"}]}]


def test_the_installed_botocore_is_in_the_declared_range():
    (requirement,) = BedrockInstrumentor().instrumentation_dependencies()

    assert Requirement(requirement).name == "botocore"
    assert get_dependency_conflicts([requirement]) is None, version("botocore")


def test_uninstrument_restores_the_client(llm, tracer_provider, span_exporter):
    original = BaseClient.__dict__["_make_api_call"]
    instrumentor = BedrockInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider)
    assert isinstance(BaseClient.__dict__["_make_api_call"], wrapt.FunctionWrapper)

    instrumentor.uninstrument()

    assert BaseClient.__dict__["_make_api_call"] is original
    bedrock_client(llm).converse(modelId="amazon.nova-lite-v1:0", messages=MESSAGES)
    assert span_exporter.get_finished_spans() == ()


def test_a_fault_reading_the_answer_is_logged_and_the_answer_returned(
    client, span_exporter, monkeypatch, caplog
):
    def broken(*args):
        raise RuntimeError("usage reader exploded")

    monkeypatch.setattr(patch, "converse_result", broken)
    monkeypatch.setattr(patch, "body_usage", broken)
    with caplog.at_level(logging.ERROR, logger="spanledger.instrumentation"):
        reply = client.converse(modelId="amazon.nova-lite-v1:0", messages=MESSAGES)
        invoked = client.invoke_model(
            modelId="amazon.nova-lite-v1:0",
            body=json.dumps({"schemaVersion": "messages-v1", "messages": MESSAGES}),
        )

    assert reply["output"]["message"]["content"] == [{"text": DEFAULT_TEXT}]
    assert json.loads(invoked["body"].read())["output"]["message"]["content"][0]["text"] == (
        DEFAULT_TEXT
    )
    faults = [record for record in caplog.records if record.exc_info]
    assert [str(record.exc_info[1]) for record in faults] == ["usage reader exploded"] * 2
    assert len(span_exporter.get_finished_spans()) == 2
