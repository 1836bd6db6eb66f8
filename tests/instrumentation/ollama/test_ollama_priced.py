"""ollama calls through the real processor: a self-hosted model has no list price, so the call
is counted unpriced with the reason, until an override prices it, per token or from a GPU-hour
price converted with the throughput Ollama reports (docs/pricing.md)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import ollama
import pytest
from instrumentation_support import instrumented
from provider_support import PricedWith

import spanledger
from spanledger import semconv
from spanledger.instrumentation.ollama import OllamaInstrumentor
from spanledger.processor.pricing import PricingConfig
from spanledger.standin import Scenario

MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]
USAGE = {"prompt_eval_count": 12_000, "eval_count": 300}


def test_a_self_hosted_model_is_counted_unpriced_with_the_reason(llm, priced):
    llm.push(Scenario(usage=USAGE))
    with instrumented(OllamaInstrumentor(), priced.tracer_provider), spanledger.tags(team="ml"):
        ollama.Client(host=llm.url).chat(model="llama3.2", messages=MESSAGES)

    (call,) = priced.calls()
    assert call.tags["team"] == "ml"
    assert (call.usage.provider, call.usage.input_tokens, call.usage.output_tokens) == (
        "ollama",
        12_000,
        300,
    )
    assert call.cost.status == semconv.STATUS_UNPRICED
    assert call.cost.total == 0
    assert "'ollama'" in call.cost.reason and "'llama3.2'" in call.cost.reason
    assert "overrides" in call.cost.reason
    forwarded = priced.forwarded()["chat llama3.2"]
    assert forwarded[semconv.COST_STATUS] == semconv.STATUS_UNPRICED
    assert semconv.GEN_AI_USAGE_COST not in forwarded


def priced_by(tmp_path: Path, rules: str) -> Iterator[PricedWith]:
    overrides = tmp_path / "prices.yaml"
    overrides.write_text(rules)
    running = PricedWith(PricingConfig(overrides=str(overrides))).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def per_token(tmp_path: Path) -> Iterator[PricedWith]:
    rules = """
models:
  - provider: ollama
    prefix: llama3.2
    input_mtok: 0.10
    output_mtok: 0.40
"""
    yield from priced_by(tmp_path, rules)


def test_an_override_prices_a_self_hosted_model_per_token(llm, per_token):
    llm.push(Scenario(usage=USAGE))
    with instrumented(OllamaInstrumentor(), per_token.tracer_provider):
        list(ollama.Client(host=llm.url).chat(model="llama3.2", messages=MESSAGES, stream=True))

    (call,) = per_token.calls()
    assert call.cost.status == semconv.STATUS_PRICED
    assert call.cost.source == semconv.SOURCE_OVERRIDE
    assert call.cost.pricing_model == "ollama/llama3.2"
    assert call.cost.input == Decimal("12000") * Decimal("0.10") / 1_000_000
    assert call.cost.output == Decimal("300") * Decimal("0.40") / 1_000_000
    assert call.cost.total == call.cost.input + call.cost.output


def per_million(gpu_usd_per_hour: Decimal, tokens: int, duration_ns: int) -> Decimal:
    """USD per million tokens, for a GPU busy ``duration_ns`` to process ``tokens``."""
    tokens_per_hour = Decimal(tokens) * 3_600_000_000_000 / duration_ns
    return (gpu_usd_per_hour / tokens_per_hour * 1_000_000).quantize(Decimal("0.000001"))


def test_a_gpu_hour_price_converted_with_ollamas_throughput(llm, tmp_path):
    probe = ollama.Client(host=llm.url).generate(model="qwen3:8b", prompt="Measure me " * 50)
    gpu = Decimal("1.20")
    input_mtok = per_million(gpu, probe.prompt_eval_count, probe.prompt_eval_duration)
    output_mtok = per_million(gpu, probe.eval_count, probe.eval_duration)
    rules = f"""
models:
  - provider: ollama
    model: qwen3:8b
    input_mtok: {input_mtok}
    output_mtok: {output_mtok}
"""
    # The stand-in answers at 2,000 prompt and 50 output tokens a second: $1.20 an hour buys
    # 7.2 million prompt tokens ($0.17 a million) or 180,000 output tokens ($6.67 a million).
    assert (input_mtok, output_mtok) == (Decimal("0.166667"), Decimal("6.666667"))
    for processor in priced_by(tmp_path, rules):
        llm.push(Scenario(usage=USAGE))
        with instrumented(OllamaInstrumentor(), processor.tracer_provider):
            ollama.Client(host=llm.url).chat(model="qwen3:8b", messages=MESSAGES)

        (call,) = processor.calls()
        assert call.cost.source == semconv.SOURCE_OVERRIDE
        assert call.cost.total == (12_000 * input_mtok + 300 * output_mtok) / 1_000_000
