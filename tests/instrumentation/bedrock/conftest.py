"""Fixtures for the Bedrock tests: the real boto3 ``bedrock-runtime`` client, with made-up
credentials, pointed at the stand-in, with the instrumentation on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from bedrock_support import bedrock_client
from instrumentation_support import instrumented
from opentelemetry.sdk.trace import TracerProvider

from spanledger.instrumentation.bedrock import BedrockInstrumentor
from spanledger.standin import StandIn


@pytest.fixture(autouse=True)
def no_aws_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """Keep the machine's AWS configuration and instance metadata out of the tests."""
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def instrumentor(tracer_provider: TracerProvider) -> Iterator[BedrockInstrumentor]:
    with instrumented(BedrockInstrumentor(), tracer_provider) as instrumentor:
        yield instrumentor


@pytest.fixture
def client(llm: StandIn, instrumentor: BedrockInstrumentor) -> Any:
    return bedrock_client(llm)
