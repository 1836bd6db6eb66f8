"""Cohere's v2 chat, embed and rerank wire, through the real ``cohere`` client."""

from __future__ import annotations

import json

import cohere
import pytest

from spanledger.standin import DEFAULT_TEXT, Scenario, StandIn, estimate_tokens
from spanledger.standin.cohere_wire import PROMPT_TEMPLATE_TOKENS

MESSAGES = [{"role": "user", "content": "Summarise the report."}]
PROMPT_TOKENS = estimate_tokens("Summarise the report.")


@pytest.fixture
def co(llm: StandIn) -> cohere.ClientV2:
    return cohere.ClientV2(api_key="test", base_url=llm.url)


def test_chat_json_with_billed_and_processed_tokens(co: cohere.ClientV2, llm: StandIn) -> None:
    reply = co.chat(model="command-a-03-2025", messages=MESSAGES)

    assert reply.finish_reason == "COMPLETE"
    assert reply.message.content[0].text == DEFAULT_TEXT
    billed, processed = reply.usage.billed_units, reply.usage.tokens
    assert (billed.input_tokens, billed.output_tokens) == (PROMPT_TOKENS, 9)
    assert (processed.input_tokens, processed.output_tokens) == (
        PROMPT_TOKENS + PROMPT_TEMPLATE_TOKENS,
        9,
    )
    request = llm.requests[0]
    assert (request.path, request.json["stream"]) == ("/v2/chat", False)
    assert request.headers["x-fern-sdk-name"] == "cohere"


def test_a_stream_is_cohere_event_types_ending_in_usage(co: cohere.ClientV2, llm: StandIn) -> None:
    llm.push(Scenario(chunks=3, usage={"cached_tokens": 40}))
    events = list(co.chat_stream(model="command-a-03-2025", messages=MESSAGES))

    assert [event.type for event in events] == [
        "message-start",
        "content-start",
        "content-delta",
        "content-delta",
        "content-delta",
        "content-end",
        "message-end",
    ]
    assert "".join(e.delta.message.content.text for e in events[2:5]) == DEFAULT_TEXT
    end = events[-1].delta
    assert end.finish_reason == "COMPLETE"
    assert (end.usage.billed_units.input_tokens, end.usage.cached_tokens) == (PROMPT_TOKENS, 40)


def test_tool_calls_in_json_and_in_a_stream(co: cohere.ClientV2, llm: StandIn) -> None:
    call = {"name": "lookup", "arguments": {"city": "Paris"}}
    llm.push(Scenario(tool_calls=[call]), Scenario(tool_calls=[call]))
    reply = co.chat(model="command-a-03-2025", messages=MESSAGES)
    events = list(co.chat_stream(model="command-a-03-2025", messages=MESSAGES))

    assert reply.finish_reason == "TOOL_CALL"
    (tool_call,) = reply.message.tool_calls
    assert json.loads(tool_call.function.arguments) == {"city": "Paris"}
    kinds = [event.type for event in events]
    assert kinds[1:5] == ["tool-plan-delta", "tool-call-start", "tool-call-delta", "tool-call-end"]
    assert events[-1].delta.finish_reason == "TOOL_CALL"


def test_embed_bills_input_tokens_per_text(co: cohere.ClientV2) -> None:
    reply = co.embed(
        model="embed-v4.0",
        input_type="search_document",
        texts=["one", "two three"],
        embedding_types=["float", "int8"],
    )

    assert reply.meta.billed_units.input_tokens == estimate_tokens("one") + estimate_tokens(
        "two three"
    )
    assert [len(vector) for vector in reply.embeddings.float_] == [8, 8]
    assert all(isinstance(value, int) for value in reply.embeddings.int8[0])


def test_rerank_ranks_every_document_and_bills_search_units(co: cohere.ClientV2) -> None:
    documents = [f"document {index}" for index in range(101)]
    reply = co.rerank(model="rerank-v3.5", query="which one", documents=documents, top_n=3)

    scores = [result.relevance_score for result in reply.results]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True)
    assert reply.meta.billed_units.search_units == 2


def test_errors_have_coheres_body(co: cohere.ClientV2, llm: StandIn) -> None:
    llm.push(Scenario(error=429))
    with pytest.raises(cohere.TooManyRequestsError) as raised:
        co.chat(model="m", messages=MESSAGES, request_options={"max_retries": 0})

    body = raised.value.body
    message = body["message"] if isinstance(body, dict) else body.message  # cohere 5.x: a model
    assert message == "You are past the rate limit for this API key."
