"""Temporary usage reader and price book with the same signatures as the real ones."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from spanledger.processor.model import Cost, Usage

PER_MILLION = {
    "gpt-4o-mini": ("openai/gpt-4o-mini", "0.15", "0.60", "0.075", "0"),
    "claude-sonnet-4-20250514": ("anthropic/claude-sonnet-4", "3", "15", "0.30", "3.75"),
}


def extract_usage(attributes: Mapping[str, object], span_name: str = "") -> Usage | None:
    operation = attributes.get("gen_ai.operation.name")
    if operation not in ("chat", "text_completion", "embeddings"):
        return None
    if "gen_ai.usage.input_tokens" not in attributes:
        return None
    return Usage(
        operation=str(operation),
        provider=attributes.get("gen_ai.provider.name"),  # type: ignore[arg-type]
        request_model=attributes.get("gen_ai.request.model"),  # type: ignore[arg-type]
        response_model=attributes.get("gen_ai.response.model"),  # type: ignore[arg-type]
        input_tokens=int(attributes.get("gen_ai.usage.input_tokens", 0)),  # type: ignore[arg-type]
        output_tokens=int(attributes.get("gen_ai.usage.output_tokens", 0)),  # type: ignore[arg-type]
        cache_read_tokens=int(attributes.get("gen_ai.usage.cache_read.input_tokens", 0)),  # type: ignore[arg-type]
        cache_write_tokens=int(attributes.get("gen_ai.usage.cache_creation.input_tokens", 0)),  # type: ignore[arg-type]
    )


class PriceBook:
    def __init__(self, markup_percent: float = 0) -> None:
        self.markup = Decimal(str(markup_percent))

    def price(self, usage: Usage, start_time_unix_nano: int) -> Cost:
        entry = PER_MILLION.get(usage.model or "")
        if entry is None:
            return Cost(status="unpriced", reason=f"no price for model {usage.model!r}")
        name, inp, out, read, write = (entry[0], *(Decimal(v) / 10**6 for v in entry[1:]))
        uncached = usage.input_tokens - usage.cache_read_tokens - usage.cache_write_tokens
        cost = Cost(
            status="priced",
            source="price_table",
            input=uncached * inp,
            output=usage.output_tokens * out,
            cache_read=usage.cache_read_tokens * read,
            cache_write=usage.cache_write_tokens * write,
            pricing_model=name,
        )
        cost.total = cost.input + cost.output + cost.cache_read + cost.cache_write
        if self.markup:
            cost.billable = cost.total * (1 + self.markup / 100)
        return cost
