"""Zero-code path: ``opentelemetry-instrument`` loads ``spanledger_openai`` from its entry point
and the GenAI span reaches a real OTLP receiver, over OTLP/HTTP and over OTLP/gRPC."""

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


# Instrumentors the app does not need (loading them only costs start-up time). The httpx2
# instrumentation stays on: its HTTP span must nest under the GenAI span.
UNUSED = (
    "spanledger_anthropic",
    "spanledger_tags",
    "requests",
    "threading",
    "httpx",
    "aiohttp-client",
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
) -> str:
    """Run the app under ``opentelemetry-instrument``; return what it printed."""
    script = tmp_path / "app.py"
    script.write_text(SCRIPT)
    env = {
        **os.environ,
        "LLM_BASE_URL": llm_base_url,
        "LLM_SCENARIO": scenario,
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


def test_disabled_instrumentation_exports_no_genai_span(tmp_path, llm, otlp_http):

    _run_instrumented(
        tmp_path,
        llm.openai_base_url,
        protocol="http/protobuf",
        endpoint=otlp_http.url,
        scenario="{}",
        disabled="spanledger_openai",
    )

    (http,) = otlp_http.wait_for(bool, timeout=30)
    assert http.name == "POST"
    assert http.parent_span_id == ""
