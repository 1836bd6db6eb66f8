"""Price one counted call: provider-reported cost, user overrides, then the genai-prices table."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

from spanledger import semconv
from spanledger.processor.model import ZERO, Cost, Usage
from spanledger.processor.pricing.config import PricingConfig
from spanledger.processor.pricing.model_ids import NoTableId, table_model_id
from spanledger.processor.pricing.overrides import OverrideRule, load_overrides
from spanledger.processor.pricing.price_set import Amounts, PriceSet, PricingError, price_usage
from spanledger.processor.pricing.provider_ids import genai_prices_provider
from spanledger.processor.pricing.table import PriceTable, TableEntry
from spanledger.processor.usage import has_incomplete_totals

log = logging.getLogger(__name__)

_HUNDRED = Decimal(100)
_ROUTE_LIMIT = 50_000


class PriceBook:
    """Prices calls as ``pricing`` configures; never raises, never guesses a $0 price.

    Order: the provider-reported cost when the span has one and ``prefer_reported`` is set; the
    first matching override rule; the genai-prices table. Another tool's own estimate (the
    ``peer_reported`` cost, e.g. LiteLLM's) wins over the table when the span has no usable
    token counts, when the table has no price for the model, or when the span does not say how
    many input tokens were cached (the table would charge them in full); a user's override
    always wins over it. A call none of them prices is ``unpriced`` with the reason, naming
    provider and model.
    """

    def __init__(
        self, config: PricingConfig | None = None, table: PriceTable | None = None
    ) -> None:
        self.config = config or PricingConfig()
        problems = self.config.problems() + self.config.overrides_problems()
        if problems:
            raise ValueError("invalid pricing configuration: " + "; ".join(problems))
        self.rules: list[OverrideRule] = (
            load_overrides(self.config.overrides) if self.config.overrides else []
        )
        self.table = table or PriceTable()
        self._routes: dict[tuple[str | None, str], _Route] = {}
        markup = Decimal(repr(float(self.config.markup_percent)))
        self._markup = 1 + markup / _HUNDRED if markup else None

    def price(self, usage: Usage, start_time_unix_nano: int) -> Cost:
        """The cost of the call ``usage`` describes, which started at ``start_time_unix_nano``."""
        try:
            cost = self._price(usage, start_time_unix_nano)
        except Exception as exc:
            log.exception("pricing failed for %s/%s", usage.provider, usage.model)
            return Cost(status=semconv.STATUS_UNPRICED, reason=f"pricing failed: {exc}")
        if cost.status == semconv.STATUS_PRICED and self._markup is not None:
            cost.billable = cost.total * self._markup
        return cost

    def _price(self, usage: Usage, start_time_unix_nano: int) -> Cost:
        reported = usage.reported_cost
        if reported is not None and self.config.prefer_reported:
            return _reported(reported, self._from_tokens(usage, start_time_unix_nano))
        cost = self._from_tokens(usage, start_time_unix_nano)
        peer = usage.peer_cost
        if peer is not None and (
            cost.status != semconv.STATUS_PRICED
            or (cost.source == semconv.SOURCE_PRICE_TABLE and not usage.cache_reported)
        ):
            return _reported(peer, cost, semconv.SOURCE_PEER_REPORTED)
        if cost.status != semconv.STATUS_PRICED and reported is not None:
            return _reported(reported, cost)
        return cost

    def _from_tokens(self, usage: Usage, start_time_unix_nano: int) -> Cost:
        model = usage.model
        provider = usage.provider
        missing = usage.missing if usage.problems else None
        if missing is not None:
            return _unpriced(f"{missing} ({provider}/{model})")
        if not model:
            return _unpriced(f"the span names no model (provider {provider!r})")
        if usage.problems and has_incomplete_totals(usage):
            problems = "; ".join(usage.problems)
            return _unpriced(f"unusable token counts for {provider}/{model}: {problems}")
        route = self._routes.get((provider, model))
        if route is None:
            route = self._route(provider, model)
        if route.unpriced is not None:
            return _unpriced(route.unpriced)
        try:
            if route.entry is not None:
                amounts = self.table.price(route.entry, usage, start_time_unix_nano)
            else:
                assert route.prices is not None
                amounts = price_usage(route.prices, usage)
        except PricingError as exc:
            return _unpriced(f"{route.name}: {exc}")
        if route.discount is not None:
            amounts = _discounted(amounts, route.discount)
        return _cost(route.source, amounts, route.name)

    def _route(self, provider: str | None, model: str) -> _Route:
        """How calls to ``model`` at ``provider`` are priced, decided once and remembered."""
        if len(self._routes) >= _ROUTE_LIMIT:
            self._routes.clear()
        route = self._routes[(provider, model)] = self._decide(provider, model)
        return route

    def _decide(self, provider: str | None, model: str) -> _Route:
        rule = next((rule for rule in self.rules if rule.matches(provider, model)), None)
        if rule is not None and rule.prices is not None:
            label = rule.provider or provider or "custom"
            return _Route(semconv.SOURCE_OVERRIDE, name=f"{label}/{model}", prices=rule.prices)
        provider_id = genai_prices_provider(provider)
        if provider is not None and provider_id is None:
            return _Route(
                unpriced=f"provider {provider!r} is not in the genai-prices table (model "
                f"{model!r}); add the model to the pricing overrides file"
            )
        try:
            table_id = table_model_id(provider, model)
        except NoTableId as exc:
            return _Route(unpriced=str(exc))
        entry = self.table.lookup(provider_id, table_id)
        if isinstance(entry, str):
            return _Route(
                unpriced=f"no price for model {model!r} of provider {provider!r} in the "
                f"genai-prices table ({entry}); add it to the pricing overrides file"
            )
        discount = rule.discount if rule is not None else None
        source = semconv.SOURCE_OVERRIDE if discount is not None else semconv.SOURCE_PRICE_TABLE
        return _Route(source, name=entry.name, entry=entry, discount=discount)


@dataclass(frozen=True, slots=True)
class _Route:
    """How calls to one (provider, model) are priced."""

    source: str = semconv.SOURCE_PRICE_TABLE
    name: str = ""
    """The pricing model, ``provider/model-id``."""
    prices: PriceSet | None = None
    """An override's own prices."""
    entry: TableEntry | None = None
    """The price-table entry."""
    discount: Decimal | None = None
    """An override's discount on the price-table entry."""
    unpriced: str | None = None
    """Why such calls cannot be priced from their tokens."""


def _cost(source: str, amounts: Amounts, pricing_model: str) -> Cost:
    return Cost(
        status=semconv.STATUS_PRICED,
        source=source,
        total=amounts.total,
        input=amounts.input,
        output=amounts.output,
        cache_read=amounts.cache_read,
        cache_write=amounts.cache_write,
        pricing_model=pricing_model,
    )


def _discounted(amounts: Amounts, discount: Decimal) -> Amounts:
    keep = 1 - discount
    return Amounts(
        amounts.total * keep,
        amounts.input * keep,
        amounts.output * keep,
        amounts.cache_read * keep,
        amounts.cache_write * keep,
    )


def _reported(
    reported: Decimal, basis: Cost, source: str = semconv.SOURCE_PROVIDER_REPORTED
) -> Cost:
    """A reported cost, split like the token-based cost when there is one to follow."""
    parts = [basis.input, basis.output, basis.cache_read, basis.cache_write]
    known = basis.status == semconv.STATUS_PRICED and basis.total > 0
    if known:
        shares = [part * reported / basis.total if part else ZERO for part in parts]
        last = max(index for index, part in enumerate(parts) if part)
        shares[last] = reported - sum((s for i, s in enumerate(shares) if i != last), ZERO)
    else:
        shares = [ZERO, ZERO, ZERO, ZERO]
    return Cost(
        status=semconv.STATUS_PRICED,
        source=source,
        total=reported,
        input=shares[0],
        output=shares[1],
        cache_read=shares[2],
        cache_write=shares[3],
        pricing_model=basis.pricing_model,
    )


def _unpriced(reason: str) -> Cost:
    return Cost(status=semconv.STATUS_UNPRICED, reason=reason)
