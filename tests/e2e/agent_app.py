"""The user's program in the Phoenix end-to-end test, run under ``opentelemetry-instrument``.

One agent run for customer ``acme``: an OpenAI planning call tagged ``feature=research`` and an
Anthropic call, one step down, tagged ``feature=summarize``. The LLM hosts come from
``OPENAI_BASE_URL`` and ``ANTHROPIC_BASE_URL`` (the stand-in). Prints the trace id.
"""

from __future__ import annotations

import anthropic
import openai
from opentelemetry import trace

import spanledger
from spanledger.standin import Scenario

OPENAI_USAGE = {
    "prompt_tokens": 1200,
    "completion_tokens": 300,
    "prompt_tokens_details": {"cached_tokens": 1000},
}
ANTHROPIC_USAGE = {"input_tokens": 10, "output_tokens": 200, "cache_read_input_tokens": 2000}

tracer = trace.get_tracer("spanledger.e2e.agent")

with (
    spanledger.tags(customer="acme", feature="research"),
    tracer.start_as_current_span("research agent") as root,
):
    with openai.OpenAI(max_retries=0) as client:
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Plan the research."}],
            extra_headers=Scenario(usage=OPENAI_USAGE).to_header(),
        )
    with (
        tracer.start_as_current_span("summarize sources"),
        spanledger.tags(feature="summarize"),
        anthropic.Anthropic(max_retries=0) as claude,
    ):
        claude.messages.create(
            model="claude-sonnet-4-20250514",
            max_tokens=512,
            messages=[{"role": "user", "content": "Summarise the sources."}],
            extra_headers=Scenario(usage=ANTHROPIC_USAGE).to_header(),
        )
    print(format(root.get_span_context().trace_id, "032x"), flush=True)
