"""Work the agent runs in other processes: a spawned pool worker and a child command.

A child process starts with an empty context. ``spanledger.carry`` brings the trace and tags to
the pool worker; ``spanledger.context_env`` brings them to the command through ``TRACEPARENT``
and ``BAGGAGE``, which spanledger's instrumentation picks up at start.
"""

from __future__ import annotations

import openai

import spanledger

client: openai.OpenAI | None = None


def embed(chunk: str) -> dict[str, str]:
    """Embeds one chunk; returns the tags the child saw."""
    global client  # noqa: PLW0603
    client = client or openai.OpenAI(max_retries=0)
    client.embeddings.create(model="text-embedding-3-small", input=[chunk])
    return spanledger.current_tags()


if __name__ == "__main__":
    print(f"worker: indexed with tags {embed('the whole report')}", flush=True)
