"""Ollama's native chat, generate and embed wire (JSON and NDJSON), through the real ``ollama``
client and as raw lines."""

from __future__ import annotations

import json
import urllib.request

import ollama
import pytest

from spanledger.standin import DEFAULT_TEXT, Scenario, StandIn, estimate_tokens
from spanledger.standin.ollama_wire import EVAL_NS_PER_TOKEN, PROMPT_EVAL_NS_PER_TOKEN

MESSAGES = [{"role": "user", "content": "Summarise the report."}]
PROMPT_TOKENS = estimate_tokens("Summarise the report.")


@pytest.fixture
def client(llm: StandIn) -> ollama.Client:
    return ollama.Client(host=llm.url)


def test_chat_json_with_counts_and_durations(client: ollama.Client, llm: StandIn) -> None:
    reply = client.chat(model="llama3.2", messages=MESSAGES)

    assert (reply.model, reply.done, reply.done_reason) == ("llama3.2", True, "stop")
    assert reply.message.content == DEFAULT_TEXT
    assert (reply.prompt_eval_count, reply.eval_count) == (PROMPT_TOKENS, 9)
    assert reply.prompt_eval_duration == PROMPT_TOKENS * PROMPT_EVAL_NS_PER_TOKEN
    assert reply.eval_duration == 9 * EVAL_NS_PER_TOKEN
    request = llm.requests[0]
    assert (request.path, request.json["stream"]) == ("/api/chat", False)
    assert request.headers["user-agent"].startswith("ollama-python/")


def post_lines(llm: StandIn, path: str, body: dict) -> tuple[str, list[dict]]:
    """The content type and the JSON lines of a raw request to the stand-in."""
    data = json.dumps(body).encode()
    request = urllib.request.Request(f"{llm.url}{path}", data=data, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        content_type = response.headers["content-type"]
        return content_type, [json.loads(line) for line in response.read().splitlines()]


def test_a_request_streams_unless_it_says_not_to(llm: StandIn) -> None:
    content_type, lines = post_lines(llm, "/api/generate", {"model": "llama3.2", "prompt": "Why?"})

    assert content_type == "application/x-ndjson"
    assert [line["done"] for line in lines] == [False] * 4 + [True]
    assert "".join(line["response"] for line in lines) == DEFAULT_TEXT
    assert (lines[-1]["prompt_eval_count"], lines[-1]["eval_count"]) == (1, 9)
    assert "eval_count" not in lines[0]


def test_thinking_and_tool_calls(client: ollama.Client, llm: StandIn) -> None:
    call = {"name": "add", "arguments": {"a": 1, "b": 2}}
    llm.push(Scenario(reasoning=5, tool_calls=[call]), Scenario(tool_calls=[call]))
    _, lines = post_lines(llm, "/api/chat", {"model": "qwen3", "messages": MESSAGES, "think": True})
    parts = list(client.chat(model="qwen3", messages=MESSAGES, stream=True))

    assert lines[-1]["message"]["thinking"] == "Hmm." * 5
    assert lines[-1]["eval_count"] == 5 + estimate_tokens("add" + json.dumps(call["arguments"]))
    (tool_call,) = parts[-1].message.tool_calls
    assert (tool_call.function.name, tool_call.function.arguments) == ("add", {"a": 1, "b": 2})


def test_embed_counts_the_inputs(client: ollama.Client) -> None:
    reply = client.embed(model="all-minilm", input=["one", "two three"])

    assert [len(vector) for vector in reply.embeddings] == [8, 8]
    assert reply.prompt_eval_count == estimate_tokens("one") + estimate_tokens("two three")


def test_errors_in_a_reply_and_in_a_stream(client: ollama.Client, llm: StandIn) -> None:
    llm.push(Scenario(error=404), Scenario(stream_error_after=1, error_message="out of memory"))
    with pytest.raises(ollama.ResponseError) as refused:
        client.chat(model="missing", messages=MESSAGES)
    with pytest.raises(ollama.ResponseError) as broken:
        list(client.chat(model="llama3.2", messages=MESSAGES, stream=True))

    assert refused.value.status_code == 404
    assert "not found" in refused.value.error
    assert broken.value.error == "out of memory"
