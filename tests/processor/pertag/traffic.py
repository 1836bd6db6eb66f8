"""Deterministic counted calls for the per-tag tests, priced exactly like the price table does
(tokens times a decimal price per token)."""

from __future__ import annotations

import random
from decimal import Decimal

from spanledger.processor.model import Cost, CountedCall, Usage
from spanledger.semconv import UNTAGGED

DAY_NS = 86_400 * 10**9
MODELS = {
    # model: (provider, input USD per token, output USD per token)
    "gpt-4o-mini": ("openai", Decimal("0.00000015"), Decimal("0.0000006")),
    "gpt-4o": ("openai", Decimal("0.0000025"), Decimal("0.00001")),
    "claude-sonnet-4-5": ("anthropic", Decimal("0.000003"), Decimal("0.000015")),
}


def call(
    index: int,
    time_ns: int,
    tags: dict[str, str],
    *,
    model: str = "gpt-4o",
    input_tokens: int = 1000,
    output_tokens: int = 100,
    priced: bool = True,
    trace_id: str | None = None,
) -> CountedCall:
    """One counted call; ``priced=False`` makes an unpriced call (unknown model)."""
    provider, per_input, per_output = MODELS.get(model, ("openai", Decimal(0), Decimal(0)))
    usage = Usage(
        operation="chat",
        provider=provider,
        request_model=model,
        response_model=model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=input_tokens // 4,
    )
    if priced:
        cost_in, cost_out = per_input * input_tokens, per_output * output_tokens
        cost = Cost("priced", "price_table", cost_in + cost_out, cost_in, cost_out)
    else:
        cost = Cost("unpriced", reason="model not in the price table")
    return CountedCall(
        trace_id=trace_id or f"{index + 1:032x}",
        span_id=f"{index + 1:016x}",
        start_time_unix_nano=time_ns,
        tags=tags,
        usage=usage,
        cost=cost,
    )


def mixed_traffic(
    count: int,
    start_ns: int,
    *,
    days: int = 1,
    seed: int = 7,
    customers: tuple[str, ...] = ("acme", "globex", "initech", UNTAGGED),
    features: tuple[str, ...] = ("chat", "search", "summarize", UNTAGGED),
    tag_keys: tuple[str, ...] = ("customer", "feature", "team", "env"),
    unpriced_every: int = 9,
) -> list[CountedCall]:
    """``count`` calls spread over ``days`` days from ``start_ns`` with varied tags and models."""
    rng = random.Random(seed)
    calls = []
    for index in range(count):
        tags = dict.fromkeys(tag_keys, UNTAGGED)
        tags["customer"] = rng.choice(customers)
        tags["feature"] = rng.choice(features)
        if "team" in tags:
            tags["team"] = rng.choice(("growth", "platform"))
        if "env" in tags:
            tags["env"] = "prod"
        time_ns = start_ns + rng.randrange(days * DAY_NS)
        calls.append(
            call(
                index,
                time_ns,
                tags,
                model=rng.choice(sorted(MODELS)),
                input_tokens=rng.randrange(50, 5000),
                output_tokens=rng.randrange(5, 800),
                priced=index % unpriced_every != 0,
            )
        )
    return calls
