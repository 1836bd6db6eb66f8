"""The genai-prices table: each (provider, model) looked up once, each price set built once.

``genai_prices.calc_price`` finds the provider and model, selects the price for the call's
time and service tier, checks it and prices the usage, on every call. Here the lookup is
remembered per (provider, model) and the price set per genai-prices ``ModelPrice``; the
selection by time and tier is genai-prices' own (``ModelInfo.get_prices``), done on each call
only for models whose price changes with time or tier; the arithmetic is
:func:`spanledger.processor.pricing.price_set.price_usage`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from genai_prices.data_snapshot import DataSnapshot, get_snapshot
from genai_prices.types import ModelInfo, ModelPrice

from spanledger.processor.model import Usage
from spanledger.processor.pricing.price_set import (
    Amounts,
    PriceSet,
    PricingError,
    price_set,
    price_usage,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CACHE_LIMIT = 50_000
"""Models remembered per provider: span attributes may name any number of them."""


def price_context(service_tier: str | None) -> dict[str, str] | None:
    """The genai-prices price-variant context of a service tier; None for the standard tier.

    ``batch`` selects the ``processing: batch`` variants; other tiers (``flex``, ``priority``,
    ``default``...) select ``service_tier`` variants of that name.
    """
    if not service_tier or service_tier in ("standard", "auto"):
        return None
    if service_tier == "batch":
        return {"processing": "batch"}
    return {"service_tier": service_tier}


def timestamp(start_time_unix_nano: int) -> datetime:
    """The UTC datetime of a span start time (nanoseconds since the Unix epoch)."""
    return _EPOCH + timedelta(microseconds=start_time_unix_nano // 1000)


@dataclass(frozen=True, slots=True)
class TableEntry:
    """One model of one provider in the table."""

    name: str
    """``provider-id/model-id``."""
    model: ModelInfo
    variants: bool
    """A call's service tier may select price variants: genai-prices applies them only to a
    model of the provider itself, not to one it falls back to (an OpenAI model priced for
    Azure)."""
    fixed: PriceSet | str | None
    """The price set, or why it is unusable, when it never changes with time; None when the
    model has dated or time-of-day prices."""


class PriceTable:
    """The genai-prices snapshot, with its lookups and price sets remembered."""

    def __init__(self, snapshot: DataSnapshot | None = None) -> None:
        self.snapshot = snapshot or get_snapshot()
        self._entries: dict[str | None, dict[str, TableEntry | str]] = {}
        self._price_sets: dict[tuple[tuple[str, int], ...], tuple[ModelPrice, PriceSet | str]] = {}

    def lookup(self, provider_id: str | None, model: str) -> TableEntry | str:
        """The entry for ``model`` at ``provider_id`` (None: any provider), or why there is none."""
        models = self._entries.setdefault(provider_id, {})
        entry = models.get(model)
        if entry is None:
            if len(models) >= _CACHE_LIMIT:
                models.clear()
            entry = models[model] = self._find(provider_id, model)
        return entry

    def price(self, entry: TableEntry, usage: Usage, start_time_unix_nano: int) -> Amounts:
        """What ``usage`` costs at ``entry``'s price when the call started (0 or less: now).

        Raise ``PricingError`` where genai-prices would refuse.
        """
        prices = self.prices_at(entry, start_time_unix_nano, usage.service_tier)
        return price_usage(prices, usage)

    def prices_at(
        self, entry: TableEntry, start_time_unix_nano: int, service_tier: str | None = None
    ) -> PriceSet:
        """The price set genai-prices selects for ``entry`` at a start time and service tier.

        Raise ``PricingError`` when that price set is unusable.
        """
        context = price_context(service_tier) if entry.variants else None
        found: PriceSet | str | None = entry.fixed if context is None else None
        if found is None:
            if start_time_unix_nano <= 0:
                start_time_unix_nano = time.time_ns()
            moment = timestamp(start_time_unix_nano)
            found = self._price_set(entry.model.get_prices(moment, context))
        if isinstance(found, str):
            raise PricingError(found)
        return found

    def _find(self, provider_id: str | None, model: str) -> TableEntry | str:
        try:
            provider, info = self.snapshot.find_provider_model(model, None, provider_id, None)
        except LookupError as exc:
            return str(exc)
        variants = bool(info.price_variants) and any(info is own for own in provider.models)
        fixed = self._price_set(info.prices) if isinstance(info.prices, ModelPrice) else None
        return TableEntry(f"{provider.id}/{info.id}", info, variants, fixed)

    def _price_set(self, model_price: ModelPrice) -> PriceSet | str:
        """The price set of ``model_price``, built once, or why genai-prices refuses it.

        genai-prices hands back the snapshot's own ``ModelPrice``, or for a service tier a
        copy holding some of a variant's prices: every price in it is an object of the
        snapshot, so which objects they are names the price set. The ``ModelPrice`` is kept
        with it, which keeps those objects, and so their ids, alive.
        """
        key = tuple((name, id(value)) for name, value in model_price.__dict__.items())
        known = self._price_sets.get(key)
        if known is not None:
            return known[1]
        try:
            built: PriceSet | str = price_set(model_price)
        except ValueError as exc:
            built = f"the price-table entry is not usable: {exc}"
        if len(self._price_sets) >= _CACHE_LIMIT:
            self._price_sets.clear()
        self._price_sets[key] = (model_price, built)
        return built
