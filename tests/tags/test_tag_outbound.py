"""Baggage leaves the process only for allow-listed hosts, and never with an LLM SDK request.

Each HTTP client is instrumented with its contrib instrumentation (which injects ``traceparent``
and ``baggage``) and sends to a local server that records the headers it receives.
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Callable

import aiohttp
import httpx
import httpx2
import pytest
import requests
import urllib3
from opentelemetry import propagate
from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.instrumentation.urllib import URLLibInstrumentor
from opentelemetry.instrumentation.urllib3 import URLLib3Instrumentor
from tag_pipeline import Echo, Pipeline

import spanledger
from spanledger.instrumentation.baggage.instrumentor import TagsInstrumentor
from spanledger.instrumentation.baggage.propagator import GuardedPropagator

ALLOWED = {"SPANLEDGER_BAGGAGE_HOSTS": "127.0.0.1"}
REFUSED = {"SPANLEDGER_BAGGAGE_HOSTS": "billing.internal,*.corp.example"}


def send_httpx2(url: str, headers: dict[str, str]) -> None:
    with httpx2.Client() as client:
        client.post(url, headers=headers, content=b"x").raise_for_status()


def send_httpx2_async(url: str, headers: dict[str, str]) -> None:
    async def main() -> None:
        async with httpx2.AsyncClient() as client:
            (await client.post(url, headers=headers, content=b"x")).raise_for_status()

    asyncio.run(main())


def send_httpx(url: str, headers: dict[str, str]) -> None:
    with httpx.Client() as client:
        client.post(url, headers=headers, content=b"x").raise_for_status()


def send_httpx_async(url: str, headers: dict[str, str]) -> None:
    async def main() -> None:
        async with httpx.AsyncClient() as client:
            (await client.post(url, headers=headers, content=b"x")).raise_for_status()

    asyncio.run(main())


def send_requests(url: str, headers: dict[str, str]) -> None:
    with requests.Session() as session:
        session.post(url, headers=headers, data=b"x", timeout=10).raise_for_status()


def send_aiohttp(url: str, headers: dict[str, str]) -> None:
    async def main() -> None:
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, headers=headers, data=b"x") as response,
        ):
            response.raise_for_status()

    asyncio.run(main())


def send_urllib3(url: str, headers: dict[str, str]) -> None:
    with urllib3.PoolManager() as pool:
        assert pool.request("POST", url, headers=headers, body=b"x").status == 200


def send_urllib(url: str, headers: dict[str, str]) -> None:
    request = urllib.request.Request(url, data=b"x", headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


CLIENTS: dict[str, Callable[[str, dict[str, str]], None]] = {
    "httpx2": send_httpx2,
    "httpx2-async": send_httpx2_async,
    "httpx": send_httpx,
    "httpx-async": send_httpx_async,
    "requests": send_requests,
    "aiohttp": send_aiohttp,
    "urllib3": send_urllib3,
    "urllib": send_urllib,
}


@pytest.fixture
def clients(pipeline: Pipeline) -> Pipeline:
    """Adds the contrib instrumentation of the other HTTP clients to the pipeline."""
    pipeline.instrument(HTTPXClientInstrumentor())
    pipeline.instrument(RequestsInstrumentor())
    pipeline.instrument(AioHttpClientInstrumentor())
    pipeline.instrument(URLLib3Instrumentor())
    pipeline.instrument(URLLibInstrumentor())
    return pipeline


@pytest.mark.parametrize("pipeline", [ALLOWED], indirect=True)
@pytest.mark.parametrize("client", CLIENTS)
def test_allowed_host_receives_baggage_and_trace(
    clients: Pipeline, echo: Echo, client: str
) -> None:
    with spanledger.tags(customer="acme", feature="search"):
        CLIENTS[client](echo.url, {})
    (headers,) = echo.headers
    assert headers["baggage"] == "customer=acme,feature=search"
    assert headers["traceparent"].startswith("00-")


@pytest.mark.parametrize("pipeline", [REFUSED], indirect=True)
@pytest.mark.parametrize("client", CLIENTS)
def test_other_host_receives_trace_but_no_baggage(
    clients: Pipeline, echo: Echo, client: str
) -> None:
    with spanledger.tags(customer="acme", feature="search"):
        CLIENTS[client](echo.url, {})
    (headers,) = echo.headers
    assert "baggage" not in headers
    assert headers["traceparent"].startswith("00-")


@pytest.mark.parametrize("pipeline", [REFUSED], indirect=True)
@pytest.mark.parametrize("client", CLIENTS)
def test_baggage_header_set_before_sending_is_removed(
    clients: Pipeline, echo: Echo, client: str
) -> None:
    # The anthropic SDK writes its trace headers, baggage included, before it sends.
    CLIENTS[client](echo.url, {"baggage": "customer=acme"})
    (headers,) = echo.headers
    assert "baggage" not in headers


LLM_SDK_HEADERS = {
    "openai-anthropic": {"X-Stainless-Lang": "python"},
    "mistralai": {"User-Agent": "mistral-client-python/3.7.0"},
    "cohere": {"User-Agent": "cohere/7.3.1"},
    "cohere-5": {"X-Fern-SDK-Name": "cohere"},
    "ollama": {"User-Agent": "ollama-python/0.6.3 (x86_64 linux) Python/3.11.2"},
    "litellm": {"User-Agent": "litellm/1.110.2"},
}
"""How each LLM SDK marks its requests."""


@pytest.mark.parametrize("pipeline", [{"SPANLEDGER_BAGGAGE_HOSTS": "*"}], indirect=True)
@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("sdk", LLM_SDK_HEADERS)
def test_llm_sdk_request_never_carries_baggage(
    clients: Pipeline, echo: Echo, client: str, sdk: str
) -> None:
    with spanledger.tags(customer="acme"):
        CLIENTS[client](echo.url, LLM_SDK_HEADERS[sdk])
        CLIENTS[client](echo.url, {})
    sdk_request, plain_request = echo.headers
    assert "baggage" not in sdk_request
    assert sdk_request["traceparent"].startswith("00-")
    assert plain_request["baggage"] == "customer=acme"


def test_uninstrument_restores_propagator_clients_and_spans(pipeline: Pipeline, echo: Echo) -> None:
    tags_instrumentor = TagsInstrumentor()
    guarded = propagate.get_global_textmap()
    assert isinstance(guarded, GuardedPropagator)
    tracer = pipeline.provider.get_tracer("test")

    tags_instrumentor.uninstrument()
    assert propagate.get_global_textmap() is guarded.inner
    assert not hasattr(httpx2.Client._send_single_request, "__wrapped__")
    assert not hasattr(requests.Session.send, "__wrapped__")
    with spanledger.tags(customer="acme"):
        tracer.start_span("after uninstrument").end()
        send_httpx2(echo.url, {"X-Stainless-Lang": "python"})
    assert pipeline.tags_of(pipeline.spans()[-1]) == {}
    assert echo.headers[-1]["baggage"] == "customer=acme"

    tags_instrumentor.instrument(tracer_provider=pipeline.provider, config=pipeline.config)
    with spanledger.tags(customer="acme"):
        tracer.start_span("after instrument").end()
    assert [pipeline.tags_of(s) for s in pipeline.spans() if s.name == "after instrument"] == [
        {"customer": "acme"}
    ]
    assert len(pipeline.provider._active_span_processor._span_processors) == 2
