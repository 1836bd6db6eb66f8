"""Zero code: ``opentelemetry-instrument`` loads ``spanledger_cohere`` from its entry point, and
the app's calls reach the real processor counted once, tagged, with no baggage sent to Cohere."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest
from provider_support import assert_untraced, counted_calls, run_instrumented_app

from spanledger import semconv
from spanledger.instrumentation.cohere import CohereInstrumentor

pytestmark = pytest.mark.slow

APP = """
import asyncio
import cohere
import spanledger

client = cohere.ClientV2(api_key="test-key", base_url=%(url)r)
messages = [{"role": "user", "content": "hello"}]


async def embed():
    aclient = cohere.AsyncClientV2(api_key="test-key", base_url=%(url)r)
    await aclient.embed(
        model="embed-v4.0", input_type="search_query", texts=["a", "b"], embedding_types=["float"]
    )


with spanledger.tags(customer="acme"):
    reply = client.chat(model="command-a-03-2025", messages=messages)
    events = list(client.chat_stream(model="command-a-03-2025", messages=messages))
    asyncio.run(embed())
    client.rerank(model="rerank-v3.5", query="q", documents=["a", "b"])
print(int(reply.usage.billed_units.input_tokens), len(events))
"""


def test_the_entry_point_names_the_instrumentor():
    (entry,) = [
        entry
        for entry in entry_points(group="opentelemetry_instrumentor")
        if entry.name == "spanledger_cohere"
    ]
    assert entry.load() is CohereInstrumentor
    assert CohereInstrumentor().instrumentation_dependencies() == ("cohere >= 5.16.0, < 8",)


def test_every_call_is_counted_once_with_its_tags_and_no_baggage_leaves(tmp_path, llm, priced):
    app = APP % {"url": llm.url}

    printed = run_instrumented_app(tmp_path, app, priced, instrumentations=["spanledger_cohere"])

    assert printed.split()[0] == "2"
    calls = counted_calls(priced, 4)
    assert sorted((call.usage.operation, call.cost.status) for call in calls) == [
        ("chat", semconv.STATUS_PRICED),
        ("chat", semconv.STATUS_PRICED),
        ("embeddings", semconv.STATUS_PRICED),
        ("rerank", semconv.STATUS_UNPRICED),
    ]
    assert {call.tags["customer"] for call in calls} == {"acme"}
    for request in llm.requests:
        assert request.headers["traceparent"].startswith("00-")
        assert "baggage" not in request.headers


def test_disabled_it_leaves_the_calls_untraced(tmp_path, llm, priced):
    run_instrumented_app(tmp_path, APP % {"url": llm.url}, priced)

    assert len(llm.requests) == 4
    assert_untraced(priced, 4)
