"""The demo's agent: three customers use three features, each fanning out its LLM calls.

Run under ``opentelemetry-instrument`` with ``OPENAI_BASE_URL``, ``ANTHROPIC_BASE_URL``,
``GOOGLE_GEMINI_BASE_URL`` and ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME`` pointing at the stand-in and
``SPANLEDGER_DEMO_TRIAGE_URL`` at the triage sub-service. Each feature run
is one trace; the LLM spans inside it carry the customer and feature tags however the work
fans out (threads, asyncio tasks, an HTTP hop to another service).
"""

from __future__ import annotations

import asyncio
import json
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anthropic
import boto3
import httpx2
import openai
from google import genai
from opentelemetry import trace

import spanledger

CUSTOMERS = ("acme", "globex", "initech")
FEATURES = ("summarizer", "search", "support")
TEAM_OF = {"summarizer": "content", "search": "discovery", "support": "cx"}
CHAT_MODEL = "gpt-4o-mini"
REASONING_MODEL = "o3-mini"
EMBEDDING_MODEL = "text-embedding-3-small"
CLAUDE_MODEL = "claude-sonnet-4-6"
GEMINI_MODEL = "gemini-2.5-flash"
BEDROCK_MODEL = "us.amazon.nova-lite-v1:0"
IN_HOUSE_MODEL = "acme-support-ft-2"
"""A fine-tune that is not in the public price table: priced by demo overrides."""

tracer = trace.get_tracer("spanledger.demo")


def scenario(**fields: object) -> dict[str, str]:
    """Per-request instructions for the stand-in (usage figures, chunks, thinking)."""
    return {"x-standin-scenario": json.dumps(fields)}


def summarizer(client: openai.OpenAI, document: list[str]) -> str:
    """Summarise chunks in parallel threads, then stream one combined summary."""
    with ThreadPoolExecutor(max_workers=3) as pool:
        parts = list(
            pool.map(
                lambda chunk: (
                    client.chat.completions.create(
                        model=CHAT_MODEL,
                        messages=[{"role": "user", "content": f"Summarise: {chunk}"}],
                        extra_headers=scenario(
                            usage={
                                "prompt_tokens": 1800,
                                "completion_tokens": 220,
                                "prompt_tokens_details": {"cached_tokens": 1024},
                            }
                        ),
                    )
                    .choices[0]
                    .message.content
                    or ""
                ),
                document,
            )
        )
    stream = client.chat.completions.create(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": "Combine: " + " ".join(parts)}],
        stream=True,
        extra_headers=scenario(chunks=12),
    )
    return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


async def search(query: str) -> str:
    """Embed the query, reason about it and ask Gemini for related searches in concurrent asyncio
    tasks, then rerank with Claude."""
    gemini = genai.Client()
    async with openai.AsyncOpenAI() as client, anthropic.AsyncAnthropic() as claude:
        return await _search(client, claude, gemini, query)


async def _search(
    client: openai.AsyncOpenAI, claude: anthropic.AsyncAnthropic, gemini: genai.Client, query: str
) -> str:
    embedding, plan, answer, related = await asyncio.gather(
        client.embeddings.create(model=EMBEDDING_MODEL, input=[query, query.upper()]),
        client.responses.create(
            model=REASONING_MODEL,
            input=f"Plan a search for: {query}",
            extra_headers=scenario(reasoning=180),
        ),
        client.responses.create(model=CHAT_MODEL, input=f"Answer briefly: {query}"),
        gemini.aio.models.generate_content(
            model=GEMINI_MODEL,
            contents=f"Suggest searches related to: {query}",
            config={
                "http_options": {
                    "headers": scenario(
                        usage={"promptTokenCount": 2400, "cachedContentTokenCount": 2048}
                    )
                }
            },
        ),
    )
    async with asyncio.TaskGroup() as group:
        rerank = group.create_task(
            claude.messages.create(
                model=CLAUDE_MODEL,
                max_tokens=256,
                messages=[{"role": "user", "content": f"Rerank for {query}: {answer.output_text}"}],
            )
        )
    found = f"{len(embedding.data)} vectors, {plan.output_text[:20]}"
    return f"{found}, {(related.text or '')[:20]}, {rerank.result().id}"


def support(claude: anthropic.Anthropic, bedrock: Any, triage_url: str, ticket: str) -> str:
    """Classify the ticket with Amazon Nova on Bedrock, stream a Claude answer with thinking and a
    warm prompt cache, then ask the triage service."""
    urgency = bedrock.converse(
        modelId=BEDROCK_MODEL,
        messages=[{"role": "user", "content": [{"text": f"How urgent is: {ticket}"}]}],
    )["output"]["message"]["content"][0]["text"]
    with claude.messages.stream(
        model=CLAUDE_MODEL,
        max_tokens=1024,
        messages=[{"role": "user", "content": ticket}],
        extra_headers=scenario(
            reasoning="The login error points at an expired session; check SSO first.",
            usage={
                "input_tokens": 40,
                "cache_read_input_tokens": 3000,
                "cache_creation_input_tokens": 500,
            },
        ),
    ) as stream:
        reply = stream.get_final_text()
    triage = httpx2.post(triage_url, json={"ticket": ticket}, timeout=30)
    triage.raise_for_status()
    return f"{urgency[:10]} / {reply[:20]} / {triage.json()['queue']}"


def run_customer(customer: str) -> None:
    """Run every feature for one customer, one trace per feature run."""
    openai_client, claude = openai.OpenAI(), anthropic.Anthropic()
    bedrock = boto3.client("bedrock-runtime")
    triage_url = os.environ["SPANLEDGER_DEMO_TRIAGE_URL"]
    with spanledger.tags(customer=customer, env="demo"):
        with (
            spanledger.tags(feature="summarizer", team=TEAM_OF["summarizer"]),
            tracer.start_as_current_span("agent summarizer"),
        ):
            summarizer(openai_client, [f"{customer} report part {i}" for i in range(3)])
        with (
            spanledger.tags(feature="search", team=TEAM_OF["search"]),
            tracer.start_as_current_span("agent search"),
        ):
            asyncio.run(search(f"{customer} pricing history"))
        with (
            spanledger.tags(feature="support", team=TEAM_OF["support"]),
            tracer.start_as_current_span("agent support"),
        ):
            support(claude, bedrock, triage_url, f"{customer} cannot log in")


def main() -> None:
    for customer in CUSTOMERS:
        run_customer(customer)
        print(f"agent: {customer} done", flush=True)


if __name__ == "__main__":
    main()
