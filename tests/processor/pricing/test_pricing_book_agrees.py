"""``PriceBook.price`` gives what ``genai_prices.calc_price`` gives, on its first call of a model
and on every later one (once its route is remembered), with markup, reported costs and
unusable counts handled as before."""

from __future__ import annotations

import textwrap
from dataclasses import fields
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spanledger import semconv
from spanledger.processor.model import Usage
from spanledger.processor.pricing import PriceBook, PricingConfig
from spanledger.processor.usage.extract import INCOMPLETE

from .test_pricing_table_agrees import MODELS, moments, reference, sweep_settings, usages

AGREEING = PriceBook()
"""A price book whose routes are built by the calls of the property test."""

MARKED_UP = PriceBook(PricingConfig(markup_percent=12.5), table=AGREEING.table)


def as_called(usage: Usage, provider_id: str, model: str) -> Usage:
    """A copy of ``usage`` naming the provider and model, as the usage reader fills it."""
    copy = Usage(**{field.name: getattr(usage, field.name) for field in fields(Usage)})
    copy.provider, copy.request_model = provider_id, model
    return copy


def check_agrees(book: PriceBook, usage: Usage, provider_id: str, model: str, start_ns: int):
    expected = reference(usage, provider_id, model, start_ns)
    call = as_called(usage, provider_id, model)
    first, again = book.price(call, start_ns), book.price(call, start_ns)
    assert first == again, (provider_id, model, first, again)
    if isinstance(expected, Exception):
        assert first.status == semconv.STATUS_UNPRICED, (provider_id, model, usage, first)
        assert model in first.reason and first.source is None and first.total == 0
        return
    total, _, output_price, components = expected
    assert first.status == semconv.STATUS_PRICED, (provider_id, model, usage, first.reason)
    assert first.source == semconv.SOURCE_PRICE_TABLE
    assert first.total == total, (provider_id, model, usage, start_ns)
    assert first.output == output_price
    assert [first.input, first.output, first.cache_read, first.cache_write] == components
    assert first.pricing_model == book.table.lookup(provider_id, model).name
    assert first.reason is None
    if book.config.markup_percent:
        markup = 1 + Decimal(repr(float(book.config.markup_percent))) / 100
        assert first.billable == first.total * markup
    else:
        assert first.billable is None


@pytest.mark.slow
@sweep_settings
@given(model=st.sampled_from(MODELS), usage=usages(), start_ns=moments)
def test_price_book_equals_calc_price(model, usage, start_ns):
    provider_id, model_id = model
    check_agrees(AGREEING, usage, provider_id, model_id, start_ns)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(model=st.sampled_from(MODELS), usage=usages(), start_ns=moments)
def test_marked_up_price_book_equals_calc_price(model, usage, start_ns):
    provider_id, model_id = model
    check_agrees(MARKED_UP, usage, provider_id, model_id, start_ns)


@pytest.mark.slow
def test_every_model_of_the_snapshot_is_priced_by_the_book_as_by_calc_price():
    book = PriceBook()
    start_ns = int(datetime(2025, 11, 5, 14, tzinfo=UTC).timestamp()) * 1_000_000_000
    usage = Usage(
        operation="chat",
        input_tokens=180_000,
        output_tokens=7_000,
        cache_read_tokens=90_000,
        cache_write_tokens=4_000,
        reasoning_tokens=1_500,
    )
    priced = 0
    for provider_id, model_id in MODELS:
        check_agrees(book, usage, provider_id, model_id, start_ns)
        priced += book.price(as_called(usage, provider_id, model_id), start_ns).total > 0
    assert priced > 1000


def test_a_known_model_still_takes_reported_cost_problems_and_overrides():
    """Once a model's route is built, calls that need more than the table price still get it."""
    book = PriceBook(PricingConfig(markup_percent=10))
    start_ns = int(datetime(2025, 9, 1, tzinfo=UTC).timestamp()) * 1_000_000_000
    plain = as_called(Usage(operation="chat", input_tokens=1_000_000), "openai", "gpt-4o-mini")
    assert book.price(plain, start_ns).total == Decimal("0.15")

    reported = as_called(plain, "openai", "gpt-4o-mini")
    reported.reported_cost = Decimal("0.2")
    cost = book.price(reported, start_ns)
    assert cost.source == semconv.SOURCE_PROVIDER_REPORTED and cost.total == Decimal("0.2")
    assert cost.billable == Decimal("0.2") * Decimal("1.1")

    unusable = as_called(plain, "openai", "gpt-4o-mini")
    unusable.input_tokens = 0
    unusable.problems = [f"{INCOMPLETE} no usable input token count"]
    cost = book.price(unusable, start_ns)
    assert cost.status == semconv.STATUS_UNPRICED and "unusable token counts" in cost.reason

    minor = as_called(plain, "openai", "gpt-4o-mini")
    minor.problems = ["gen_ai.usage.reasoning.output_tokens: negative (-3)"]
    assert book.price(minor, start_ns).total == Decimal("0.15")

    refused = as_called(plain, "openai", "gpt-4o-mini")
    refused.cache_read_tokens = 2_000_000
    cost = book.price(refused, start_ns)
    assert cost.status == semconv.STATUS_UNPRICED
    assert cost.reason.startswith("openai/gpt-4o-mini: ") and "input_tokens" in cost.reason

    assert book.price(plain, start_ns).billable == Decimal("0.15") * Decimal("1.1")


def test_a_discounted_provider_keeps_its_override_source_on_every_call(tmp_path):
    path = tmp_path / "prices.yaml"
    path.write_text(
        textwrap.dedent(
            """
            models:
              - provider: openai
                discount_percent: 20
            """
        ),
        encoding="utf-8",
    )
    book = PriceBook(PricingConfig(overrides=str(path)))
    start_ns = int(datetime(2025, 9, 1, tzinfo=UTC).timestamp()) * 1_000_000_000
    usage = as_called(Usage(operation="chat", input_tokens=1_000_000), "openai", "gpt-4o-mini")
    for _ in range(3):
        cost = book.price(usage, start_ns)
        assert cost.source == semconv.SOURCE_OVERRIDE and cost.total == Decimal("0.12")
