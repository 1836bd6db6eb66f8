"""The price book: published figures, overrides, discounts, markup, reported cost, unpriced."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from spanledger import semconv
from spanledger.processor.config import check_config
from spanledger.processor.model import Usage
from spanledger.processor.pricing import PriceBook, PricingConfig

from .conftest import SEPTEMBER_2025

MILLION = 1_000_000


def chat(model: str, provider: str | None = "openai", **counts: int) -> Usage:
    return Usage(operation="chat", provider=provider, request_model=model, **counts)


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "prices.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


def test_gpt_4o_mini_published_prices(book):
    cost = book.price(
        chat(
            "gpt-4o-mini",
            input_tokens=2_000_000,
            output_tokens=1_000_000,
            cache_read_tokens=1_000_000,
        ),
        SEPTEMBER_2025,
    )
    # $0.15 per million uncached input, $0.075 cached, $0.60 output.
    assert (cost.input, cost.cache_read, cost.output) == (
        Decimal("0.15"),
        Decimal("0.075"),
        Decimal("0.60"),
    )
    assert cost.total == Decimal("0.825")
    assert cost.pricing_model == "openai/gpt-4o-mini"
    assert cost.source == semconv.SOURCE_PRICE_TABLE and cost.billable is None


def test_claude_sonnet_4_published_prices(book):
    usage = chat(
        "claude-sonnet-4-20250514",
        provider="anthropic",
        input_tokens=4 * MILLION,
        output_tokens=MILLION,
        cache_read_tokens=MILLION,
        cache_write_tokens=MILLION,
        cache_write_1h_tokens=MILLION,
    )
    cost = book.price(usage, SEPTEMBER_2025)
    # $3 input, $15 output, $0.30 cache read, $3.75 5-minute and $6 1-hour cache writes.
    assert cost.input == Decimal(3) and cost.output == Decimal(15)
    assert cost.cache_read == Decimal("0.30")
    assert cost.cache_write == Decimal("3.75") + Decimal(6)
    assert cost.total == Decimal("28.05")


def test_service_tiers_select_variant_prices(book):
    november_2026 = int(datetime(2026, 11, 2, tzinfo=UTC).timestamp()) * 1_000_000_000
    costs = {
        tier: book.price(
            chat("gpt-5", input_tokens=MILLION, output_tokens=MILLION, service_tier=tier),
            november_2026,
        ).total
        for tier in (None, "default", "flex", "priority", "batch")
    }
    # gpt-5: $1.25 / $10 per million standard; flex and batch half; priority double.
    assert costs == {
        None: Decimal("11.25"),
        "default": Decimal("11.25"),
        "flex": Decimal("5.625"),
        "priority": Decimal("22.5"),
        "batch": Decimal("5.625"),
    }


def test_zero_tokens_on_a_known_model_is_a_priced_zero(book):
    cost = book.price(chat("gpt-4o-mini"), SEPTEMBER_2025)
    assert cost.status == semconv.STATUS_PRICED and cost.total == 0


def test_an_unknown_model_is_unpriced_with_provider_and_model_named(book):
    cost = book.price(chat("acme-secret-model", input_tokens=10), SEPTEMBER_2025)
    assert cost.status == semconv.STATUS_UNPRICED and cost.total == 0 and cost.source is None
    assert "'acme-secret-model'" in cost.reason and "'openai'" in cost.reason


def test_a_self_hosted_provider_is_unpriced_with_a_clear_reason(book):
    cost = book.price(chat("llama3.1:8b", provider="ollama", input_tokens=10), SEPTEMBER_2025)
    assert cost.status == semconv.STATUS_UNPRICED
    assert "'ollama'" in cost.reason and "'llama3.1:8b'" in cost.reason


def test_no_model_is_unpriced(book):
    cost = book.price(Usage(operation="chat", provider="openai", input_tokens=5), SEPTEMBER_2025)
    assert cost.status == semconv.STATUS_UNPRICED and "no model" in cost.reason


def test_the_start_time_selects_dated_prices(book, table):
    """A model whose price changed on a date is priced by the call's start time."""
    for provider in table.snapshot.providers:
        for model in provider.models:
            if isinstance(model.prices, list) and len(model.prices) > 1:
                constraint = model.prices[-1].constraint
                if getattr(constraint, "start_date", None) is None:
                    continue
                day = datetime.combine(constraint.start_date, datetime.min.time(), tzinfo=UTC)
                before = int((day - timedelta(seconds=1)).timestamp()) * 1_000_000_000
                after = int(day.timestamp()) * 1_000_000_000
                usage = chat(
                    model.id, provider=provider.id, input_tokens=MILLION, output_tokens=MILLION
                )
                costs = {book.price(usage, before).total, book.price(usage, after).total}
                if len(costs) == 2:
                    return
    pytest.fail("no dated price change found in the snapshot")


def test_demo_style_override_prices_a_fine_tune(tmp_path):
    path = write(
        tmp_path,
        """
        models:
          - model: acme-support-ft-2
            input_mtok: 0.50
            output_mtok: 1.50
        """,
    )
    book = PriceBook(PricingConfig(overrides=path))
    cost = book.price(
        chat(
            "ACME-support-ft-2",
            input_tokens=2 * MILLION,
            output_tokens=MILLION,
            cache_read_tokens=MILLION,
        ),
        SEPTEMBER_2025,
    )
    assert cost.source == semconv.SOURCE_OVERRIDE
    # Without a cache-read price, cached input costs the input price.
    assert cost.input + cost.cache_read == Decimal("1.00")
    assert cost.output == Decimal("1.50") and cost.total == Decimal("2.50")
    assert cost.pricing_model == "openai/ACME-support-ft-2"


def test_prefix_rule_with_provider_and_cache_prices(tmp_path):
    path = write(
        tmp_path,
        """
        models:
          - prefix: "ft:gpt-4o-mini"
            provider: openai
            input_mtok: 0.30
            output_mtok: 1.20
            cache_read_mtok: 0.15
            cache_write_mtok: 0.40
            cache_write_1h_mtok: 0.60
        """,
    )
    book = PriceBook(PricingConfig(overrides=path))
    usage = chat(
        "ft:gpt-4o-mini-2024-07-18:acme::abc123",
        input_tokens=4 * MILLION,
        output_tokens=MILLION,
        cache_read_tokens=MILLION,
        cache_write_tokens=MILLION,
        cache_write_1h_tokens=MILLION,
    )
    cost = book.price(usage, SEPTEMBER_2025)
    assert cost.source == semconv.SOURCE_OVERRIDE
    assert (cost.input, cost.cache_read, cost.cache_write, cost.output) == (
        Decimal("0.30"),
        Decimal("0.15"),
        Decimal("1.00"),
        Decimal("1.20"),
    )
    other_provider = chat("ft:gpt-4o-mini-x", provider="azure.ai.openai", input_tokens=5)
    assert book.price(other_provider, SEPTEMBER_2025).source != semconv.SOURCE_OVERRIDE


def test_discount_on_a_provider_takes_the_table_price_off(tmp_path, book):
    path = write(
        tmp_path,
        """
        models:
          - provider: az.ai.openai
            discount_percent: 15
        """,
    )
    discounted = PriceBook(PricingConfig(overrides=path))
    usage = chat("gpt-4o", provider="azure.ai.openai", input_tokens=MILLION, output_tokens=MILLION)
    full = book.price(usage, SEPTEMBER_2025)
    cost = discounted.price(usage, SEPTEMBER_2025)
    assert cost.source == semconv.SOURCE_OVERRIDE and full.source == semconv.SOURCE_PRICE_TABLE
    assert cost.total == full.total * Decimal("0.85")
    assert cost.input == full.input * Decimal("0.85")
    assert cost.pricing_model == full.pricing_model


def test_markup_fills_billable(table):
    book = PriceBook(PricingConfig(markup_percent=20), table=table)
    cost = book.price(chat("gpt-4o-mini", input_tokens=MILLION), SEPTEMBER_2025)
    assert cost.total == Decimal("0.15") and cost.billable == Decimal("0.18")


def test_reported_cost_is_preferred_and_split_like_the_table(book):
    usage = chat("gpt-4o-mini", input_tokens=MILLION, output_tokens=MILLION)
    usage.reported_cost = Decimal("0.5")
    cost = book.price(usage, SEPTEMBER_2025)
    assert cost.source == semconv.SOURCE_PROVIDER_REPORTED and cost.total == Decimal("0.5")
    assert cost.input + cost.output + cost.cache_read + cost.cache_write == Decimal("0.5")
    assert cost.output == Decimal("0.5") * Decimal("0.60") / Decimal("0.75")


def test_reported_cost_for_an_unknown_model_is_still_priced(book):
    usage = chat("some-router-model", provider="openrouter", input_tokens=10)
    usage.reported_cost = Decimal("0.0031")
    cost = book.price(usage, SEPTEMBER_2025)
    assert cost.status == semconv.STATUS_PRICED and cost.total == Decimal("0.0031")
    assert cost.source == semconv.SOURCE_PROVIDER_REPORTED


def test_prefer_reported_false_uses_the_table(table):
    book = PriceBook(PricingConfig(prefer_reported=False), table=table)
    usage = chat("gpt-4o-mini", input_tokens=MILLION)
    usage.reported_cost = Decimal("9")
    cost = book.price(usage, SEPTEMBER_2025)
    assert cost.source == semconv.SOURCE_PRICE_TABLE and cost.total == Decimal("0.15")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "models:\n  - model: x\n    input_mtok: cheap\n    output_mtok: 1\n",
            "line 3: models[0].input_mtok: expected a number",
        ),
        ("models:\n  - model: x\n    input_mtok: 1\n", "line 2: models[0]: needs output_mtok"),
        (
            "models:\n  - model: x\n    colour: red\n    discount_percent: 5\n",
            "line 3: models[0].colour: unknown key",
        ),
        (
            "models:\n  - model: x\n    prefix: y\n    discount_percent: 5\n",
            "either model or prefix",
        ),
        ("models:\n  - input_mtok: 1\n    output_mtok: 1\n", "needs model, prefix or provider"),
        ("models:\n  - model: x\n    discount_percent: 150\n", "between 0 and 100"),
        ("models:\n  - model: x\n    input_mtok: -1\n    output_mtok: 1\n", "between 0 and"),
        (
            "models:\n  - model: x\n    input_mtok: 1\n    output_mtok: 1\n"
            "    discount_percent: 5\n",
            "either prices or discount_percent",
        ),
        (
            "models:\n  - model: x\n    input_mtok: 1\n    output_mtok: 1\n"
            "    cache_write_1h_mtok: 2\n",
            "cache_write_1h_mtok needs cache_write_mtok",
        ),
        ("models: {model: x}\n", "line 1: models: expected a list"),
        ("prices: []\n", "unknown key 'prices'"),
        ("models: [\n", "not valid YAML"),
    ],
)
def test_malformed_overrides_are_reported_with_their_place(tmp_path, text, expected):
    path = tmp_path / "prices.yaml"
    path.write_text(text, encoding="utf-8")
    problems = PricingConfig(overrides=str(path)).problems()
    assert any(expected in problem and str(path) in problem for problem in problems), problems
    with pytest.raises(ValueError, match="invalid pricing configuration"):
        PriceBook(PricingConfig(overrides=str(path)))


def test_unreadable_overrides_file_is_a_problem(tmp_path):
    config = PricingConfig(overrides=str(tmp_path / "missing.yaml"))
    problems = config.problems()
    assert len(problems) == 1 and "cannot read" in problems[0]
    assert PricingConfig(overrides="missing.yaml").problems() == []
    assert "cannot read" in PricingConfig(overrides="missing.yaml").overrides_problems()[0]


def test_bad_markup_is_a_problem():
    assert "markup_percent" in PricingConfig(markup_percent=-5).problems()[0]
    assert PricingConfig(markup_percent=12.5).problems() == []


def test_config_file_pricing_section_resolves_and_checks_the_overrides(tmp_path):
    (tmp_path / "prices.yaml").write_text("models:\n  - model: x\n    input_mtok: 1\n")
    config_path = tmp_path / "spanledger.yaml"
    config_path.write_text("pricing: {overrides: prices.yaml, markup_percent: 10}\n")
    config, problems = check_config(config_path)
    found = [p for p in problems if "pricing" in p and "needs output_mtok" in p]
    assert len(found) == 1, problems
    (tmp_path / "prices.yaml").write_text(
        "models:\n  - model: x\n    input_mtok: 1\n    output_mtok: 2\n"
    )
    config, problems = check_config(config_path)
    assert problems == [] and config is not None
    assert config.pricing == PricingConfig(
        overrides=str(tmp_path / "prices.yaml"), markup_percent=10.0, prefer_reported=True
    )
    cost = PriceBook(config.pricing).price(chat("x", input_tokens=MILLION), SEPTEMBER_2025)
    assert cost.total == Decimal(1) and cost.billable == Decimal("1.1")
