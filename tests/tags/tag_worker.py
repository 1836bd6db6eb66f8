"""Work run in child processes by the process tests.

``configure`` is what a code-configured child does at start (an OTLP exporter, then
``spanledger.install_tags``); ``ask`` is one LLM call through the openai SDK. Run as a script
under ``opentelemetry-instrument`` it makes that call once, configured by the environment.
"""

from __future__ import annotations

import multiprocessing
import sys
from typing import Any

import openai
from opentelemetry import trace

import spanledger


def configure(otlp_endpoint: str) -> None:
    """Sets up tracing in a child process: spans go to ``otlp_endpoint`` as they end."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from spanledger.instrumentation.openai import OpenAIInstrumentor

    provider = TracerProvider(resource=Resource.create({"service.name": "tag-worker"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
    trace.set_tracer_provider(provider)
    spanledger.install_tags(provider)
    OpenAIInstrumentor().instrument(tracer_provider=provider)


def ask(base_url: str, prompt: str, team: str | None = None) -> dict[str, Any]:
    """One chat call, optionally in a nested scope; returns what the child saw."""
    client = openai.OpenAI(api_key="test-key", base_url=base_url, max_retries=0)
    with spanledger.tags(team=team) if team else spanledger.tags():
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
        )
        return {
            "tags": spanledger.current_tags(),
            "trace_id": format(trace.get_current_span().get_span_context().trace_id, "032x"),
        }


def run_process(otlp_endpoint: str, base_url: str, results: multiprocessing.Queue) -> None:
    """The target of a ``multiprocessing.Process``: configure, ask once, report."""
    configure(otlp_endpoint)
    results.put(ask(base_url, "from a process"))


if __name__ == "__main__":
    print(ask(sys.argv[1], "from a command")["tags"])
