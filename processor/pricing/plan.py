"""A genai-prices price set compiled for pricing one ``Usage`` cheaply and exactly.

genai-prices prices "leaf" counts (a count minus the finer priced counts inside it) at
``price * count / per`` per unit. A ``PricePlan`` works out once which of a ``Usage``'s counts a
price set prices and how the leaves are carved, and, when every unit is priced per a power of
ten, generates straight-line integer code for it: each of genai-prices' Decimal steps is exact
at the default precision as long as the sum has at most 28 digits, so one exact conversion at
the end gives the same value. Otherwise it computes in Decimal, term by term in genai-prices'
order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from genai_prices.types import ModelPrice, TieredPrices
from genai_prices.units import UnitDef
from genai_prices.validation import validate_priced_units

from spanledger.processor.model import Usage
from spanledger.processor.pricing.integer_code import (
    NO_GUARDS,
    Guards,
    IntegerTerm,
    QuoteRecord,
    count_bits,
    decimal_terms,
    factory_arguments,
    factory_source,
    quote_source,
    record_rate_names,
)
from spanledger.processor.pricing.price_set import (
    COUNT_KEYS,
    REGISTRY,
    PricingError,
    component_of,
    tier_price,
    usage_counts,
)

_UNITS_BY_PRICE_KEY: dict[str, UnitDef] = {unit.price_key: unit for unit in REGISTRY.units.values()}

_ZERO = Decimal(0)

COUNT_FIELD_NAMES: tuple[tuple[str, ...], ...] = (
    ("input_tokens",),
    ("output_tokens",),
    ("cache_read_tokens",),
    ("cache_write_tokens", "cache_write_1h_tokens"),
    ("cache_write_1h_tokens",),
    ("reasoning_tokens",),
    ("input_audio_tokens",),
    ("output_audio_tokens",),
)
"""The ``Usage`` fields each of ``COUNT_KEYS`` adds up (see ``usage_counts``)."""


class TablePrice(NamedTuple):
    """What the table says one call cost, by component, in USD."""

    total: Decimal
    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write: Decimal
    pricing_model: str
    """``provider/model-id`` of the table entry."""


@dataclass(frozen=True, slots=True)
class _Term:
    slot: int
    """Index of the unit's leaf count; -1 for the per-request fee (count 1)."""
    price: Decimal | TieredPrices
    per: int
    component: int


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

    __slots__ = (
        "_carve",
        "_integer_terms",
        "_scale",
        "_slots",
        "_terms",
        "_tiered",
        "code",
        "integer_price",
        "source",
    )

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
        self._integer_terms = integer_terms
        self._scale = Decimal(1).scaleb(scale)
        self.code: str | None = None
        """Source of the integer fast path's factory, when the price set has one."""
        self.integer_price: Callable[[Usage, str], TablePrice | None] | None = None
        """The integer fast path: ``integer_price(usage, name)``, None when it would round."""
        if integer_terms is not None:
            self.code = self._source()
            build = _factory(self.code)
            self.integer_price = build(*factory_arguments(integer_terms), self._scale)

    def quoter(
        self,
        name: str,
        slow: Callable[[Usage, int], TablePrice | str],
        *,
        older: QuoteRecord | None = None,
        start_from: int = 0,
        guards: Guards = NO_GUARDS,
    ) -> QuoteRecord | None:
        """This price set's integer path for one entry, as a quote record (see ``QuoteRecord``).

        The price is named ``name``. With ``guards.dated``, calls that start before
        ``start_from`` (ns) go to ``older``; the calls ``guards`` name and every call the
        integer path cannot price exactly (counts genai-prices refuses, sums past the Decimal
        precision) go to ``slow``. None when the price set has no integer path.
        """
        terms = self._integer_terms
        if terms is None:
            return None
        bits = count_bits(terms, _EXACT_LIMIT)
        if bits < 1:
            return None
        source, reads = self._quote_source(guards)
        # A zero rate's amount is the plain zero, as ``SCALE * 0`` would not be.
        rates = [
            self._scale * terms[index][1] if terms[index][1] else _ZERO
            for index in decimal_terms(terms)
        ]
        values: dict[str, Any] = dict(
            zip(record_rate_names(terms), (*factory_arguments(terms), *rates), strict=True)
        )
        values.update(
            NAME=name, BITS=bits, SCALE=self._scale, FROM=start_from, older=older, slow=slow
        )
        if not terms:
            values["RESULT"] = TablePrice(_ZERO, _ZERO, _ZERO, _ZERO, _ZERO, name)
        return (_quote_function(source), *(_shared(values[key]) for key in reads))

    def _quote_source(self, guards: Guards) -> tuple[str, tuple[str, ...]]:
        """``quote_source`` for this price set, generated once per shape and guards."""
        assert self._integer_terms is not None
        shape = tuple((slot, len(tiers), part) for slot, _, tiers, part in self._integer_terms)
        key = (self._carve, shape, self._tiered, guards)
        known = _QUOTE_SOURCES.get(key)
        if known is None:
            known = _QUOTE_SOURCES[key] = quote_source(
                self._carve, self._integer_terms, self._tiered, COUNT_FIELD_NAMES, guards
            )
        return known

    def _source(self) -> str:
        assert self._integer_terms is not None
        return factory_source(self._carve, self._integer_terms, self._tiered, COUNT_FIELD_NAMES)

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
                price = tier_price(price, input_tokens)
            amount = price * Decimal(count) / term.per
            total += amount
            parts[term.component] += amount
        return total, parts


def _integer_terms(terms: tuple[_Term, ...]) -> tuple[int, tuple[IntegerTerm, ...] | None]:
    """The terms as integer rates at one common power-of-ten scale, when they all have one.

    Every rate must be finite and not negative: the parts then never exceed the total, so
    one check of the total against the precision covers them all.
    """
    for term in terms:
        if term.per != 10 ** (len(str(term.per)) - 1):
            return 0, None
        if not all(price.is_finite() and price >= 0 for price in _all_prices(term.price)):
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

    compiled: list[IntegerTerm] = []
    for term in terms:
        price = term.price
        if isinstance(price, TieredPrices):
            tiers = tuple((tier.start, rate(tier.price, term.per)) for tier in price.tiers)
            compiled.append((term.slot, rate(price.base, term.per), tiers, term.component))
        else:
            compiled.append((term.slot, rate(price, term.per), (), term.component))
    return scale, tuple(compiled)


_QUOTE_SOURCES: dict[tuple[Any, ...], tuple[str, tuple[str, ...]]] = {}
"""``quote_source`` answers by price-set shape and guards: the code depends on nothing else."""

_COMPILED: dict[str, Callable[..., Any]] = {}
"""Functions by source: one per price-set shape and form."""

_NAMESPACE: dict[str, Any] = {
    "new": tuple.__new__,
    "TablePrice": TablePrice,
    "ZERO": _ZERO,
    "LIMIT": _EXACT_LIMIT,
}


def _compiled(source: str, name: str) -> Callable[..., Any]:
    """The function ``name`` that ``source`` defines, compiled once per distinct source."""
    known = _COMPILED.get(source)
    if known is not None:
        return known
    namespace: dict[str, Any] = {**_NAMESPACE, "invalid": _invalid, "negative": _negative}
    exec(compile(source, "<spanledger price plan>", "exec"), namespace)
    built = _COMPILED[source] = namespace[name]
    return built


def _factory(source: str) -> Callable[..., Callable[..., Any]]:
    """The ``build`` function of a ``price`` form's source."""
    return _compiled(source, "build")


def _quote_function(source: str) -> Callable[..., TablePrice | str]:
    """The ``quote`` function of a ``quote`` form's source, shared by every record of its shape."""
    return _compiled(source, "quote")


_SHARED: dict[tuple[type, object], Any] = {}
"""One object per distinct rate, bound, scale and start time, shared by every record."""


def _shared(value: Any) -> Any:
    """For an int or a Decimal, the one shared object equal to it, of its type and (for a
    Decimal) exponent; any other value as it is.

    Records of thousands of models then point at a few hundred numbers, which stay in the
    CPU's caches, instead of each at its own.
    """
    kind = value.__class__
    if kind is not int and kind is not Decimal:
        return value
    key = (kind, value.as_tuple() if kind is Decimal else value)
    known = _SHARED.get(key)
    if known is None:
        if len(_SHARED) >= _SHARED_LIMIT:
            _SHARED.clear()
        known = _SHARED[key] = value
    return known


_SHARED_LIMIT = 100_000


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


def plan_for_prices(prices: Mapping[str, Any]) -> PricePlan:
    """A plan for a user's price set, e.g. ``{"input_mtok": Decimal("0.5"), ...}``."""
    return PricePlan(ModelPrice(**prices))
