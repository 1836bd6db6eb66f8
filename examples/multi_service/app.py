"""The support app: answers one ticket per customer, asking the retriever service for passages.

Each ticket is one trace and one tag scope (``customer``, ``feature=ticket-answer``). The tags
travel to the retriever in the W3C ``baggage`` header of the HTTP call, next to
``traceparent``. Run under ``opentelemetry-instrument`` with ``RETRIEVER_URL``,
``OPENAI_BASE_URL`` and ``ANTHROPIC_BASE_URL`` set (``run.py`` does that).
"""

from __future__ import annotations

import os

import anthropic
import openai
import requests
from opentelemetry import trace

import spanledger

TICKETS = {
    "acme": "Our export to S3 fails with a permissions error since Monday.",
    "globex": "How do I rotate the API key without downtime?",
}
tracer = trace.get_tracer("multi_service.app")


def answer(customer: str, ticket: str, oai: openai.OpenAI, claude: anthropic.Anthropic) -> None:
    with (
        spanledger.tags(customer=customer, feature="ticket-answer"),
        tracer.start_as_current_span(f"answer ticket {customer}"),
    ):
        oai.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": f"Classify this ticket: {ticket}"}],
        )
        reply = requests.post(
            f"{os.environ['RETRIEVER_URL']}/search", json={"question": ticket}, timeout=30
        )
        reply.raise_for_status()
        passages = "\n".join(reply.json()["passages"])
        claude.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=400,
            messages=[{"role": "user", "content": f"Answer {ticket} using:\n{passages}"}],
        )


def main() -> None:
    with openai.OpenAI(max_retries=0) as oai, anthropic.Anthropic(max_retries=0) as claude:
        for customer, ticket in TICKETS.items():
            answer(customer, ticket, oai, claude)


if __name__ == "__main__":
    main()
