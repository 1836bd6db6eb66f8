"""Tags and trace cross an HTTP hop to a service running under ``opentelemetry-instrument``.

The caller (this process) sends with an instrumented client; the downstream service (see
``tag_downstream.py``) continues the trace and baggage and asks the LLM stand-in through the
anthropic SDK. Its spans arrive over OTLP/HTTP at a receiver in the test. The stand-in's
request log shows that no LLM request carried baggage.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import httpx2
import pytest
import requests
from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from support.processes import instrumented, stop_process
from support.sinks import OtlpHttpBackend, ReceivedSpan
from tag_pipeline import Pipeline

import spanledger
from spanledger.semconv import DEFAULT_TAG_KEYS, GEN_AI_OPERATION_NAME

HERE = Path(__file__).parent


@contextmanager
def downstream(llm: Any, sink: OtlpHttpBackend, **extra_env: str) -> Iterator[str]:
    """Runs ``tag_downstream.py`` under ``opentelemetry-instrument``; yields its URL."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SPANLEDGER_"))},
        "OTEL_SERVICE_NAME": "downstream",
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": sink.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "50",
        "ANTHROPIC_BASE_URL": llm.anthropic_base_url,
        **extra_env,
    }
    process = subprocess.Popen(
        instrumented(HERE / "tag_downstream.py"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("READY "), line + (process.stderr.read() if process.stderr else "")
        yield line.split()[1]
    finally:
        stop_process(process, grace=15)


@pytest.fixture(scope="module")
def module_sink() -> Iterator[OtlpHttpBackend]:
    sink = OtlpHttpBackend().start()
    yield sink
    sink.stop()


@pytest.fixture(scope="module")
def service(standin: Any, module_sink: OtlpHttpBackend) -> Iterator[str]:
    with downstream(standin, module_sink) as url:
        yield url


def post_httpx2(url: str) -> dict[str, Any]:
    return httpx2.post(url, json={"prompt": "hi"}, timeout=30).json()


def post_httpx(url: str) -> dict[str, Any]:
    return httpx.post(url, json={"prompt": "hi"}, timeout=30).json()


def post_requests(url: str) -> dict[str, Any]:
    return requests.post(url, json={"prompt": "hi"}, timeout=30).json()


def post_aiohttp(url: str) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, json={"prompt": "hi"}) as r,
        ):
            return json.loads(await r.text())

    return asyncio.run(main())


CLIENTS: dict[str, Callable[[str], dict[str, Any]]] = {
    "httpx2": post_httpx2,
    "httpx": post_httpx,
    "requests": post_requests,
    "aiohttp": post_aiohttp,
}


def llm_span_of(sink: OtlpHttpBackend, trace_id: str) -> ReceivedSpan:
    def found(spans: list[ReceivedSpan]) -> bool:
        return any(s.trace_id == trace_id and GEN_AI_OPERATION_NAME in s.attributes for s in spans)

    spans = sink.wait_for(found)
    (span,) = [s for s in spans if s.trace_id == trace_id and GEN_AI_OPERATION_NAME in s.attributes]
    return span


def tags_of(span: ReceivedSpan) -> dict[str, Any]:
    return {k: span.attributes[k] for k in DEFAULT_TAG_KEYS if k in span.attributes}


@pytest.fixture
def clients(pipeline: Pipeline) -> Pipeline:
    pipeline.instrument(HTTPXClientInstrumentor())
    pipeline.instrument(RequestsInstrumentor())
    pipeline.instrument(AioHttpClientInstrumentor())
    return pipeline


def call_downstream(
    pipeline: Pipeline, client: str, url: str, **tags: str
) -> tuple[str, dict[str, Any]]:
    tracer = pipeline.provider.get_tracer("caller")
    with spanledger.tags(**tags), tracer.start_as_current_span("caller") as root:
        seen = CLIENTS[client](f"{url}/ask")
    return format(root.get_span_context().trace_id, "032x"), seen


@pytest.mark.parametrize("client", CLIENTS)
def test_downstream_llm_span_carries_the_callers_tags_and_trace(
    clients: Pipeline, client: str, service: str, module_sink: OtlpHttpBackend, llm: Any
) -> None:
    sent_before = len(llm.requests)
    tags = {"customer": f"acme-{client}", "feature": "hop", "team": "platform"}
    trace_id, seen = call_downstream(clients, client, service, **tags)

    assert seen["trace_id"] == trace_id
    assert seen["current_tags"] == tags
    span = llm_span_of(module_sink, trace_id)
    assert span.service == "downstream"
    assert tags_of(span) == tags
    # The downstream's request to the LLM carried the trace, never the baggage.
    (request,) = llm.requests[sent_before:]
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert "baggage" not in headers
    assert headers["traceparent"].split("-")[1] == trace_id


@pytest.mark.slow
def test_trust_boundary_drops_inbound_tags_and_revalidates(
    clients: Pipeline, llm: Any, otlp_sink: OtlpHttpBackend
) -> None:
    with downstream(
        llm, otlp_sink, SPANLEDGER_INBOUND_TAGS="drop", REVALIDATE_CUSTOMERS="acme"
    ) as url:
        trusted_trace, trusted = call_downstream(
            clients, "httpx2", url, customer="acme", feature="hop"
        )
        spoofed_trace, spoofed = call_downstream(
            clients, "requests", url, customer="victim", feature="hop"
        )

    # Both claims are visible to the service; only the re-validated customer is applied.
    assert trusted["inbound_tags"] == {"customer": "acme", "feature": "hop"}
    assert trusted["current_tags"] == {"customer": "acme"}
    assert spoofed["inbound_tags"] == {"customer": "victim", "feature": "hop"}
    assert spoofed["current_tags"] == {}
    assert tags_of(llm_span_of(otlp_sink, trusted_trace)) == {"customer": "acme"}
    assert tags_of(llm_span_of(otlp_sink, spoofed_trace)) == {}
    # The trace itself still crosses the boundary.
    assert trusted["trace_id"] == trusted_trace
