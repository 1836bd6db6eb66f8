"""Zero code: ``opentelemetry-instrument`` loads ``spanledger_ollama`` from its entry point, and
the app's calls reach the real processor counted once (unpriced: self-hosted), tagged, with no
baggage sent to the Ollama server, though it is on a local address baggage may go to."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest
from provider_support import assert_untraced, counted_calls, run_instrumented_app

from spanledger import semconv
from spanledger.instrumentation.ollama import OllamaInstrumentor

pytestmark = pytest.mark.slow

APP = """
import asyncio
import ollama
import spanledger

messages = [{"role": "user", "content": "hello"}]


async def embed():
    await ollama.AsyncClient().embed(model="all-minilm", input=["a", "b"])


with spanledger.tags(customer="acme"):
    reply = ollama.chat(model="llama3.2", messages=messages)
    parts = list(ollama.Client().generate(model="llama3.2", prompt="hi", stream=True))
    asyncio.run(embed())
print(reply.prompt_eval_count, len(parts))
"""


def test_the_entry_point_names_the_instrumentor():
    (entry,) = [
        entry
        for entry in entry_points(group="opentelemetry_instrumentor")
        if entry.name == "spanledger_ollama"
    ]
    assert entry.load() is OllamaInstrumentor
    assert OllamaInstrumentor().instrumentation_dependencies() == ("ollama >= 0.4.0, < 1",)


def test_every_call_is_counted_once_with_its_tags_and_no_baggage_leaves(tmp_path, llm, priced):
    printed = run_instrumented_app(
        tmp_path,
        APP,
        priced,
        instrumentations=["spanledger_ollama"],
        env={"OLLAMA_HOST": llm.url},
    )

    assert printed.split()[0] == "2"
    calls = counted_calls(priced, 3)
    assert sorted(call.usage.operation for call in calls) == [
        "chat",
        "embeddings",
        "text_completion",
    ]
    assert {call.cost.status for call in calls} == {semconv.STATUS_UNPRICED}
    assert {call.tags["customer"] for call in calls} == {"acme"}
    for request in llm.requests:
        assert request.headers["traceparent"].startswith("00-")
        assert "baggage" not in request.headers


def test_disabled_it_leaves_the_calls_untraced(tmp_path, llm, priced):
    run_instrumented_app(tmp_path, APP, priced, env={"OLLAMA_HOST": llm.url})

    assert len(llm.requests) == 3
    assert_untraced(priced, 3)
