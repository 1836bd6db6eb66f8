"""Counted calls for the ledger tests: varied tags, models, token kinds, unpriced calls and
marked-up costs, spread over several UTC days, priced exactly (decimal price per token)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal

from spanledger.processor.model import Cost, CountedCall, Usage
from spanledger.semconv import UNTAGGED

DAY_NS = 86_400 * 10**9
START = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp()) * 10**9
"""2026-03-01T00:00Z; fixed, so no test depends on today's date."""
MODELS = {
    # model: (provider, input USD per token, output USD per token)
    "gpt-4o-mini": ("openai", Decimal("0.00000015"), Decimal("0.0000006")),
    "gpt-4o": ("openai", Decimal("0.0000025"), Decimal("0.00001")),
    "claude-sonnet-4-5": ("anthropic", Decimal("0.000003"), Decimal("0.000015")),
}
MARKUP = Decimal("1.15")


def make_call(
    index: int,
    time_ns: int,
    tags: dict[str, str],
    *,
    model: str = "gpt-4o",
    input_tokens: int = 1000,
    output_tokens: int = 100,
    priced: bool = True,
    marked_up: bool = False,
) -> CountedCall:
    """Call number ``index`` (its ids derive from it, so the same index is the same call)."""
    provider, per_input, per_output = MODELS.get(model, ("openai", Decimal(0), Decimal(0)))
    usage = Usage(
        operation="chat" if index % 7 else "embeddings",
        provider=provider,
        request_model=model,
        response_model=model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=input_tokens // 4,
        cache_write_tokens=input_tokens // 10,
        reasoning_tokens=output_tokens // 3,
    )
    if priced:
        cost_in, cost_out = per_input * input_tokens, per_output * output_tokens
        total = cost_in + cost_out
        cost = Cost(
            "priced",
            "price_table" if index % 5 else "provider_reported",
            total,
            cost_in,
            cost_out,
            billable=total * MARKUP if marked_up else None,
            pricing_model=f"{provider}/{model}",
        )
    else:
        cost = Cost("unpriced", reason="model not in the price table")
    return CountedCall(
        trace_id=f"{index // 3 + 1:032x}",
        span_id=f"{index + 1:016x}",
        start_time_unix_nano=time_ns,
        tags=tags,
        usage=usage,
        cost=cost,
    )


def calls(count: int, *, days: int = 20, seed: int = 7, first: int = 0) -> list[CountedCall]:
    """``count`` calls numbered from ``first``, spread over ``days`` days from ``START``."""
    rng = random.Random(seed)
    made = []
    for index in range(first, first + count):
        tags = {
            "customer": rng.choice(("acme", "globex", "initech", UNTAGGED)),
            "feature": rng.choice(("chat", "search", "summarize", UNTAGGED)),
            "team": rng.choice(("growth", "platform")),
            "env": rng.choice(("prod", "prod", "staging")),
        }
        made.append(
            make_call(
                index,
                START + rng.randrange(days * DAY_NS),
                tags,
                model=rng.choice(sorted(MODELS)),
                input_tokens=rng.randrange(50, 5000),
                output_tokens=rng.randrange(5, 800),
                priced=index % 9 != 0,
                marked_up=index % 2 == 0,
            )
        )
    return made
