"""Zero code: ``opentelemetry-instrument`` loads ``spanledger_mistral`` from its entry point, and
the app's calls reach the real processor counted once, tagged, with no baggage sent to Mistral."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest
from mistral_support import cached
from provider_support import assert_untraced, counted_calls, forwarded_spans, run_instrumented_app

from spanledger import semconv
from spanledger.instrumentation.mistral import MistralInstrumentor
from spanledger.standin import Scenario

pytestmark = pytest.mark.slow

APP = """
import asyncio
import spanledger

try:
    from mistralai.client import Mistral
except ImportError:
    from mistralai import Mistral

client = Mistral(api_key="test-key", server_url=%(url)r)
messages = [{"role": "user", "content": "hello"}]
with spanledger.tags(customer="acme"):
    reply = client.chat.complete(model="mistral-small-2603", messages=messages)
    chunks = list(client.chat.stream(model="mistral-small-2603", messages=messages))
    asyncio.run(client.embeddings.create_async(model="mistral-embed", inputs=["a", "b"]))
print(reply.usage.prompt_tokens, len(chunks))
"""


def test_the_entry_point_names_the_instrumentor():
    (entry,) = [
        entry
        for entry in entry_points(group="opentelemetry_instrumentor")
        if entry.name == "spanledger_mistral"
    ]
    assert entry.load() is MistralInstrumentor
    assert MistralInstrumentor().instrumentation_dependencies() == ("mistralai >= 1.2.0, < 4",)


def run_app(tmp_path, llm, priced, **env: str) -> str:
    app = APP % {"url": llm.mistral_base_url}
    return run_instrumented_app(
        tmp_path, app, priced, instrumentations=["spanledger_mistral"], env=env
    )


def test_every_call_is_counted_once_with_its_tags_and_no_baggage_leaves(tmp_path, llm, priced):
    llm.push(
        Scenario(usage={"prompt_tokens": 1_500, "prompt_tokens_details": {"cached_tokens": 1_024}})
    )

    printed = run_app(tmp_path, llm, priced)

    assert printed.split()[0] == "1500"
    calls = counted_calls(priced, 3)
    assert sorted((call.usage.operation, call.usage.request_model) for call in calls) == [
        ("chat", "mistral-small-2603"),
        ("chat", "mistral-small-2603"),
        ("embeddings", "mistral-embed"),
    ]
    assert {call.tags["customer"] for call in calls} == {"acme"}
    assert all(call.cost.status == semconv.STATUS_PRICED for call in calls)
    cache_reads = sorted(call.usage.cache_read_tokens for call in calls)
    assert cache_reads == [0, 0, cached(1_024) or 0]
    for request in llm.requests:
        assert request.headers["traceparent"].startswith("00-")
        assert "baggage" not in request.headers


def test_the_sdks_own_span_is_off_for_the_calls_traced(tmp_path, llm, priced):
    """``MISTRAL_SDK_TELEMETRY=global`` turns mistralai's own tracing on; it would add a second
    inference span inside ours, with the messages in it."""
    run_app(tmp_path, llm, priced, MISTRAL_SDK_TELEMETRY="global")

    calls = counted_calls(priced, 3)
    assert len(calls) == 3
    inference = [
        (scope, attributes)
        for scope, _, attributes in forwarded_spans(priced)
        if semconv.GEN_AI_OPERATION_NAME in attributes
    ]
    assert [scope for scope, _ in inference] == ["spanledger.instrumentation.mistral"] * 3
    for _, attributes in inference:
        assert attributes[semconv.COST_STATUS] == semconv.STATUS_PRICED
        assert "gen_ai.input.messages" not in attributes
    for request in llm.requests:
        assert "baggage" not in request.headers


def test_disabled_it_leaves_the_calls_untraced(tmp_path, llm, priced):
    run_instrumented_app(tmp_path, APP % {"url": llm.mistral_base_url}, priced)

    assert len(llm.requests) == 3
    assert_untraced(priced, 3)
