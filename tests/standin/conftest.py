"""Real SDK clients pointed at the session's stand-in, retries off (async tests build their own)."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import openai
import pytest

from spanledger.standin import StandIn


@pytest.fixture
def oai(llm: StandIn) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=llm.openai_base_url, api_key="test", max_retries=0) as client:
        yield client


@pytest.fixture
def claude(llm: StandIn) -> Iterator[anthropic.Anthropic]:
    client = anthropic.Anthropic(base_url=llm.anthropic_base_url, api_key="test", max_retries=0)
    with client:
        yield client
