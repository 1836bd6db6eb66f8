"""Zero-code path: ``opentelemetry-instrument`` loads the SDK instrumentations from their entry
points and the GenAI span reaches a real OTLP receiver, over OTLP/HTTP and over OTLP/gRPC."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from support.processes import run_instrumented
from support.sinks import OtlpGrpcBackend, OtlpHttpBackend

from spanledger import semconv
from spanledger.standin import DEFAULT_TEXT, estimate_tokens

SCRIPT = textwrap.dedent(
    """
    import os
    import openai

    client = openai.OpenAI(api_key="test-key", base_url=os.environ["LLM_BASE_URL"])
    reply = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "hello"}],
        extra_headers={"x-standin-scenario": os.environ["LLM_SCENARIO"]},
    )
    print(reply.usage.prompt_tokens, reply.usage.completion_tokens)
    """
)


GEMINI_SCRIPT = textwrap.dedent(
    """
    import json
    import os
    from google import genai

    client = genai.Client(api_key="test-key", http_options={"base_url": os.environ["LLM_URL"]})
    reply = client.models.generate_content(
        model="gemini-2.5-flash",
        contents="hello",
        config={"http_options": {"headers": {"x-standin-scenario": os.environ["LLM_SCENARIO"]}}},
    )
    print(reply.usage_metadata.prompt_token_count, reply.usage_metadata.candidates_token_count)
    """
)

BEDROCK_SCRIPT = textwrap.dedent(
    """
    import os
    import boto3

    client = boto3.client("bedrock-runtime", endpoint_url=os.environ["LLM_URL"])
    client.meta.events.register(
        "before-sign.bedrock-runtime.*",
        lambda request, **_: request.headers.add_header(
            "x-standin-scenario", os.environ["LLM_SCENARIO"]
        ),
    )
    reply = client.converse(
        modelId="us.amazon.nova-pro-v1:0",
        messages=[{"role": "user", "content": [{"text": "hello"}]}],
    )
    print(reply["usage"]["inputTokens"], reply["usage"].get("cacheReadInputTokens"))
    """
)

# Instrumentors the apps do not need (loading them only costs start-up time). The HTTP client
# instrumentations stay on (httpx2 for openai and recent google-genai, httpx for older
# google-genai, urllib3 for botocore): their HTTP span must nest under the GenAI span.
UNUSED = (
    "spanledger_anthropic",
    "spanledger_tags",
    "requests",
    "threading",
    "aiohttp-client",
    "urllib",
)


@pytest.fixture
def otlp_http() -> Iterator[OtlpHttpBackend]:
    backend = OtlpHttpBackend().start()
    yield backend
    backend.stop()


@pytest.fixture
def otlp_grpc() -> Iterator[OtlpGrpcBackend]:
    backend = OtlpGrpcBackend().start()
    yield backend
    backend.stop()


def _run_instrumented(
    tmp_path: Path,
    llm_base_url: str,
    *,
    protocol: str,
    endpoint: str,
    scenario: str,
    disabled: str = "",
    app: str = SCRIPT,
) -> str:
    """Run the app under ``opentelemetry-instrument``; return what it printed."""
    script = tmp_path / "app.py"
    script.write_text(app)
    env = {
        **os.environ,
        "LLM_BASE_URL": llm_base_url,
        "LLM_SCENARIO": scenario,
        "LLM_URL": llm_base_url.removesuffix("/v1"),
        "AWS_ACCESS_KEY_ID": "AKIDSTANDIN",
        "AWS_SECRET_ACCESS_KEY": "standin-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "OTEL_SERVICE_NAME": "instrument-e2e",
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "50",
        "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": ",".join(filter(None, [*UNUSED, disabled])),
    }
    return run_instrumented(script, env=env, timeout=60)


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_opentelemetry_instrument_exports_the_genai_span(request, tmp_path, llm, protocol):
    backend = request.getfixturevalue("otlp_http" if protocol == "http/protobuf" else "otlp_grpc")
    scenario = (
        '{"usage": {"prompt_tokens": 1500, "prompt_tokens_details": {"cached_tokens": 1024}}}'
    )

    output = _run_instrumented(
        tmp_path, llm.openai_base_url, protocol=protocol, endpoint=backend.url, scenario=scenario
    )

    assert output.split() == ["1500", str(estimate_tokens(DEFAULT_TEXT))]
    # The app has exited, so every span it exported has arrived.
    spans = {span.name: span for span in backend.wait_for(bool, timeout=30)}
    assert sorted(spans) == ["POST", "chat gpt-4o-mini"]
    genai, http = spans["chat gpt-4o-mini"], spans["POST"]
    assert genai.kind == Span.SpanKind.SPAN_KIND_CLIENT
    assert http.parent_span_id == genai.span_id
    attributes = genai.attributes
    assert attributes[semconv.GEN_AI_OPERATION_NAME] == "chat"
    assert attributes[semconv.GEN_AI_PROVIDER_NAME] == "openai"
    assert attributes[semconv.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 1500
    assert attributes[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 1024
    assert attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == estimate_tokens(DEFAULT_TEXT)
    assert attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ["stop"]


@pytest.mark.parametrize(
    ("app", "disabled"),
    [
        (SCRIPT, "spanledger_openai"),
        (GEMINI_SCRIPT, "spanledger_openai,spanledger_google_genai"),
        (BEDROCK_SCRIPT, "spanledger_openai,spanledger_bedrock"),
    ],
    ids=["openai", "google-genai", "bedrock"],
)
@pytest.mark.slow
def test_disabled_instrumentation_exports_no_genai_span(tmp_path, llm, otlp_http, app, disabled):

    _run_instrumented(
        tmp_path,
        llm.openai_base_url,
        protocol="http/protobuf",
        endpoint=otlp_http.url,
        scenario="{}",
        disabled=disabled,
        app=app,
    )

    (http,) = otlp_http.wait_for(bool, timeout=30)
    assert http.name == "POST"
    assert http.parent_span_id == ""


@pytest.mark.parametrize(
    "case",
    [
        (
            GEMINI_SCRIPT,
            '{"usage": {"promptTokenCount": 1500, "cachedContentTokenCount": 1024}}',
            ["1500", str(estimate_tokens(DEFAULT_TEXT))],
            "generate_content gemini-2.5-flash",
            "gcp.gemini",
        ),
        (
            BEDROCK_SCRIPT,
            '{"usage": {"inputTokens": 476, "cacheReadInputTokens": 1024}}',
            ["476", "1024"],
            "chat us.amazon.nova-pro-v1:0",
            "aws.bedrock",
        ),
    ],
    ids=["google-genai", "bedrock"],
)
@pytest.mark.slow
def test_opentelemetry_instrument_loads_the_other_sdk_instrumentations(
    tmp_path, llm, otlp_http, case
):
    """``case``: the app, its scenario, what it prints, its span's name and provider."""
    app, scenario, printed, span_name, provider = case
    output = _run_instrumented(
        tmp_path,
        llm.openai_base_url,
        protocol="http/protobuf",
        endpoint=otlp_http.url,
        scenario=scenario,
        app=app,
        disabled="spanledger_openai",
    )

    assert output.split() == printed
    spans = {span.name: span for span in otlp_http.wait_for(bool, timeout=30)}
    assert sorted(spans) == sorted(["POST", span_name])
    assert spans["POST"].parent_span_id == spans[span_name].span_id
    attributes = spans[span_name].attributes
    assert attributes[semconv.GEN_AI_PROVIDER_NAME] == provider
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 1500
    assert attributes[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 1024
