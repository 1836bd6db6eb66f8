"""Calls to five models: one from the public price table, three priced by prices.yaml, one unknown.

Run under ``opentelemetry-instrument`` with ``OPENAI_BASE_URL`` and ``ANTHROPIC_BASE_URL`` set
(``run.py`` does that, against the local stand-in).
"""

from __future__ import annotations

import anthropic
import openai

import spanledger

CALLS = (
    ("openai", "gpt-4o-mini"),
    ("openai", "ft:gpt-4o-mini-2024-07-18:acme:support:B7x2"),
    ("openai", "llama-3.1-8b-instruct"),
    ("anthropic", "claude-sonnet-4-6"),
    ("openai", "acme-experimental-7b"),
)

TICKET = (
    "Ticket 4711: the customer's March invoice lists the Pro plan twice, once at the old price "
    "and once at the new one. They upgraded mid-month. Draft a short, friendly reply that "
    "explains proration and says the duplicate line will be credited on the next invoice."
)


def main() -> None:
    with (
        openai.OpenAI(max_retries=0) as oai,
        anthropic.Anthropic(max_retries=0) as claude,
        spanledger.tags(customer="acme", feature="support"),
    ):
        for provider, model in CALLS:
            prompt = [{"role": "user", "content": TICKET}]
            if provider == "openai":
                oai.chat.completions.create(model=model, messages=prompt)
            else:
                claude.messages.create(model=model, max_tokens=300, messages=prompt)


if __name__ == "__main__":
    main()
