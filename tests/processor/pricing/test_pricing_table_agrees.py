"""``PriceTable`` prices exactly as ``genai_prices.calc_price`` does, for every model in the table:
the same lookups, the same price for the call's time and service tier, the same Decimals."""

from __future__ import annotations

import warnings
from datetime import UTC, date, datetime, time
from decimal import Decimal
from time import time_ns

import pytest
from genai_prices import calc_price
from genai_prices.data_snapshot import get_snapshot
from genai_prices.types import (
    StartDateConstraint,
    TimeOfDateConstraint,
    _collect_resolved_model_prices,
    _compute_registry_priced_counts,
    calc_unit_price,
)
from genai_prices.types import Usage as GenaiUsage
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spanledger.processor.model import Usage
from spanledger.processor.pricing.price_set import (
    REGISTRY,
    Amounts,
    PricingError,
    component_of,
    genai_usage,
)
from spanledger.processor.pricing.table import PriceTable, price_context, timestamp

MODELS = [
    (provider.id, model.id) for provider in get_snapshot().providers for model in provider.models
]
"""Every (provider, model) of the bundled snapshot."""


def reference(usage: Usage, provider_id: str, model: str, start_ns: int):
    """genai-prices' own answer: (total, input, output, components by our split) or the error."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = calc_price(
                genai_usage(usage),
                model,
                provider_id=provider_id,
                genai_request_timestamp=timestamp(start_ns),
                price_context=price_context(usage.service_tier),
            )
        except (ValueError, LookupError) as exc:
            return exc
        components = _components(result.model_price, genai_usage(usage))
    return result.total_price, result.input_price, result.output_price, components


def _components(model_price, usage: GenaiUsage) -> list[Decimal]:
    """Each unit's amount as genai-prices computes it, summed into our four components."""
    resolved = _collect_resolved_model_prices(model_price, REGISTRY)
    counts = _compute_registry_priced_counts(resolved, usage)
    tiered_input = usage.input_tokens
    parts = [Decimal(0)] * 4
    for unit, price in resolved:
        amount = calc_unit_price(price, counts[unit.usage_key], tiered_input, unit.per)
        parts[component_of(unit)] += amount
    return parts


def check_identical(table: PriceTable, usage: Usage, provider_id: str, model: str, start_ns: int):
    expected = reference(usage, provider_id, model, start_ns)
    entry = table.lookup(provider_id, model)
    if isinstance(expected, LookupError):
        assert isinstance(entry, str), f"{provider_id}/{model}: found by us, not by genai-prices"
        return
    assert not isinstance(entry, str), entry
    if isinstance(expected, ValueError):
        with pytest.raises(PricingError):
            table.price(entry, usage, start_ns)
        return
    total, input_price, output_price, components = expected
    got = table.price(entry, usage, start_ns)
    assert got.total == total, (provider_id, model, usage)
    assert got.output == output_price
    assert [got.input, got.output, got.cache_read, got.cache_write] == components
    # genai-prices' input price is every input-direction unit; ours adds only per-request fees.
    assert got.input + got.cache_read + got.cache_write >= input_price
    assert got.total == got.input + got.output + got.cache_read + got.cache_write


counts = st.one_of(st.just(0), st.integers(0, 5_000), st.integers(0, 3_000_000))
tiers = st.sampled_from([None, None, "default", "flex", "priority", "fast", "batch", "standard"])


@st.composite
def usages(draw) -> Usage:
    uncached, cache_read, write_5m, write_1h, audio_in = (draw(counts) for _ in range(5))
    text_out, reasoning, audio_out = (draw(counts) for _ in range(3))
    return Usage(
        operation="chat",
        input_tokens=uncached + cache_read + write_5m + write_1h + audio_in,
        output_tokens=text_out + reasoning + audio_out,
        cache_read_tokens=cache_read,
        cache_write_tokens=write_5m,
        cache_write_1h_tokens=write_1h,
        reasoning_tokens=reasoning,
        input_audio_tokens=audio_in,
        output_audio_tokens=audio_out,
        service_tier=draw(tiers),
    )


moments = st.datetimes(
    min_value=datetime(2023, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(UTC)
).map(lambda moment: int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000)


sweep_settings = settings(
    max_examples=1500,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
"""Settings of the property tests that compare prices with genai-prices over the snapshot."""


@pytest.mark.slow
@sweep_settings
@given(model=st.sampled_from(MODELS), usage=usages(), start_ns=moments)
def test_table_equals_calc_price(table, model, usage, start_ns):
    provider_id, model_id = model
    check_identical(table, usage, provider_id, model_id, start_ns)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(model=st.sampled_from(MODELS), usage=usages(), start_ns=moments)
def test_table_equals_calc_price_without_provider(table, model, usage, start_ns):
    """Without a provider, genai-prices finds one by the model name; so do we."""
    check_identical(table, usage, None, model[1], start_ns)


SWEEP_USAGE = Usage(
    operation="chat",
    input_tokens=250_000,
    output_tokens=40_000,
    cache_read_tokens=120_000,
    cache_write_tokens=30_000,
    cache_write_1h_tokens=10_000,
    reasoning_tokens=15_000,
)
"""A call that uses every count most models price, long enough to cross 200k-token tiers."""


@pytest.mark.parametrize("year", [2024, 2025, 2026])
def test_every_model_of_the_snapshot_prices_identically(table, year):
    start_ns = int(datetime(year, 6, 1, 3, 30, tzinfo=UTC).timestamp()) * 1_000_000_000
    for provider_id, model_id in MODELS:
        check_identical(table, SWEEP_USAGE, provider_id, model_id, start_ns)


@pytest.mark.parametrize("tier", ["flex", "priority", "batch"])
def test_every_model_prices_service_tiers_identically(table, tier):
    start_ns = int(datetime(2026, 11, 2, 9, tzinfo=UTC).timestamp()) * 1_000_000_000
    usage = Usage(
        operation="chat",
        input_tokens=90_000,
        output_tokens=4_000,
        cache_read_tokens=60_000,
        cache_write_tokens=5_000,
        service_tier=tier,
    )
    for provider_id, model_id in MODELS:
        check_identical(table, usage, provider_id, model_id, start_ns)


def test_time_of_day_prices_follow_the_clock(table):
    """Models with off-peak prices (time-of-day constraints) are resolved per call."""
    clocked = [
        (provider.id, model.id)
        for provider in get_snapshot().providers
        for model in provider.models
        if isinstance(model.prices, list)
        and any(isinstance(price.constraint, TimeOfDateConstraint) for price in model.prices)
    ]
    assert clocked, "the snapshot has no time-of-day prices to check"
    usage = Usage(operation="chat", input_tokens=1_000_000, output_tokens=1_000_000)
    totals = set()
    for hour in range(24):
        start_ns = int(datetime(2025, 3, 3, hour, 45, tzinfo=UTC).timestamp()) * 1_000_000_000
        for provider_id, model_id in clocked:
            check_identical(table, usage, provider_id, model_id, start_ns)
        entry = table.lookup(*clocked[0])
        totals.add(table.price(entry, usage, start_ns).total)
    assert len(totals) > 1, "the price did not change over the day"


def test_sums_past_the_decimal_precision_round_as_calc_price_does(table):
    usage = Usage(operation="chat", input_tokens=10**27 + 7, output_tokens=3 * 10**26 + 1)
    start_ns = int(datetime(2025, 9, 1, tzinfo=UTC).timestamp()) * 1_000_000_000
    for model in ("gpt-4o-mini", "gpt-4o", "o3"):
        check_identical(table, usage, "openai", model, start_ns)


def quote(table: PriceTable, provider_id: str | None, model: str, usage: Usage, start_ns: int):
    """The table's price of one call, or why there is none: lookup, then price."""
    entry = table.lookup(provider_id, model)
    if isinstance(entry, str):
        return entry
    try:
        return table.price(entry, usage, start_ns)
    except PricingError as exc:
        return str(exc)


def check_quote(table: PriceTable, usage: Usage, provider_id: str | None, model: str, start_ns):
    """``quote`` answers what genai-prices answers: the same amounts, or a reason."""
    expected = reference(usage, provider_id, model, start_ns)
    quoted = quote(table, provider_id, model, usage, start_ns)
    if isinstance(expected, Exception):
        assert isinstance(quoted, str), (provider_id, model, usage, start_ns, quoted)
        return
    assert isinstance(quoted, Amounts), (provider_id, model, quoted)
    total, _, output_price, components = expected
    assert quoted.total == total, (provider_id, model, usage, start_ns)
    assert quoted.output == output_price
    assert [quoted.input, quoted.output, quoted.cache_read, quoted.cache_write] == components


def dated_models() -> list[tuple[str, str, list[datetime]]]:
    """Models with dated prices, each with the first day of every dated price set."""
    found = []
    for provider in get_snapshot().providers:
        for model in provider.models:
            if isinstance(model.prices, list) and all(
                price.constraint is None or isinstance(price.constraint, StartDateConstraint)
                for price in model.prices
            ):
                days = [
                    datetime.combine(price.constraint.start_date, time(), UTC)
                    for price in model.prices
                    if price.constraint is not None
                ]
                found.append((provider.id, model.id, days))
    return found


def test_quotes_change_price_exactly_on_each_start_date():
    """Around every start date: the last microsecond before, the first of the day, a later one.

    Quotes walk from the latest price set to older ones; a fresh table per model builds the
    chain from whichever call comes first.
    """
    usage = Usage(operation="chat", input_tokens=120_000, output_tokens=9_000)
    usage.cache_read_tokens = 30_000
    models = dated_models()
    assert len(models) > 50
    changed = 0
    for provider_id, model_id, days in models:
        table = PriceTable()
        for day in sorted(days):
            first = int(day.timestamp()) * 1_000_000_000
            for start_ns in (first - 1_000, first, first + 36 * 3_600 * 1_000_000_000):
                check_quote(table, usage, provider_id, model_id, start_ns)
            before = quote(table, provider_id, model_id, usage, first - 1_000)
            on = quote(table, provider_id, model_id, usage, first)
            if not isinstance(before, str) and not isinstance(on, str):
                changed += before.total != on.total
    assert changed > 50, "too few start dates changed a price to show the walk"


def test_a_quote_without_start_time_is_priced_as_of_now(table):
    usage = Usage(operation="chat", input_tokens=50_000, output_tokens=2_000)
    for provider_id, model_id, _ in dated_models():
        expected = reference(usage, provider_id, model_id, time_ns())
        quoted = quote(table, provider_id, model_id, usage, 0)
        if isinstance(expected, Exception):
            assert isinstance(quoted, str)
        else:
            assert not isinstance(quoted, str) and quoted.total == expected[0], model_id


def test_time_of_day_quotes_change_exactly_at_the_bounds():
    """Off-peak prices: the microsecond before and the first one of each stretch of the day."""
    usage = Usage(operation="chat", input_tokens=1_000_000, output_tokens=1_000_000)
    clocked = [
        (provider.id, model.id, model.prices)
        for provider in get_snapshot().providers
        for model in provider.models
        if isinstance(model.prices, list)
        and any(isinstance(price.constraint, TimeOfDateConstraint) for price in model.prices)
    ]
    assert clocked
    table = PriceTable()
    seen = set()
    for provider_id, model_id, prices in clocked:
        bounds = {
            moment
            for price in prices
            if isinstance(price.constraint, TimeOfDateConstraint)
            for moment in (price.constraint.start_time, price.constraint.end_time)
        }
        for day in (date(2025, 3, 3), date(2026, 9, 20)):
            for bound in bounds:
                at = datetime.combine(day, bound).astimezone(UTC)
                first = int(at.timestamp()) * 1_000_000_000
                for start_ns in (first - 1_000, first, first + 1_000):
                    check_quote(table, usage, provider_id, model_id, start_ns)
                    quoted = quote(table, provider_id, model_id, usage, start_ns)
                    seen.add((model_id, quoted.total))
    assert len(seen) > len(clocked), "no price changed at a bound"


def test_quotes_refuse_what_genai_prices_refuses(table):
    """Negative and inconsistent counts, sums past the Decimal precision, unknown models."""
    start_ns = int(datetime(2026, 11, 2, tzinfo=UTC).timestamp()) * 1_000_000_000
    cases = [
        Usage(operation="chat", input_tokens=-5, output_tokens=10),
        Usage(operation="chat", input_tokens=10, output_tokens=-1),
        Usage(operation="chat", input_tokens=100, cache_read_tokens=101),
        Usage(operation="chat", input_tokens=10**27 + 7, output_tokens=3 * 10**26 + 1),
        Usage(operation="chat", input_tokens=100, output_tokens=5, service_tier="flex"),
    ]
    for usage in cases:
        for model in ("gpt-4o-mini", "o3", "gpt-5"):
            check_quote(table, usage, "openai", model, start_ns)
        check_quote(table, usage, "anthropic", "claude-sonnet-4", start_ns)
        check_quote(table, usage, "deepseek", "deepseek-chat", start_ns)
    assert isinstance(quote(table, "openai", "no-such-model", cases[0], start_ns), str)


def test_a_model_without_counted_prices_quotes_zero(table):
    """Free models: the same zero every call."""
    usage = Usage(operation="chat", input_tokens=5_000, output_tokens=300)
    quoted = quote(table, "openrouter", "meta-llama/llama-3.2-1b-instruct:free", usage, 0)
    assert isinstance(quoted, Amounts) and quoted.total == 0
    check_quote(table, usage, "openrouter", "meta-llama/llama-3.2-1b-instruct:free", time_ns())
