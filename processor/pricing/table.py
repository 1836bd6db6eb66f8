"""Prices from the genai-prices table, identical to ``genai_prices.calc_price`` and much cheaper.

``calc_price`` resolves the model, selects and validates the price and decomposes the usage on
every call. Here each (provider, model) lookup is cached and each price set is compiled once
into a ``PricePlan`` (see ``spanledger.processor.pricing.plan``). ``quote`` goes further: each
(provider, model) gets one quote function on its first call, the price sets' integer paths
held in one record per entry (its name, rates and links, in a tuple of shared values), so a
call costs two dict lookups, one call and a few integer operations, and touches few memory
lines of its own however many models the table has quoted.

The selected price depends on the call's start time only through ``ConditionalPrice``
constraints: start dates are compiled into a schedule of UTC days, searched with integer
comparisons (a quote walks the dated price sets' own paths, latest first); prices that also
depend on the time of day are resolved through genai-prices once per UTC day and stretch of
the day between two time-of-day bounds. Service tiers select genai-prices' price variants,
resolved the same way, once per model, tier, day and stretch.
"""

from __future__ import annotations

import time
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from functools import partial

from genai_prices.data_snapshot import DataSnapshot, get_snapshot
from genai_prices.types import (
    ModelInfo,
    ModelPrice,
    Provider,
    StartDateConstraint,
    TimeOfDateConstraint,
)

from spanledger.processor.model import Usage
from spanledger.processor.pricing.integer_code import Guards, QuoteRecord
from spanledger.processor.pricing.plan import PricePlan, PricingError, TablePrice

NANOS_PER_DAY = 86_400 * 1_000_000_000
MICROS_PER_DAY = 86_400 * 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CACHE_LIMIT = 50_000
_ALWAYS = -(2**63)
"""A start time before every other."""


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
    """Some prices depend on the time of day (or on another condition than a start date)."""
    clock: tuple[int, ...] | None = None
    """With time-of-day prices, the UTC times of day (µs) at which one starts or ends:
    between two of them the price set depends on the date only. None when the conditions
    are not all start dates and times of day: the price set is then resolved through
    genai-prices on every call."""
    variants: bool = False
    """The model has price variants (service tiers, batch) that a call's context can select."""
    quick: Callable[[Usage, str], TablePrice | None] | None = field(init=False, default=None)
    """The integer fast path of the latest price set (standard tier), for calls from
    ``quick_from`` on; None with time-of-day prices."""
    quick_from: int = field(init=False, default=_ALWAYS)
    """Start time (ns) from which the latest price set applies."""

    def __post_init__(self) -> None:
        if self.by_clock:
            return
        latest = self.latest
        if isinstance(latest, PricePlan):
            self.quick = latest.integer_price
            if self.schedule:
                self.quick_from = self.schedule[0][0] * NANOS_PER_DAY

    @property
    def latest(self) -> PricePlan | str:
        """The price set of the latest start date (the only one, without dated prices)."""
        return self.schedule[0][1] if self.schedule else self.default


class PriceTable:
    """The genai-prices snapshot with cached lookups and compiled price plans."""

    def __init__(self, snapshot: DataSnapshot | None = None) -> None:
        self.snapshot = snapshot or get_snapshot()
        self._entries: dict[str | None, dict[str, TableEntry | str]] = {}
        self._plans: dict[int, tuple[ModelPrice, PricePlan | str]] = {}
        self._in_context: dict[
            tuple[int, tuple[tuple[str, str], ...], int, int], PricePlan | str
        ] = {}
        self._quoters: dict[str | None, dict[str, QuoteRecord]] = {}

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
        """``lookup`` and ``price`` in one call: the price, or why there is none.

        Each (provider, model) gets one quote record, built on its first call (see
        ``quoter``); for a model the table does not have, the record answers the reason.
        """
        try:
            record = self._quoters[provider_id][model]
        except KeyError:
            record = self.quoter(provider_id, model)
        return record[0](usage, start_time_unix_nano, record)

    def quoter(self, provider_id: str | None, model: str) -> QuoteRecord:
        """The quote record of ``model`` at ``provider_id``, built once and remembered.

        ``record[0](usage, start_time_unix_nano, record)`` is ``quote`` without the look-ups.
        For an entry with an integer path, the record holds that path's constants for the
        entry (its name, rates, the start of its latest price) and hands every other case to
        ``price``; for a model the table does not have, it answers the reason.
        """
        quoters = self._quoters.get(provider_id)
        if quoters is None:
            quoters = self._quoters[provider_id] = {}
        record = quoters.get(model)
        if record is not None:
            return record
        if len(quoters) >= _CACHE_LIMIT:
            quoters.clear()
        entry = self.lookup(provider_id, model)
        record = (_refuse, entry) if isinstance(entry, str) else self.entry_quoter(entry)
        quoters[model] = record
        return record

    def entry_quoter(self, entry: TableEntry) -> QuoteRecord:
        """The quote record of ``entry``: its price sets' integer paths, latest first.

        Each dated price set's record hands calls that start before its first day to the one
        before it, as ``plan_at`` walks the schedule; the default price set's takes the rest.
        Whatever a record does not price goes to ``price``. Not remembered: ``quoter`` is.
        """
        slow: Quoter = partial(self._quote_slowly, entry)
        slow_record = (_hand_on, slow)
        if entry.by_clock:
            return slow_record
        dated = [(day * NANOS_PER_DAY, plan) for day, plan in entry.schedule]
        if any(start_from <= 0 for start_from, _ in dated):
            return slow_record
        # The default price set first; the latest dated one, tried first, last.
        order = [(0, entry.default), *reversed(dated)]
        record: QuoteRecord = slow_record
        for index, (start_from, plan) in enumerate(order):
            guards = Guards(
                variants=entry.variants and index == len(order) - 1,
                dated=index > 0,
                oldest=index == 0 and bool(dated),
            )
            fast = None
            if isinstance(plan, PricePlan):
                fast = plan.quoter(
                    entry.name, slow, older=record, start_from=start_from, guards=guards
                )
            # Without an integer path, ``price`` takes every call from this price set on.
            record = fast or slow_record
        return record

    def _quote_slowly(
        self, entry: TableEntry, usage: Usage, start_time_unix_nano: int
    ) -> TablePrice | str:
        try:
            return self.price(entry, usage, start_time_unix_nano)
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
        clock = _clock(info)
        if isinstance(prices, ModelPrice):
            return TableEntry(
                provider, info, name, self._compiled(prices), clock=clock, variants=variants
            )
        if not all(
            item.constraint is None or isinstance(item.constraint, StartDateConstraint)
            for item in prices
        ):
            default = self._compiled(prices[0].prices)
            return TableEntry(
                provider, info, name, default, by_clock=True, clock=clock, variants=variants
            )
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
            provider,
            info,
            name,
            self._compiled(default),
            tuple(schedule),
            clock=clock,
            variants=variants,
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
        if quick is not None and start_time_unix_nano >= entry.quick_from:
            priced = quick(usage, entry.name)
            if priced is not None:
                return priced
        if start_time_unix_nano <= 0:
            start_time_unix_nano = time.time_ns()
        return self.plan_at(entry, start_time_unix_nano).price(usage, entry.name)

    def plan_at(self, entry: TableEntry, start_time_unix_nano: int) -> PricePlan:
        """The compiled price set ``entry`` has at a start time (standard tier)."""
        plan = entry.default
        if entry.by_clock:
            plan = self._resolved(entry, start_time_unix_nano, ())
        else:
            day = start_time_unix_nano // NANOS_PER_DAY
            for first_day, dated in entry.schedule:
                if day >= first_day:
                    plan = dated
                    break
        if isinstance(plan, str):
            raise PricingError(plan)
        return plan

    def _price_in_context(
        self,
        entry: TableEntry,
        usage: Usage,
        start_time_unix_nano: int,
        context: tuple[tuple[str, str], ...],
    ) -> TablePrice:
        """Price with the variant prices ``context`` selects."""
        if start_time_unix_nano <= 0:
            start_time_unix_nano = time.time_ns()
        plan = self._resolved(entry, start_time_unix_nano, context)
        if plan.__class__ is str:
            raise PricingError(plan)
        return plan.price(usage, entry.name)

    def _resolved(
        self, entry: TableEntry, start_time_unix_nano: int, context: tuple[tuple[str, str], ...]
    ) -> PricePlan | str:
        """The price set genai-prices selects for ``entry`` at a start time, in ``context``.

        Within one UTC day and one stretch of the day between two of the entry's time-of-day
        bounds, every condition holds or fails throughout, so the answer is remembered per
        (day, stretch); an entry with other conditions is resolved on every call.
        """
        clock = entry.clock
        if clock is None:
            return self._selected(entry, start_time_unix_nano, context)
        stretch = bisect_right(clock, start_time_unix_nano // 1000 % MICROS_PER_DAY) if clock else 0
        key = (id(entry.model), context, start_time_unix_nano // NANOS_PER_DAY, stretch)
        plan = self._in_context.get(key)
        if plan is None:
            plan = self._selected(entry, start_time_unix_nano, context)
            if len(self._in_context) >= _CACHE_LIMIT:
                self._in_context.clear()
            self._in_context[key] = plan
        return plan

    def _selected(
        self, entry: TableEntry, start_time_unix_nano: int, context: tuple[tuple[str, str], ...]
    ) -> PricePlan | str:
        moment = timestamp(start_time_unix_nano)
        if not context:
            return self._compiled(entry.model.get_prices(moment))
        # A variant's prices are a new price set for every call: compiled, not remembered
        # by identity.
        try:
            return PricePlan(entry.model.get_prices(moment, dict(context)))
        except ValueError as exc:
            return f"the price-table entry is not usable: {exc}"

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


Quoter = Callable[[Usage, int], TablePrice | str]
"""``quoter(usage, start_time_unix_nano)``: one (provider, model)'s price, or why there is none."""


def _refuse(usage: Usage, start_time_unix_nano: int, record: QuoteRecord) -> str:
    """The quote of a model the table does not have: ``record[1]``, the reason."""
    return record[1]


def _hand_on(usage: Usage, start_time_unix_nano: int, record: QuoteRecord) -> TablePrice | str:
    """The quote of an entry without an integer path: ``record[1]``, its slow path, prices."""
    return record[1](usage, start_time_unix_nano)


def _clock(info: ModelInfo) -> tuple[int, ...] | None:
    """The UTC times of day (µs) at which a time-of-day condition of ``info`` starts or ends.

    Conditions of the prices and of the price variants count. None when one is neither a
    start date nor a time of day.
    """
    prices = info.prices if isinstance(info.prices, list) else []
    conditions = [item.constraint for item in prices]
    conditions += [variant.constraint for variant in info.price_variants or ()]
    bounds: set[int] = set()
    for condition in conditions:
        if condition is None or isinstance(condition, StartDateConstraint):
            continue
        if not isinstance(condition, TimeOfDateConstraint):
            return None
        bounds.update((_micros_of_day(condition.start_time), _micros_of_day(condition.end_time)))
    bounds.discard(0)
    return tuple(sorted(bounds))


def _micros_of_day(value: dt_time) -> int:
    """A time of day as microseconds since UTC midnight (a naive time is UTC).

    genai-prices converts a time with an offset to UTC on 1970-01-01; so does this.
    """
    if value.tzinfo is not None:
        value = datetime.combine(date(1970, 1, 1), value).astimezone(UTC).time()
    return ((value.hour * 60 + value.minute) * 60 + value.second) * 1_000_000 + value.microsecond
