"""An agent whose work fans out across threads, asyncio tasks, processes and an HTTP service.

Each customer's run is one trace and one tag scope; each step adds its ``feature``. Run under
``opentelemetry-instrument`` with ``OPENAI_BASE_URL`` / ``ANTHROPIC_BASE_URL`` set and
``REVIEW_URL`` pointing at ``service.py`` (``run.py`` does all of that).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import subprocess
import sys
import threading
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import anthropic
import httpx2
import openai
import worker
from opentelemetry import trace

import spanledger

CUSTOMERS = ("acme", "globex")
CHAT = "gpt-4o-mini"
CLAUDE = "claude-sonnet-4-6"
tracer = trace.get_tracer("agent_fanout")


def ask(client: openai.OpenAI, prompt: str) -> str:
    reply = client.chat.completions.create(
        model=CHAT, messages=[{"role": "user", "content": prompt}]
    )
    return reply.choices[0].message.content or ""


def research(client: openai.OpenAI, topic: str) -> list[str]:
    """Threads: a pool of searches, and one background thread with its own sub-feature."""
    notes: list[str] = []

    def fact_check() -> None:
        with spanledger.tags(team="quality"):
            notes.append(ask(client, f"Fact-check {topic}"))

    checker = threading.Thread(target=fact_check)
    checker.start()
    with ThreadPoolExecutor(max_workers=3) as pool:
        notes.extend(pool.map(lambda q: ask(client, f"Search {q} for {topic}"), ("web", "docs")))
    checker.join()
    return notes


async def draft(topic: str, notes: list[str]) -> str:
    """asyncio: gather two models, then a TaskGroup, and a task that outlives its scope."""
    openai_client, claude = (
        openai.AsyncOpenAI(max_retries=0),
        anthropic.AsyncAnthropic(max_retries=0),
    )
    outline, angle = await asyncio.gather(
        openai_client.chat.completions.create(
            model=CHAT, messages=[{"role": "user", "content": f"Outline {topic}: {notes}"}]
        ),
        claude.messages.create(
            model=CLAUDE, max_tokens=200, messages=[{"role": "user", "content": f"Angle {topic}"}]
        ),
    )
    async with asyncio.TaskGroup() as group:
        sections = [
            group.create_task(
                openai_client.chat.completions.create(
                    model=CHAT, messages=[{"role": "user", "content": f"Write section {n}"}]
                )
            )
            for n in range(2)
        ]
    return f"{outline.id} {angle.id} " + " ".join(s.result().id for s in sections)


def index(chunks: list[str]) -> None:
    """Processes: a spawned pool embeds chunks, and a child command indexes the whole."""
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(spanledger.carry(worker.embed), chunks))
    subprocess.run(
        [sys.executable, str(Path(__file__).with_name("worker.py"))],
        env=spanledger.context_env(),
        check=True,
    )


def review(text: str) -> None:
    """HTTP: the review service bills its LLM call to the caller's tags."""
    response = httpx2.post(os.environ["REVIEW_URL"], json={"draft": text}, timeout=30)
    response.raise_for_status()


def run(customer: str) -> None:
    topic = f"{customer} quarterly results"
    with (
        spanledger.tags(customer=customer, env="example"),
        tracer.start_as_current_span(f"agent run {customer}"),
    ):
        with spanledger.tags(feature="research"):
            notes = research(openai.OpenAI(max_retries=0), topic)
        with spanledger.tags(feature="drafting"):
            text = asyncio.run(draft(topic, notes))
        with spanledger.tags(feature="indexing"):
            index([f"{topic} part {n}" for n in range(2)])
        with spanledger.tags(feature="review"):
            review(text)


def main() -> None:
    for customer in CUSTOMERS:
        run(customer)
        print(f"agent: {customer} done", flush=True)


if __name__ == "__main__":
    main()
