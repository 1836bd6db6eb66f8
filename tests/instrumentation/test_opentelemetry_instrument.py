"""Zero-code path: ``opentelemetry-instrument`` loads the SDK instrumentations from their entry
points and the GenAI span reaches a real OTLP receiver, over OTLP/HTTP and over OTLP/gRPC."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import sysconfig
import textwrap
import threading
from collections.abc import Iterator
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

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


class _OtlpHttpHandler(BaseHTTPRequestHandler):
    received: queue.Queue[trace_service_pb2.ExportTraceServiceRequest]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        request = trace_service_pb2.ExportTraceServiceRequest()
        request.ParseFromString(body)
        self.received.put(request)
        payload = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        return


class _OtlpGrpcService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, received: queue.Queue) -> None:
        self.received = received

    def Export(self, request: Any, context: Any) -> Any:
        self.received.put(request)
        return trace_service_pb2.ExportTraceServiceResponse()


@pytest.fixture
def otlp_http() -> Iterator[tuple[str, queue.Queue]]:
    received: queue.Queue = queue.Queue()
    handler = type("Handler", (_OtlpHttpHandler,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", received
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def otlp_grpc() -> Iterator[tuple[str, queue.Queue]]:
    received: queue.Queue = queue.Queue()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_OtlpGrpcService(received), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"http://127.0.0.1:{port}", received
    server.stop(grace=None)


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    return getattr(value, kind) if kind else None


def _spans(received: queue.Queue, timeout: float = 30.0) -> list[Span]:
    """Every span delivered so far; waits for the first delivery."""
    requests = [received.get(timeout=timeout)]
    while not received.empty():
        requests.append(received.get_nowait())
    spans = []
    for request in requests:
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                spans.extend(scope_spans.spans)
    return spans


def _attributes(span: Span) -> dict[str, Any]:
    return {item.key: _value(item.value) for item in span.attributes}


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
    bin_dir = Path(sysconfig.get_path("scripts"))
    env = {
        **os.environ,
        "LLM_BASE_URL": llm_base_url,
        "LLM_URL": llm_base_url.removesuffix("/v1"),
        "AWS_ACCESS_KEY_ID": "AKIDSTANDIN",
        "AWS_SECRET_ACCESS_KEY": "standin-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
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
    completed = subprocess.run(
        [str(bin_dir / "opentelemetry-instrument"), sys.executable, str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_opentelemetry_instrument_exports_the_genai_span(request, tmp_path, llm, protocol):
    endpoint, received = request.getfixturevalue(
        "otlp_http" if protocol == "http/protobuf" else "otlp_grpc"
    )
    scenario = (
        '{"usage": {"prompt_tokens": 1500, "prompt_tokens_details": {"cached_tokens": 1024}}}'
    )

    output = _run_instrumented(
        tmp_path, llm.openai_base_url, protocol=protocol, endpoint=endpoint, scenario=scenario
    )

    assert output.split() == ["1500", str(estimate_tokens(DEFAULT_TEXT))]
    spans = {span.name: span for span in _spans(received)}
    assert sorted(spans) == ["POST", "chat gpt-4o-mini"]
    genai, http = spans["chat gpt-4o-mini"], spans["POST"]
    assert genai.kind == Span.SpanKind.SPAN_KIND_CLIENT
    assert http.parent_span_id == genai.span_id
    attributes = _attributes(genai)
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
def test_disabled_instrumentation_exports_no_genai_span(tmp_path, llm, otlp_http, app, disabled):
    endpoint, received = otlp_http

    _run_instrumented(
        tmp_path,
        llm.openai_base_url,
        protocol="http/protobuf",
        endpoint=endpoint,
        scenario="{}",
        disabled=disabled,
        app=app,
    )

    (http,) = _spans(received)
    assert http.name == "POST"
    assert http.parent_span_id == b""


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
def test_opentelemetry_instrument_loads_the_other_sdk_instrumentations(
    tmp_path, llm, otlp_http, case
):
    """``case``: the app, its scenario, what it prints, its span's name and provider."""
    app, scenario, printed, span_name, provider = case
    endpoint, received = otlp_http

    output = _run_instrumented(
        tmp_path,
        llm.openai_base_url,
        protocol="http/protobuf",
        endpoint=endpoint,
        scenario=scenario,
        app=app,
        disabled="spanledger_openai",
    )

    assert output.split() == printed
    spans = {span.name: span for span in _spans(received)}
    assert sorted(spans) == sorted(["POST", span_name])
    assert spans["POST"].parent_span_id == spans[span_name].span_id
    attributes = _attributes(spans[span_name])
    assert attributes[semconv.GEN_AI_PROVIDER_NAME] == provider
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 1500
    assert attributes[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 1024
