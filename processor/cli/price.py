"""``spanledger price``: what one call costs, with the breakdown.

    spanledger price --model gpt-4o-mini --provider openai --input 1000 --output 200
    spanledger price --model claude-sonnet-4 --provider anthropic --input 5000 \
        --cache-read 3000 --cache-write 1000 --format json

``--input`` counts ALL input tokens, cached ones included, as the GenAI conventions do; the
cache and audio options say how many of them were cached, written to the cache, or audio.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal

from spanledger import semconv
from spanledger.processor.model import Cost, Usage
from spanledger.processor.pricing.book import PriceBook
from spanledger.processor.pricing.config import PricingConfig
from spanledger.processor.usage import normalize_provider
from spanledger.processor.usage.counts import Unusable, token_count, usd_amount

EXIT_PRICED, EXIT_UNPRICED, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``spanledger price``."""
    parser = argparse.ArgumentParser(
        prog="spanledger price", description="Price one LLM call and show the breakdown."
    )
    parser.add_argument("--model", required=True, help="model id, e.g. gpt-4o-mini")
    parser.add_argument(
        "--provider", help="gen_ai.provider.name, e.g. openai, anthropic, aws.bedrock (optional)"
    )
    counts = (
        ("--input", "all input tokens, cached ones included"),
        ("--output", "all output tokens, reasoning included"),
        ("--cache-read", "input tokens read from the cache"),
        ("--cache-write", "input tokens written to the cache (5-minute lifetime)"),
        ("--cache-write-1h", "input tokens written to the cache with a 1-hour lifetime"),
        ("--reasoning", "output tokens spent on reasoning"),
        ("--input-audio", "input tokens that were audio"),
        ("--output-audio", "output tokens that were audio"),
    )
    for flag, text in counts:
        parser.add_argument(flag, type=_tokens, default=0, metavar="N", help=text)
    parser.add_argument("--reported-cost", type=_usd, metavar="USD", help="provider-reported cost")
    parser.add_argument(
        "--service-tier", metavar="TIER", help="the tier that served the call (flex, batch...)"
    )
    parser.add_argument(
        "--at",
        type=_moment,
        metavar="WHEN",
        help="when the call started, ISO 8601 (2025-06-01, 2025-06-01T14:00:00Z); default now",
    )
    parser.add_argument("--overrides", metavar="FILE", help="a YAML file of user prices")
    parser.add_argument("--config", metavar="FILE", help="take the pricing section of this config")
    parser.add_argument("--markup-percent", type=float, metavar="PCT", help="markup for billable")
    parser.add_argument(
        "--ignore-reported", action="store_true", help="price from tokens even with --reported-cost"
    )
    parser.add_argument("--format", choices=("table", "json"), default="table")
    return parser


def run_price(args: list[str]) -> int:
    """Run ``spanledger price`` with ``args``; return the exit code (1 when unpriced)."""
    parser = build_parser()
    try:
        options = parser.parse_args(args)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code else EXIT_PRICED
    try:
        config = _pricing_config(options)
        book = PriceBook(config)
    except ValueError as exc:
        print(f"spanledger price: {exc}", file=sys.stderr)
        return EXIT_USAGE
    usage = Usage(
        operation="chat",
        provider=normalize_provider(options.provider),
        request_model=options.model,
        input_tokens=options.input,
        output_tokens=options.output,
        cache_read_tokens=options.cache_read,
        cache_write_tokens=options.cache_write,
        cache_write_1h_tokens=options.cache_write_1h,
        reasoning_tokens=options.reasoning,
        input_audio_tokens=options.input_audio,
        output_audio_tokens=options.output_audio,
        reported_cost=options.reported_cost,
        service_tier=options.service_tier.strip().lower() if options.service_tier else None,
    )
    start = options.at if options.at is not None else time.time_ns()
    cost = book.price(usage, start)
    if options.format == "json":
        print(json.dumps(cost_document(usage, cost), indent=2))
    else:
        print(cost_table(usage, cost))
    return EXIT_PRICED if cost.status == semconv.STATUS_PRICED else EXIT_UNPRICED


def _pricing_config(options: argparse.Namespace) -> PricingConfig:
    config = PricingConfig()
    if options.config:
        from spanledger.processor.config import ConfigError, load_config

        try:
            config = load_config(options.config).pricing
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
    if options.overrides:
        config.overrides = options.overrides
    if options.markup_percent is not None:
        config.markup_percent = options.markup_percent
    if options.ignore_reported:
        config.prefer_reported = False
    return config


def cost_document(usage: Usage, cost: Cost) -> dict[str, object]:
    """The JSON form of a priced call: exact decimal amounts as strings, in USD."""
    return {
        "model": usage.model,
        "provider": usage.provider,
        "status": cost.status,
        "source": cost.source,
        "pricing_model": cost.pricing_model,
        "reason": cost.reason,
        "total_usd": _plain(cost.total),
        "input_usd": _plain(cost.input),
        "output_usd": _plain(cost.output),
        "cache_read_usd": _plain(cost.cache_read),
        "cache_write_usd": _plain(cost.cache_write),
        "billable_usd": None if cost.billable is None else _plain(cost.billable),
    }


def cost_table(usage: Usage, cost: Cost) -> str:
    """The human form of a priced call."""
    if cost.status != semconv.STATUS_PRICED:
        return f"unpriced: {cost.reason}"
    rows = [
        ("model", f"{cost.pricing_model}  ({cost.source})"),
        ("input", _money(cost.input, usage.input_tokens - _cached(usage), "uncached input tokens")),
        ("cache read", _money(cost.cache_read, usage.cache_read_tokens, "tokens")),
        (
            "cache write",
            _money(
                cost.cache_write, usage.cache_write_tokens + usage.cache_write_1h_tokens, "tokens"
            ),
        ),
        ("output", _money(cost.output, usage.output_tokens, "tokens")),
        ("total", f"${_plain(cost.total)}"),
    ]
    if cost.billable is not None:
        rows.append(("billable", f"${_plain(cost.billable)}"))
    return "\n".join(f"{name:<12} {value}" for name, value in rows)


def _cached(usage: Usage) -> int:
    return usage.cache_read_tokens + usage.cache_write_tokens + usage.cache_write_1h_tokens


def _money(amount: Decimal, tokens: int, what: str) -> str:
    return f"${_plain(amount):<14} {tokens:,} {what}"


def _plain(amount: Decimal) -> str:
    """``amount`` in positional notation, without trailing zeros."""
    text = f"{amount.normalize():f}"
    return "0" if text in ("0", "-0") else text


def _tokens(text: str) -> int:
    try:
        return token_count(text)
    except Unusable as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _usd(text: str) -> Decimal:
    try:
        return usd_amount(text)
    except Unusable as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _moment(text: str) -> int:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 date or time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = int(moment.timestamp())
    return seconds * 1_000_000_000 + moment.microsecond * 1000
