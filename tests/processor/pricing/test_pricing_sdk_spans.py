"""Spans written by the real SDKs, through OTLP, are read and priced to published figures.

The anthropic SDK (2.x) writes its own spans; the openai SDK (3.x) is traced by this project's
instrumentation. Both talk to the local stand-in, which speaks their wire protocols.
"""

from __future__ import annotations

import warnings
from decimal import Decimal

import pytest
from anthropic import Anthropic
from openai import OpenAI

from spanledger import semconv
from spanledger.instrumentation.openai import OpenAIInstrumentor
from spanledger.processor.usage import extract_usage
from spanledger.standin import Scenario

from .conftest import SEPTEMBER_2025
from .otlp_spans import as_received

ANTHROPIC_USAGE = {
    "input_tokens": 10,
    "output_tokens": 200,
    "cache_read_input_tokens": 2000,
    "cache_creation_input_tokens": 1500,
    "cache_creation": {"ephemeral_5m_input_tokens": 500, "ephemeral_1h_input_tokens": 1000},
}
# claude-sonnet-4, per million tokens: input $3, output $15, cache read $0.30,
# cache write $3.75 (5 minutes) and $6 (1 hour).
SONNET_INPUT = Decimal("10") * 3 / 1_000_000
SONNET_CACHE_READ = Decimal("2000") * Decimal("0.30") / 1_000_000
SONNET_CACHE_WRITE = (Decimal("500") * Decimal("3.75") + Decimal("1000") * 6) / 1_000_000
SONNET_OUTPUT = Decimal("200") * 15 / 1_000_000


def _anthropic_spans(standin, spans, stream: bool):
    provider, exporter = spans
    client = Anthropic(
        api_key="test-key",
        base_url=standin.anthropic_base_url,
        open_telemetry={"tracer_provider": provider},
    )
    request = {
        "model": "claude-sonnet-4-20250514",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "Summarise the ticket."}],
        "extra_headers": Scenario(usage=ANTHROPIC_USAGE).to_header(),
    }
    # Some anthropic releases warn that the SDK's tracing is a preview; the test needs no warning.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if stream:
            with client.messages.stream(**request) as events:
                for _ in events.text_stream:
                    pass
        else:
            client.messages.create(**request)
    return as_received(exporter.get_finished_spans())


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
def test_anthropic_sdk_span_is_priced_with_5m_and_1h_cache_writes(standin, spans, book, stream):
    (name, attributes, _), *_ = _anthropic_spans(standin, spans, stream)
    assert name == "anthropic.messages.create"

    usage = extract_usage(attributes, name)

    assert usage is not None and usage.problems == []
    assert usage.provider == "anthropic"
    assert usage.input_tokens == 10 + 2000 + 1500
    assert (usage.cache_read_tokens, usage.cache_write_tokens) == (2000, 500)
    assert usage.cache_write_1h_tokens == 1000
    cost = book.price(usage, SEPTEMBER_2025)
    assert cost.status == semconv.STATUS_PRICED
    assert cost.source == semconv.SOURCE_PRICE_TABLE
    assert cost.pricing_model.startswith("anthropic/claude-sonnet-4")
    assert cost.input == SONNET_INPUT
    assert cost.cache_read == SONNET_CACHE_READ
    assert cost.cache_write == SONNET_CACHE_WRITE
    assert cost.output == SONNET_OUTPUT
    assert cost.total == Decimal("0.011505")


@pytest.fixture
def traced_openai(standin, spans):
    provider, exporter = spans
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        yield OpenAI(api_key="test-key", base_url=standin.openai_base_url), exporter
    finally:
        instrumentor.uninstrument()


def test_openai_chat_span_prices_cached_input_at_the_cached_rate(traced_openai, book):
    client, exporter = traced_openai
    usage_figures = {
        "prompt_tokens": 1000,
        "completion_tokens": 200,
        "prompt_tokens_details": {"cached_tokens": 600},
    }
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Classify this."}],
        extra_headers=Scenario(usage=usage_figures).to_header(),
    )
    [(name, attributes, start)] = as_received(exporter.get_finished_spans())

    usage = extract_usage(attributes, name)
    cost = book.price(usage, SEPTEMBER_2025)

    # gpt-4o-mini: $0.15 input, $0.075 cached input, $0.60 output per million tokens.
    assert (usage.input_tokens, usage.cache_read_tokens, usage.output_tokens) == (1000, 600, 200)
    assert cost.input == Decimal("400") * Decimal("0.15") / 1_000_000
    assert cost.cache_read == Decimal("600") * Decimal("0.075") / 1_000_000
    assert cost.output == Decimal("200") * Decimal("0.60") / 1_000_000
    assert cost.total == Decimal("0.000225")
    assert cost.pricing_model == "openai/gpt-4o-mini"
    assert book.price(usage, start).total == cost.total


def test_openai_embeddings_span_is_priced_on_input_only(traced_openai, book):
    client, exporter = traced_openai
    client.embeddings.create(
        model="text-embedding-3-small",
        input="a document to embed",
        extra_headers=Scenario(usage={"prompt_tokens": 50_000}).to_header(),
    )
    [(name, attributes, _)] = as_received(exporter.get_finished_spans())

    usage = extract_usage(attributes, name)
    cost = book.price(usage, SEPTEMBER_2025)

    assert usage.operation == "embeddings"
    # text-embedding-3-small: $0.02 per million tokens.
    assert cost.total == Decimal("50000") * Decimal("0.02") / 1_000_000
    assert cost.output == 0
