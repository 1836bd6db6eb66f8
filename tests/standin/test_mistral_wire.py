"""Mistral's chat, fill-in-the-middle and embeddings wire, through the real ``mistralai`` client."""

from __future__ import annotations

import json

import pytest

from spanledger.standin import DEFAULT_TEXT, Scenario, StandIn, estimate_tokens

try:  # mistralai 2.x and later
    from mistralai.client import Mistral
except ImportError:  # mistralai 1.x
    from mistralai import Mistral

MESSAGES = [{"role": "user", "content": "Summarise the report."}]
PROMPT_TOKENS = estimate_tokens("Summarise the report.")


@pytest.fixture
def mistral(llm: StandIn) -> Mistral:
    return Mistral(api_key="test", server_url=llm.mistral_base_url)


def test_chat_json_with_default_figures(mistral: Mistral, llm: StandIn) -> None:
    reply = mistral.chat.complete(model="mistral-small-latest", messages=MESSAGES)

    assert reply.model == "mistral-small-latest"
    assert reply.choices[0].message.content == DEFAULT_TEXT
    assert reply.choices[0].finish_reason == "stop"
    usage = reply.usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (PROMPT_TOKENS, 9)
    assert usage.total_tokens == PROMPT_TOKENS + 9
    request = llm.requests[0]
    assert request.path == "/mistral/v1/chat/completions"
    assert request.headers["user-agent"].startswith("mistral-client-python/")
    assert request.headers["authorization"] == "Bearer test"


def test_cached_tokens_and_tool_calls(mistral: Mistral, llm: StandIn) -> None:
    llm.push(
        Scenario(
            usage={"prompt_tokens": 1_200, "prompt_tokens_details": {"cached_tokens": 1_000}},
            tool_calls=[{"name": "lookup", "arguments": {"city": "Paris"}}],
        )
    )
    reply = mistral.chat.complete(model="mistral-large-latest", messages=MESSAGES)

    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert (call.function.name, json.loads(call.function.arguments)) == (
        "lookup",
        {"city": "Paris"},
    )
    assert reply.usage.prompt_tokens == 1_200
    if type(reply.usage).model_config.get("extra") == "allow":  # mistralai 1.9 and later
        assert reply.usage.model_dump()["prompt_tokens_details"] == {"cached_tokens": 1_000}
    assert reply.usage.total_tokens == 1_200 + reply.usage.completion_tokens


def test_a_stream_ends_with_the_finish_reason_and_usage(mistral: Mistral, llm: StandIn) -> None:
    llm.push(Scenario(chunks=5))
    chunks = [event.data for event in mistral.chat.stream(model="m", messages=MESSAGES)]

    assert "".join(chunk.choices[0].delta.content for chunk in chunks) == DEFAULT_TEXT
    assert [chunk.choices[0].finish_reason for chunk in chunks][-2:] == [None, "stop"]
    assert [chunk.usage is not None for chunk in chunks] == [False] * 5 + [True]
    assert chunks[-1].usage.prompt_tokens == PROMPT_TOKENS
    assert len({chunk.id for chunk in chunks}) == 1


def test_fill_in_the_middle_counts_prompt_and_suffix(mistral: Mistral, llm: StandIn) -> None:
    reply = mistral.fim.complete(model="codestral-latest", prompt="def f(x):", suffix="return y")

    assert reply.usage.prompt_tokens == estimate_tokens("def f(x):return y")
    assert reply.choices[0].message.content == DEFAULT_TEXT
    assert llm.requests[0].path == "/mistral/v1/fim/completions"


def test_embeddings_one_vector_per_input(mistral: Mistral, llm: StandIn) -> None:
    reply = mistral.embeddings.create(model="mistral-embed", inputs=["one", "two three"])

    assert [len(item.embedding) for item in reply.data] == [8, 8]
    assert reply.data[0].embedding != reply.data[1].embedding
    assert reply.usage.prompt_tokens == estimate_tokens("one") + estimate_tokens("two three")
    assert llm.requests[0].json["input"] == ["one", "two three"]


def test_errors_have_mistrals_body(mistral: Mistral, llm: StandIn) -> None:
    llm.push(Scenario(error=429, retry_after=2))
    with pytest.raises(Exception) as raised:  # SDKError moved between versions
        mistral.chat.complete(model="m", messages=MESSAGES)

    body = json.loads(raised.value.body)
    assert (body["object"], body["type"], body["code"]) == ("error", "rate_limited", "429")
    assert raised.value.raw_response.headers["retry-after"] == "2"
