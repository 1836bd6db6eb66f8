"""Prices from the genai-prices table, identical to ``genai_prices.calc_price`` and much cheaper.

``calc_price`` re-resolves, re-validates and re-decomposes on every call. Here each
(provider, model) lookup is cached, each selected price set is compiled once into a plan (which
usage counts it prices, at what rate, which finer counts are carved out of coarser ones), and a
call only subtracts integers and does the same Decimal multiplications and divisions in the same
order, so totals are equal to the last digit.

The selected price depends on the call's start time only through ``ConditionalPrice``
constraints: start dates are compiled into a schedule of UTC days, searched with integer
comparisons; a model with time-of-day prices is resolved through genai-prices on every call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
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


COUNT_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("input_tokens", ("input_tokens",)),
    ("output_tokens", ("output_tokens",)),
    ("cache_read_tokens", ("cache_read_tokens",)),
    ("cache_write_tokens", ("cache_write_tokens", "cache_write_1h_tokens")),
    ("cache_write_1h_tokens", ("cache_write_1h_tokens",)),
    ("output_reasoning_tokens", ("reasoning_tokens",)),
    ("input_audio_tokens", ("input_audio_tokens",)),
    ("output_audio_tokens", ("output_audio_tokens",)),
)
"""Each genai-prices usage count a ``Usage`` fills, with the ``Usage`` fields it adds up.

genai-prices counts are nested: ``cache_write_tokens`` includes ``cache_write_1h_tokens``,
``input_tokens`` includes cache reads, writes and audio, ``output_tokens`` reasoning and audio.
"""

COUNT_KEYS: tuple[str, ...] = tuple(key for key, _ in COUNT_FIELDS)


def usage_counts(usage: Usage) -> tuple[int, ...]:
    """The genai-prices usage counts of ``usage``, in ``COUNT_KEYS`` order."""
    return tuple(sum(getattr(usage, name) for name in names) for _, names in COUNT_FIELDS)


def genai_usage(usage: Usage) -> genai_prices.Usage:
    """``usage`` as a ``genai_prices.Usage``: the counts that are not zero.

    With audio, every count is given, unreported ones as zero: cached audio overlaps cache
    reads and audio input, and genai-prices refuses to infer such a count. What we do not
    know was not used.
    """
    counts = {
        key: count for key, count in zip(COUNT_KEYS, usage_counts(usage), strict=True) if count
    }
    if usage.input_audio_tokens or usage.output_audio_tokens:
        counts = {**dict.fromkeys(_REPORTED_KEYS, 0), **counts}
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


def price_context(service_tier: str | None) -> tuple[tuple[str, str], ...]:
    """The genai-prices price-variant context of a service tier; empty for the standard tier.

    ``batch`` selects the ``processing: batch`` variants; other tiers (``flex``, ``priority``,
    ``default``...) select ``service_tier`` variants of that name.
    """
    if not service_tier or service_tier in ("standard", "auto"):
        return ()
    if service_tier == "batch":
        return (("processing", "batch"),)
    return (("service_tier", service_tier),)


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

    __slots__ = ("_carve", "_slots", "_terms", "_tiered", "code", "integer_price", "source")

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
        self.code: str | None = None
        """Source of the integer fast path, when the price set has one."""
        self.integer_price: Callable[[Usage, str], TablePrice | None] | None = None
        """The integer fast path: ``integer_price(usage, name)``, None when it would round."""
        if integer_terms is not None:
            self.code = _integer_source(self._carve, integer_terms, self._tiered)
            self.integer_price = _compile(self.code, Decimal(1).scaleb(scale))

    def price(self, usage: Usage, name: str) -> TablePrice:
        """What ``usage`` costs, named ``name``; ``PricingError`` as in ``compute``."""
        if self.integer_price is not None:
            exact = self.integer_price(usage, name)
            if exact is not None:
                return exact
        total, parts = self.compute(usage_counts(usage))
        return TablePrice(total, *parts, pricing_model=name)

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
                _invalid(source, counts[source])
            leaves[slot] = leaf
        return self._compute_decimal(leaves, counts[0] if self._tiered else 0)

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


def _integer_source(
    carve: tuple[tuple[int, int, tuple[int, ...]], ...],
    terms: tuple[_IntegerTerm, ...],
    tiered: bool,
) -> str:
    """Straight-line Python pricing one ``Usage`` in integers at the plan's common scale.

    It reads the counts it needs, carves the leaves (raising through ``invalid`` when a leaf
    is negative, as genai-prices refuses such usage), sums each component, and returns a
    ``TablePrice`` named ``name`` whose Decimals are exact (multiplying by a power of ten only
    moves the exponent), or None when the sum has more digits than the Decimal precision,
    where genai-prices would have rounded.
    """
    needed = sorted({source for _, source, _ in carve} | ({0} if tiered else set()))
    lines = ["def integer_price(usage, name):"]
    for index in needed:
        fields = " + ".join(f"usage.{name}" for name in COUNT_FIELDS[index][1])
        lines.append(f"    c{index} = {fields}")
    raw = [source for _, source, finer in carve if not finer]
    if raw:
        # An int or-ed with others is negative exactly when one of them is.
        lines.append(f"    if ({' | '.join(f'c{source}' for source in raw)}) < 0:")
        lines.append(f"        negative({', '.join(f'c{source}' for source in raw)})")
    leaf_names: dict[int, str] = {}
    for slot, source, finer in carve:
        if finer:
            leaf_names[slot] = f"l{slot}"
            lines.append(f"    l{slot} = c{source}" + "".join(f" - {leaf_names[o]}" for o in finer))
            lines.append(f"    if l{slot} < 0:")
            lines.append(f"        invalid({source}, c{source})")
        else:
            leaf_names[slot] = f"c{source}"
    sums: list[list[str]] = [[], [], [], []]
    for slot, rate, tiers, component in terms:
        chosen = str(rate)
        for start, tier_rate in tiers:
            chosen = f"({tier_rate} if c0 > {start} else {chosen})"
        sums[component].append(chosen if slot < 0 else f"{chosen} * {leaf_names[slot]}")
    used = [index for index, parts in enumerate(sums) if parts]
    lines += [f"    s{index} = {' + '.join(sums[index])}" for index in used]
    lines += [
        f"    total = {' + '.join(f's{index}' for index in used) or '0'}",
        "    if total >= LIMIT:",
        "        return None",
        "    return new(TablePrice, (",
        "        SCALE * total if total else ZERO,",
        *(
            f"        SCALE * s{index} if s{index} else ZERO," if index in used else "        ZERO,"
            for index in range(4)
        ),
        "        name,",
        "    ))",
    ]
    return "\n".join(lines)


def _compile(source: str, scale: Decimal) -> Callable[[Usage, str], TablePrice | None]:
    namespace: dict[str, Any] = {
        "new": tuple.__new__,
        "TablePrice": TablePrice,
        "D": Decimal,
        "SCALE": scale,
        "ZERO": _ZERO,
        "LIMIT": _EXACT_LIMIT,
        "invalid": _invalid,
        "negative": _negative,
    }
    exec(compile(source, "<spanledger price plan>", "exec"), namespace)
    return namespace["integer_price"]


def _negative(*counts: int) -> None:
    raise PricingError(f"invalid usage: negative token count among {counts}")


def _invalid(source: int, count: int) -> None:
    name = COUNT_KEYS[source]
    if count < 0:
        raise PricingError(f"invalid usage: {name} is negative ({count})")
    raise PricingError(f"invalid usage: {name} ({count}) is less than the counts inside it")


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
    """One model of one provider in the table, with its price sets compiled."""

    provider: Provider
    model: ModelInfo
    name: str
    """``provider-id/model-id``."""
    default: PricePlan | str
    """The price set used when no dated one applies (or the only one)."""
    schedule: tuple[tuple[int, PricePlan | str], ...] = ()
    """(first UTC day since the epoch, price set), latest first, for prices that start on a date."""
    by_clock: bool = False
    """Some prices depend on the time of day: resolved through genai-prices on every call."""
    variants: bool = False
    """The model has price variants (service tiers, batch) that a call's context can select."""
    quick: Callable[[Usage, str], TablePrice | None] | None = field(init=False, default=None)
    """The integer fast path of the only price set, when the price does not depend on time."""

    def __post_init__(self) -> None:
        if not self.schedule and not self.by_clock and isinstance(self.default, PricePlan):
            self.quick = self.default.integer_price


class PriceTable:
    """The genai-prices snapshot with cached lookups and compiled price plans."""

    def __init__(self, snapshot: DataSnapshot | None = None) -> None:
        self.snapshot = snapshot or get_snapshot()
        self._entries: dict[str | None, dict[str, TableEntry | str]] = {}
        self._plans: dict[int, tuple[ModelPrice, PricePlan | str]] = {}
        self._in_context: dict[tuple[int, tuple[tuple[str, str], ...], int], PricePlan | str] = {}

    def lookup(self, provider_id: str | None, model: str) -> TableEntry | str:
        """The entry for ``model`` at ``provider_id`` (None: any provider), or why there is none."""
        models = self._entries.get(provider_id)
        if models is None:
            models = self._entries[provider_id] = {}
        entry = models.get(model)
        if entry is None:
            if len(models) >= _CACHE_LIMIT:
                models.clear()
            entry = models[model] = self._find(provider_id, model)
        return entry

    def quote(
        self, provider_id: str | None, model: str, usage: Usage, start_time_unix_nano: int
    ) -> TablePrice | str:
        """``lookup`` and ``price`` in one call: the price, or why there is none."""
        entry = self.lookup(provider_id, model)
        if entry.__class__ is str:
            return entry  # type: ignore[return-value]
        try:
            return self.price(entry, usage, start_time_unix_nano)  # type: ignore[arg-type]
        except PricingError as exc:
            return str(exc)

    def _find(self, provider_id: str | None, model: str) -> TableEntry | str:
        try:
            provider, info = self.snapshot.find_provider_model(model, None, provider_id, None)
        except LookupError as exc:
            return str(exc)
        name = f"{provider.id}/{info.id}"
        # genai-prices applies price variants only to a model of the provider itself, not to
        # one it falls back to (an OpenAI model priced for Azure).
        variants = bool(info.price_variants) and any(info is model for model in provider.models)
        prices = info.prices
        if isinstance(prices, ModelPrice):
            return TableEntry(provider, info, name, self._compiled(prices), variants=variants)
        if not all(
            item.constraint is None or isinstance(item.constraint, StartDateConstraint)
            for item in prices
        ):
            default = self._compiled(prices[0].prices)
            return TableEntry(provider, info, name, default, by_clock=True, variants=variants)
        # genai-prices takes the last price whose constraint holds, else the first price.
        schedule = []
        default = prices[0].prices
        for item in reversed(prices):
            if item.constraint is None:
                default = item.prices
                break
            first_day = (item.constraint.start_date - _EPOCH.date()).days
            schedule.append((first_day, self._compiled(item.prices)))
        return TableEntry(
            provider, info, name, self._compiled(default), tuple(schedule), variants=variants
        )

    def price(self, entry: TableEntry, usage: Usage, start_time_unix_nano: int) -> TablePrice:
        """Price ``usage`` with ``entry``; raise ``PricingError`` when genai-prices would refuse.

        A start time of zero or less means "now".
        """
        if entry.variants and usage.service_tier:
            context = price_context(usage.service_tier)
            if context:
                return self._price_in_context(entry, usage, start_time_unix_nano, context)
        quick = entry.quick
        if quick is not None:
            priced = quick(usage, entry.name)
            if priced is not None:
                return priced
        plan = entry.default
        if entry.schedule or entry.by_clock:
            if start_time_unix_nano <= 0:
                start_time_unix_nano = time.time_ns()
            if entry.by_clock:
                moment = timestamp(start_time_unix_nano)
                plan = self._compiled(entry.model.get_prices(moment))
            else:
                day = start_time_unix_nano // NANOS_PER_DAY
                for first_day, dated in entry.schedule:
                    if day >= first_day:
                        plan = dated
                        break
        if plan.__class__ is str:
            raise PricingError(plan)
        fast = plan.integer_price
        if fast is not None:
            priced = fast(usage, entry.name)
            if priced is not None:
                return priced
        return plan.price(usage, entry.name)

    def _price_in_context(
        self,
        entry: TableEntry,
        usage: Usage,
        start_time_unix_nano: int,
        context: tuple[tuple[str, str], ...],
    ) -> TablePrice:
        """Price with the variant prices ``context`` selects (cached per UTC day)."""
        if start_time_unix_nano <= 0:
            start_time_unix_nano = time.time_ns()
        key = (id(entry.model), context, start_time_unix_nano // NANOS_PER_DAY)
        plan = None if entry.by_clock else self._in_context.get(key)
        if plan is None:
            moment = timestamp(start_time_unix_nano)
            model_price = entry.model.get_prices(moment, dict(context))
            try:
                plan = PricePlan(model_price)
            except ValueError as exc:
                plan = f"the price-table entry is not usable: {exc}"
            if not entry.by_clock:
                if len(self._in_context) >= _CACHE_LIMIT:
                    self._in_context.clear()
                self._in_context[key] = plan
        if plan.__class__ is str:
            raise PricingError(plan)
        return plan.price(usage, entry.name)

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
