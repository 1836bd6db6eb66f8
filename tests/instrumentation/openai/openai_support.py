"""Helpers for the OpenAI instrumentation tests."""

from __future__ import annotations

import json
from typing import Any

import openai
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from spanledger.standin import SCENARIO_HEADER, StandIn

MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]
"""30 characters of prompt: 8 input tokens by the stand-in's rule."""


def scenario(**fields: Any) -> dict[str, str]:
    """``extra_headers`` asking the stand-in to answer this one request with ``fields``."""
    return {SCENARIO_HEADER: json.dumps(fields)}


def only_span(exporter: InMemorySpanExporter) -> ReadableSpan:
    spans = exporter.get_finished_spans()
    assert len(spans) == 1, [span.name for span in spans]
    return spans[0]


def async_client(llm: StandIn) -> openai.AsyncOpenAI:
    """An async client for the stand-in; create it inside the event loop that uses it."""
    return openai.AsyncOpenAI(api_key="test-key", base_url=llm.openai_base_url, max_retries=0)
