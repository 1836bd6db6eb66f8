"""Prices from the genai-prices table, identical to ``genai_prices.calc_price`` and much cheaper.

``calc_price`` re-resolves, re-validates and re-decomposes on every call. Here each
(provider, model) lookup is cached, each selected price set is compiled once into a plan (which
usage counts it prices, at what rate, which finer counts are carved out of coarser ones), and a
call only subtracts integers and does the same Decimal multiplications and divisions in the same
order, so totals are equal to the last digit.

The selected price depends on the call's start time only through ``ConditionalPrice``
constraints: price sets whose constraints are all start dates are cached per UTC day; a model
with time-of-day prices is resolved per call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

import genai_prices
from genai_prices.data_snapshot import DataSnapshot, get_snapshot
from genai_prices.data_units import unit_data
from genai_prices.types import (
    ModelInfo,
    ModelPrice,
    Provider,
    StartDateConstraint,
    TieredPrices,
)
from genai_prices.units import UnitDef, UnitRegistry
from genai_prices.validation import validate_priced_units

from spanledger.processor.model import Usage

INPUT, OUTPUT, CACHE_READ, CACHE_WRITE = range(4)
"""Indexes of the cost components."""

NANOS_PER_DAY = 86_400 * 1_000_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ZERO = Decimal(0)
_CACHE_LIMIT = 50_000

REGISTRY = UnitRegistry(unit_data)
_UNITS_BY_PRICE_KEY: dict[str, UnitDef] = {unit.price_key: unit for unit in REGISTRY.units.values()}
_REPORTED_KEYS: tuple[str, ...] = tuple(key for key in REGISTRY.units if key != "requests")


COUNT_KEYS: tuple[str, ...] = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_reasoning_tokens",
    "input_audio_tokens",
    "output_audio_tokens",
)
"""The genai-prices usage counts a ``Usage`` fills, in the order of ``usage_counts``."""


def usage_counts(usage: Usage) -> tuple[int, ...]:
    """The genai-prices usage counts of ``usage``, in ``COUNT_KEYS`` order.

    genai-prices counts are nested: ``cache_write_tokens`` includes ``cache_write_1h_tokens``,
    ``input_tokens`` includes cache reads, writes and audio, ``output_tokens`` reasoning and audio.
    """
    return (
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_read_tokens,
        usage.cache_write_tokens + usage.cache_write_1h_tokens,
        usage.cache_write_1h_tokens,
        usage.reasoning_tokens,
        usage.input_audio_tokens,
        usage.output_audio_tokens,
    )


def genai_usage(usage: Usage) -> genai_prices.Usage:
    """``usage`` as a ``genai_prices.Usage`` with every count explicit (unreported ones zero).

    Explicit zeros keep genai-prices from refusing to infer a count that two reported ones
    overlap on (cached audio, for instance): what we do not know was not used.
    """
    counts = dict.fromkeys(_REPORTED_KEYS, 0)
    counts.update(zip(COUNT_KEYS, usage_counts(usage), strict=True))
    return genai_prices.Usage(**counts)


def component_of(unit: UnitDef) -> int:
    """Which cost component a genai-prices unit belongs to.

    Output-direction units are output; cache reads and cache writes are their own components;
    every other unit (uncached input of any modality, per-request and per-search fees) is input.
    """
    dimensions = unit.dimensions
    if dimensions.get("direction") == "output":
        return OUTPUT
    token_type = dimensions.get("token_type")
    if token_type == "cache_read":
        return CACHE_READ
    if token_type == "cache_write":
        return CACHE_WRITE
    return INPUT


class TablePrice(NamedTuple):
    """What the table says one call cost, by component, in USD."""

    total: Decimal
    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write: Decimal
    pricing_model: str
    """``provider/model-id`` of the table entry."""


class PricingError(ValueError):
    """The usage cannot be priced with this price set (the message says why)."""


@dataclass(frozen=True, slots=True)
class _Term:
    slot: int
    """Index of the unit's leaf count; -1 for the per-request fee (count 1)."""
    price: Decimal | TieredPrices
    per: int
    component: int


_IntegerTerm = tuple[int, int, tuple[tuple[int, int], ...], int]
"""(leaf slot, rate, ((tier start, tier rate), ...), component) at the plan's common scale."""

_EXACT_LIMIT = 10**28
"""Integers below this have at most 28 digits, the default Decimal precision."""


class PricePlan:
    """One price set, compiled: its terms in genai-prices' order and how to carve leaf counts.

    genai-prices prices "leaf" counts: a coarse count minus the finer priced counts inside it
    (input tokens minus cache reads, when cache reads have their own price). Each term's amount
    is ``price * count / per``. When every ``per`` is a power of ten and the sum fits in the
    Decimal precision, every step of that computation is exact, so it is done once in integers
    at a common scale; otherwise in Decimal, step by step in genai-prices' order.
    """

    __slots__ = ("_carve", "_integer", "_slots", "_terms", "_tiered", "source")

    def __init__(self, model_price: ModelPrice) -> None:
        self.source = model_price
        units: list[UnitDef] = []
        prices: list[Decimal | TieredPrices] = []
        for key, value in model_price.__dict__.items():
            if key.startswith("_") or value is None or key not in _UNITS_BY_PRICE_KEY:
                continue
            units.append(_UNITS_BY_PRICE_KEY[key])
            prices.append(value)
        validate_priced_units(units, REGISTRY)
        leaves = [unit for unit in units if unit.usage_key != "requests"]
        leaves.sort(key=lambda unit: (-len(unit.dimensions), unit.usage_key))
        slot_of = {unit.usage_key: index for index, unit in enumerate(leaves)}
        # A unit no Usage count feeds (web searches, pages...) always has a zero leaf: it is
        # left out of the carving and of the terms, which changes no amount.
        self._carve = tuple(
            (
                slot_of[unit.usage_key],
                COUNT_KEYS.index(unit.usage_key),
                tuple(
                    slot_of[other.usage_key]
                    for other in leaves
                    if other is not unit
                    and other.usage_key in COUNT_KEYS
                    and unit.dimensions.items() <= other.dimensions.items()
                ),
            )
            for unit in leaves
            if unit.usage_key in COUNT_KEYS
        )
        self._slots = len(leaves)
        self._terms = tuple(
            _Term(slot_of.get(unit.usage_key, -1), price, unit.per, component_of(unit))
            for unit, price in zip(units, prices, strict=True)
            if unit.usage_key in COUNT_KEYS or unit.usage_key == "requests"
        )
        self._tiered = any(isinstance(price, TieredPrices) for price in prices)
        scale, integer_terms = _integer_terms(self._terms)
        self._integer = (
            None if integer_terms is None else _integer_sum(integer_terms, Decimal(1).scaleb(scale))
        )

    def compute(self, counts: tuple[int, ...]) -> tuple[Decimal, list[Decimal]]:
        """Total and the four components for ``counts`` (``usage_counts`` order).

        Raise ``PricingError`` when finer counts add up to more than the count holding them,
        as genai-prices does.
        """
        leaves = [0] * self._slots
        for slot, source, finer in self._carve:
            leaf = counts[source]
            for other in finer:
                leaf -= leaves[other]
            if leaf < 0:
                name = COUNT_KEYS[source]
                raise PricingError(
                    f"invalid usage: the counts inside {name} add up to more than {name} "
                    f"({counts[source]})"
                )
            leaves[slot] = leaf
        input_tokens = counts[0] if self._tiered else 0
        if self._integer is not None:
            exact = self._integer(leaves, input_tokens)
            if exact is not None:
                return exact
        return self._compute_decimal(leaves, input_tokens)

    def _compute_decimal(
        self, leaves: list[int], input_tokens: int
    ) -> tuple[Decimal, list[Decimal]]:
        total = _ZERO
        parts = [_ZERO, _ZERO, _ZERO, _ZERO]
        for term in self._terms:
            count = leaves[term.slot] if term.slot >= 0 else 1
            if not count:
                continue
            price = term.price
            if isinstance(price, TieredPrices):
                price = _tier_price(price, input_tokens)
            amount = price * Decimal(count) / term.per
            total += amount
            parts[term.component] += amount
        return total, parts


def _integer_terms(terms: tuple[_Term, ...]) -> tuple[int, tuple[_IntegerTerm, ...] | None]:
    """The terms as integer rates at one common power-of-ten scale, when they all have one."""
    for term in terms:
        if term.per != 10 ** (len(str(term.per)) - 1):
            return 0, None
    exponents = [
        _exponent(price) - (len(str(term.per)) - 1)
        for term in terms
        for price in _all_prices(term.price)
    ]
    scale = min(exponents, default=0)

    def rate(price: Decimal, per: int) -> int:
        exponent = _exponent(price)
        coefficient = int(price.scaleb(-exponent))
        return coefficient * 10 ** (exponent - (len(str(per)) - 1) - scale)

    compiled: list[_IntegerTerm] = []
    for term in terms:
        price = term.price
        if isinstance(price, TieredPrices):
            tiers = tuple((tier.start, rate(tier.price, term.per)) for tier in price.tiers)
            compiled.append((term.slot, rate(price.base, term.per), tiers, term.component))
        else:
            compiled.append((term.slot, rate(price, term.per), (), term.component))
    return scale, tuple(compiled)


def _integer_sum(
    terms: tuple[_IntegerTerm, ...], scale: Decimal
) -> Callable[[list[int], int], tuple[Decimal, list[Decimal]] | None]:
    """A function summing ``terms`` over leaf counts in integers, as straight-line code.

    It returns the total and the four components as Decimals (exact: multiplying by a power
    of ten only moves the exponent), or None when the sum has more digits than the Decimal
    precision, where genai-prices would have rounded.
    """
    sums: list[list[str]] = [[], [], [], []]
    for slot, rate, tiers, component in terms:
        chosen = str(rate)
        for start, tier_rate in tiers:
            chosen = f"({tier_rate} if input_tokens > {start} else {chosen})"
        sums[component].append(chosen if slot < 0 else f"{chosen} * leaves[{slot}]")
    lines = [
        "def integer_sum(leaves, input_tokens):",
        *(f"    s{index} = {' + '.join(parts) or '0'}" for index, parts in enumerate(sums)),
        "    total = s0 + s1 + s2 + s3",
        "    if total >= LIMIT:",
        "        return None",
        "    return (",
        "        D(total) * SCALE if total else ZERO,",
        "        [" + ", ".join(f"D(s{i}) * SCALE if s{i} else ZERO" for i in range(4)) + "],",
        "    )",
    ]
    namespace: dict[str, Any] = {"D": Decimal, "SCALE": scale, "ZERO": _ZERO, "LIMIT": _EXACT_LIMIT}
    exec("\n".join(lines), namespace)
    return namespace["integer_sum"]


def _exponent(price: Decimal) -> int:
    return int(price.as_tuple().exponent)


def _all_prices(price: Decimal | TieredPrices) -> list[Decimal]:
    if isinstance(price, TieredPrices):
        return [price.base, *(tier.price for tier in price.tiers)]
    return [price]


def _tier_price(prices: TieredPrices, input_tokens: int) -> Decimal:
    """The rate for every token once the input crosses a tier's start (the highest crossed wins)."""
    chosen = prices.base
    for tier in prices.tiers:
        if input_tokens > tier.start:
            chosen = tier.price
    return chosen


def timestamp(start_time_unix_nano: int) -> datetime:
    """The UTC datetime of a span start time (nanoseconds since the Unix epoch)."""
    return _EPOCH + timedelta(microseconds=start_time_unix_nano // 1000)


@dataclass(slots=True)
class TableEntry:
    """One model of one provider in the table, with what its price selection depends on."""

    provider: Provider
    model: ModelInfo
    name: str
    """``provider-id/model-id``."""
    dated: bool
    """Its prices change with the date only (cached per day); False with time-of-day prices."""
    fixed: PricePlan | str | None
    """The compiled (or refused) price set when the model has only one."""


class PriceTable:
    """The genai-prices snapshot with cached lookups and compiled price plans."""

    def __init__(self, snapshot: DataSnapshot | None = None) -> None:
        self.snapshot = snapshot or get_snapshot()
        self._entries: dict[tuple[str | None, str], TableEntry | str] = {}
        self._selected: dict[tuple[int, int], PricePlan | str] = {}
        self._plans: dict[int, tuple[ModelPrice, PricePlan | str]] = {}

    def lookup(self, provider_id: str | None, model: str) -> TableEntry | str:
        """The entry for ``model`` at ``provider_id`` (None: any provider), or why there is none."""
        key = (provider_id, model)
        entry = self._entries.get(key)
        if entry is None:
            if len(self._entries) >= _CACHE_LIMIT:
                self._entries.clear()
            entry = self._entries[key] = self._find(provider_id, model)
        return entry

    def _find(self, provider_id: str | None, model: str) -> TableEntry | str:
        try:
            provider, info = self.snapshot.find_provider_model(model, None, provider_id, None)
        except LookupError as exc:
            return str(exc)
        prices = info.prices
        if isinstance(prices, ModelPrice):
            fixed = self._compiled(prices)
            return TableEntry(provider, info, f"{provider.id}/{info.id}", True, fixed)
        dated = all(
            item.constraint is None or isinstance(item.constraint, StartDateConstraint)
            for item in prices
        )
        return TableEntry(provider, info, f"{provider.id}/{info.id}", dated, None)

    def price(self, entry: TableEntry, usage: Usage, start_time_unix_nano: int) -> TablePrice:
        """Price ``usage`` with ``entry``; raise ``PricingError`` when genai-prices would refuse.

        A start time of zero or less means "now".
        """
        plan = entry.fixed
        if plan is None:
            if start_time_unix_nano <= 0:
                start_time_unix_nano = time.time_ns()
            plan = self._dated_plan(entry, start_time_unix_nano)
        if plan.__class__ is str:
            raise PricingError(plan)
        total, (input_, output, cache_read, cache_write) = plan.compute(usage_counts(usage))
        return TablePrice(total, input_, output, cache_read, cache_write, entry.name)

    def _dated_plan(self, entry: TableEntry, start_time_unix_nano: int) -> PricePlan | str:
        if not entry.dated:
            return self._compiled(entry.model.get_prices(timestamp(start_time_unix_nano)))
        key = (id(entry.model), start_time_unix_nano // NANOS_PER_DAY)
        plan = self._selected.get(key)
        if plan is None:
            if len(self._selected) >= _CACHE_LIMIT:
                self._selected.clear()
            model_price = entry.model.get_prices(timestamp(start_time_unix_nano))
            plan = self._selected[key] = self._compiled(model_price)
        return plan

    def _compiled(self, model_price: ModelPrice) -> PricePlan | str:
        known = self._plans.get(id(model_price))
        if known is not None:
            return known[1]
        try:
            plan: PricePlan | str = PricePlan(model_price)
        except ValueError as exc:
            plan = f"the price-table entry is not usable: {exc}"
        # Holding the price set keeps its id from being reused by another object.
        self._plans[id(model_price)] = (model_price, plan)
        return plan


def plan_for_prices(prices: Mapping[str, Any]) -> PricePlan:
    """A plan for a user's price set, e.g. ``{"input_mtok": Decimal("0.5"), ...}``."""
    return PricePlan(ModelPrice(**prices))
