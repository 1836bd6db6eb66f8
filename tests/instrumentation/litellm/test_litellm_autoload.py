"""Zero code: ``opentelemetry-instrument`` loads ``spanledger_litellm`` from its entry point
beside ``spanledger_openai``, and each call the app makes through LiteLLM reaches the real
processor counted once, tagged, with no baggage sent to the providers."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest
from provider_support import assert_untraced, counted_calls, run_instrumented_app

from spanledger import semconv
from spanledger.instrumentation.litellm import LiteLLMInstrumentor

pytestmark = pytest.mark.slow

APP = """
import asyncio
import litellm
import spanledger

messages = [{"role": "user", "content": "hello"}]
openai_route = {"model": "openai/gpt-4o-mini", "api_base": %(openai)r, "api_key": "test-key"}
anthropic_route = {
    "model": "anthropic/claude-haiku-4-5", "api_base": %(anthropic)r, "api_key": "test-key",
    "max_tokens": 64,
}


async def stream():
    chunks = await litellm.acompletion(messages=messages, stream=True, **anthropic_route)
    return [chunk async for chunk in chunks]


with spanledger.tags(customer="acme"):
    reply = litellm.completion(messages=messages, **openai_route)
    chunks = asyncio.run(stream())
    litellm.embedding(input=["a", "b"], model="ollama/all-minilm", api_base=%(ollama)r)
print(reply.usage.prompt_tokens, len(chunks))
"""

ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True"}


def app(llm) -> str:
    return APP % {
        "openai": llm.openai_base_url,
        "anthropic": llm.anthropic_base_url,
        "ollama": llm.url,
    }


def test_the_entry_point_names_the_instrumentor():
    (entry,) = [
        entry
        for entry in entry_points(group="opentelemetry_instrumentor")
        if entry.name == "spanledger_litellm"
    ]
    assert entry.load() is LiteLLMInstrumentor
    assert LiteLLMInstrumentor().instrumentation_dependencies() == ("litellm >= 1.108.0, < 2",)


def test_every_call_is_counted_once_with_its_tags_and_no_baggage_leaves(tmp_path, llm, priced):
    printed = run_instrumented_app(
        tmp_path,
        app(llm),
        priced,
        instrumentations=["spanledger_litellm", "spanledger_openai", "aiohttp-client"],
        env=ENV,
    )

    assert printed.split() == ["2", "5"]
    calls = counted_calls(priced, 3)
    assert sorted(
        (call.usage.provider, call.usage.operation, call.cost.status) for call in calls
    ) == [
        ("anthropic", "chat", semconv.STATUS_PRICED),
        ("ollama", "embeddings", semconv.STATUS_UNPRICED),
        ("openai", "chat", semconv.STATUS_PRICED),
    ]
    assert {call.tags["customer"] for call in calls} == {"acme"}
    for request in llm.requests:
        assert request.headers["traceparent"].startswith("00-")
        assert "baggage" not in request.headers


def test_disabled_it_leaves_the_calls_untraced(tmp_path, llm, priced):
    run_instrumented_app(tmp_path, app(llm), priced, instrumentations=["aiohttp-client"], env=ENV)

    assert len(llm.requests) == 3
    assert_untraced(priced, 3)


def test_an_app_that_does_not_use_litellm_does_not_import_it(tmp_path, priced):
    app = "import sys\nprint('litellm' in sys.modules)\n"

    printed = run_instrumented_app(
        tmp_path, app, priced, instrumentations=["spanledger_litellm"], env=ENV
    )

    assert printed.split() == ["False"]
