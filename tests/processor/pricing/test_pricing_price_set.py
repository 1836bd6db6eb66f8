"""``price_usage`` over a ``PriceSet`` gives what ``genai_prices.calc_price`` gives, for every price
set of the snapshot, and the published figures a reader can check by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from genai_prices.data_snapshot import get_snapshot
from genai_prices.types import ModelPrice, Tier, TieredPrices

from spanledger.processor.model import Usage
from spanledger.processor.pricing.price_set import (
    Amounts,
    PricingError,
    price_set,
    price_usage,
    prices_per_million,
)

from .test_pricing_table_agrees import SWEEP_USAGE, reference

MILLION = 1_000_000


def reachable_models():
    """Every (provider id, ``ModelInfo``) of the snapshot that genai-prices finds by its id."""
    snapshot = get_snapshot()
    for provider in snapshot.providers:
        for model in provider.models:
            try:
                _, found = snapshot.find_provider_model(model.id, None, provider.id, None)
            except LookupError:
                continue
            if found is model:
                yield provider.id, model


@pytest.mark.parametrize("year", [2024, 2025, 2026])
def test_every_price_set_of_the_snapshot_prices_as_calc_price_does(year):
    moment = datetime(year, 6, 1, 3, 30, tzinfo=UTC)
    start_ns = int(moment.timestamp()) * 1_000_000_000
    usage = SWEEP_USAGE
    compared = 0
    for provider_id, model in reachable_models():
        expected = reference(usage, provider_id, model.id, start_ns)
        try:
            prices = price_set(model.get_prices(moment))
            got: Amounts | Exception = price_usage(prices, usage)
        except ValueError as exc:
            got = exc
        if isinstance(expected, Exception):
            assert isinstance(got, Exception), (provider_id, model.id, got)
            continue
        assert not isinstance(got, Exception), (provider_id, model.id, got)
        total, _, output_price, components = expected
        assert got.total == total, (provider_id, model.id)
        assert got.output == output_price
        assert [got.input, got.output, got.cache_read, got.cache_write] == components
        assert got.total == got.input + got.output + got.cache_read + got.cache_write
        compared += 1
    assert compared > 1000


def test_leaves_are_carved_before_they_are_priced():
    prices = prices_per_million(
        {
            "input_mtok": Decimal("3"),
            "output_mtok": Decimal("15"),
            "cache_read_mtok": Decimal("0.30"),
            "cache_write_mtok": Decimal("3.75"),
            "cache_write_1h_mtok": Decimal("6"),
        }
    )
    usage = Usage(
        operation="chat",
        input_tokens=4 * MILLION,
        output_tokens=MILLION,
        cache_read_tokens=MILLION,
        cache_write_tokens=MILLION,
        cache_write_1h_tokens=MILLION,
    )
    # One million uncached input tokens remain once reads and both writes are carved out.
    assert price_usage(prices, usage) == Amounts(
        total=Decimal("28.05"),
        input=Decimal(3),
        output=Decimal(15),
        cache_read=Decimal("0.30"),
        cache_write=Decimal("3.75") + Decimal(6),
    )


def test_a_tiered_price_applies_to_every_token_past_the_threshold():
    long_context = TieredPrices(base=Decimal("1.25"), tiers=[Tier(200_000, Decimal("2.50"))])
    prices = price_set(ModelPrice(input_mtok=long_context, output_mtok=Decimal(10)))
    at = price_usage(prices, Usage(operation="chat", input_tokens=200_000))
    past = price_usage(prices, Usage(operation="chat", input_tokens=200_001))
    assert at.input == Decimal("0.25")
    assert past.input == Decimal("2.50") * 200_001 / MILLION


def test_finer_counts_larger_than_their_total_are_refused():
    prices = prices_per_million(
        {"input_mtok": Decimal(1), "output_mtok": Decimal(2), "cache_read_mtok": Decimal("0.1")}
    )
    usage = Usage(operation="chat", input_tokens=100, cache_read_tokens=101)
    with pytest.raises(PricingError, match=r"input_tokens \(100\) is less than the counts"):
        price_usage(prices, usage)
    with pytest.raises(PricingError, match=r"output_tokens is negative \(-1\)"):
        price_usage(prices, Usage(operation="chat", output_tokens=-1))


def test_a_price_set_genai_prices_refuses_is_refused():
    with pytest.raises(ValueError, match="cache_read"):
        prices_per_million({"cache_read_mtok": Decimal(1), "output_mtok": Decimal(2)})
