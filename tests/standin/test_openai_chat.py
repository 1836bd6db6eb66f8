"""OpenAI chat completions through the real ``openai`` client: JSON and streamed."""

from __future__ import annotations

import openai

from spanledger.standin import DEFAULT_TEXT, StandIn, estimate_tokens

MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": [{"type": "text", "text": "Summarise the report."}]},
]
PROMPT_TOKENS = estimate_tokens("Be brief." + "Summarise the report.")


def test_json_reply_echoes_model_and_counts_tokens(oai: openai.OpenAI, llm: StandIn) -> None:
    reply = oai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert reply.model == "gpt-4o-mini"
    assert reply.choices[0].message.content == DEFAULT_TEXT
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == PROMPT_TOKENS == 8
    assert reply.usage.completion_tokens == estimate_tokens(DEFAULT_TEXT) == 9
    assert reply.usage.total_tokens == 17
    assert [r.path for r in llm.requests] == ["/v1/chat/completions"]
    assert llm.requests[0].json["messages"] == MESSAGES
