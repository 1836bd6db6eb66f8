"""Agent-like traces made by the real OpenAI and Anthropic SDKs against the stand-in.

Each trace is one "agent run" root span carrying cost tags in baggage, with a planning call,
tool spans and a varying number of OpenAI and Anthropic calls under it, each call with its own
token figures (set per request through the stand-in's scenario header).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import anthropic
import openai
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator

from spanledger import tags
from spanledger.instrumentation.anthropic import AnthropicInstrumentor
from spanledger.instrumentation.baggage.span_processor import TagSpanProcessor
from spanledger.instrumentation.openai import OpenAIInstrumentor
from spanledger.standin import SCENARIO_HEADER, StandIn

TAG_KEYS = ("customer", "feature", "team", "env")
CUSTOMERS = ("acme", "globex", "initech", None)
FEATURES = ("search", "summarize", "triage")
OPENAI_MODEL = "gpt-4o-mini"
ANTHROPIC_MODEL = "claude-haiku-4-5"


class SeededIds(IdGenerator):
    """Trace and span ids from a seeded generator, so every run makes the same traces."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def generate_trace_id(self) -> int:
        return self._random.getrandbits(128) or 1

    def generate_span_id(self) -> int:
        return self._random.getrandbits(64) or 1


def openai_usage(prompt: int, completion: int, cached: int = 0) -> dict[str, object]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def anthropic_usage(fresh: int, output: int, cache_read: int = 0) -> dict[str, object]:
    return {"input_tokens": fresh, "output_tokens": output, "cache_read_input_tokens": cache_read}


def scenario(usage: dict[str, object]) -> dict[str, str]:
    return {SCENARIO_HEADER: json.dumps({"usage": usage})}


@contextmanager
def instrumented(seed: int = 0) -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """A tracer provider with the tag processor and both SDK instrumentors, spans kept in memory.

    Ids come from ``seed``, so the traces (and how they partition) are the same on every run.
    """
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "e2e-agent"}), id_generator=SeededIds(seed)
    )
    provider.add_span_processor(TagSpanProcessor(TAG_KEYS, 256))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentors = [OpenAIInstrumentor(), AnthropicInstrumentor()]
    for instrumentor in instrumentors:
        instrumentor.instrument(tracer_provider=provider)
    try:
        yield provider, exporter
    finally:
        for instrumentor in instrumentors:
            instrumentor.uninstrument()
        provider.shutdown()


def run_agents(llm: StandIn, runs: int) -> list[ReadableSpan]:
    """Run ``runs`` agent traces; return every finished span, in the order they ended."""
    with instrumented() as (provider, exporter):
        tracer = provider.get_tracer("e2e.agent")
        with (
            openai.OpenAI(api_key="test-key", base_url=llm.openai_base_url, max_retries=0) as oai,
            anthropic.Anthropic(
                api_key="test-key", base_url=llm.anthropic_base_url, max_retries=0
            ) as claude,
        ):
            for run in range(runs):
                customer = CUSTOMERS[run % len(CUSTOMERS)]
                feature = FEATURES[run % len(FEATURES)]
                entries = {"customer": customer, "feature": feature, "team": "agents"}
                with tags(**entries), tracer.start_as_current_span("agent run"):
                    oai.chat.completions.create(
                        model=OPENAI_MODEL,
                        messages=[{"role": "user", "content": f"plan run {run}"}],
                        extra_headers=scenario(
                            openai_usage(300 + 17 * run, 40 + run, 128 * (run % 2))
                        ),
                    )
                    for step in range(run % 3 + 1):
                        with tracer.start_as_current_span(f"tool step {step}"):
                            claude.messages.create(
                                model=ANTHROPIC_MODEL,
                                max_tokens=256,
                                messages=[{"role": "user", "content": f"step {step}"}],
                                extra_headers=scenario(
                                    anthropic_usage(
                                        90 + 11 * step + run, 25 + step, 1000 * (step % 2)
                                    )
                                ),
                            )
                    if run % 4 == 3:
                        with tags(feature="followup"):
                            oai.chat.completions.create(
                                model=OPENAI_MODEL,
                                messages=[{"role": "user", "content": "follow up"}],
                                extra_headers=scenario(openai_usage(55, 12 + run)),
                            )
        return list(exporter.get_finished_spans())


def otlp_request(spans: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
    """The OTLP request the SDK's exporter would send for ``spans``."""
    return encode_spans(spans)
