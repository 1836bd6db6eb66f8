"""The stand-in's bill: every call it answered, with the tokens it reported, priced like a
provider would price them.

A call is billed when its route answered it (streams included, even when the client went
away); an error scenario is not billed. Prices are the price table's list prices (the same
genai-prices table the processor uses) unless ``prices`` gives a model its own, in USD per
million tokens::

    StandIn(prices={"gpt-4o-mini": {"input": "0.20", "cache_read": "0.10", "output": "0.80"}})

Missing keys default to the input price (``cache_read``, ``cache_write``) and to the
``cache_write`` price (``cache_write_1h``). A model neither ``prices`` nor the table knows is
listed in the usage reports but carries no charge in the cost reports.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

MILLION = Decimal(1_000_000)
TOKEN_TYPES = ("input", "cache_read", "cache_write_5m", "cache_write_1h", "output")
"""Charges of one call, in bill order; ``input`` is the uncached input."""
OPENAI, ANTHROPIC = "openai", "anthropic"
_RECORDS = {
    "/v1/chat/completions": (OPENAI, "completions"),
    "/v1/completions": (OPENAI, "completions"),
    "/v1/responses": (OPENAI, "completions"),
    "/v1/embeddings": (OPENAI, "embeddings"),
    "/v1/messages": (ANTHROPIC, "messages"),
}


@dataclass(frozen=True, slots=True)
class BilledCall:
    """One answered call as the provider's books would keep it."""

    at: float
    """Unix seconds, from the stand-in's clock."""
    provider: str
    record: str
    """``completions``, ``embeddings`` (OpenAI usage records) or ``messages`` (Anthropic)."""
    model: str
    project: str | None
    """The OpenAI project the request named (``OpenAI-Project`` header); None: the default."""
    input: int
    """Uncached input tokens."""
    cache_read: int
    cache_write_5m: int
    cache_write_1h: int
    output: int

    @property
    def input_tokens(self) -> int:
        """All input tokens, cached and cache-written included."""
        return self.input + self.cache_read + self.cache_write_5m + self.cache_write_1h

    @property
    def operation(self) -> str:
        return "embeddings" if self.record == "embeddings" else "chat"


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _usage_of(provider: str, usage: Mapping[str, Any]) -> tuple[int, int, int, int, int]:
    """``(uncached input, cache read, cache write 5m, cache write 1h, output)``."""
    if provider == ANTHROPIC:
        creation = usage.get("cache_creation")
        if isinstance(creation, Mapping):
            write_5m = _int(creation.get("ephemeral_5m_input_tokens"))
            write_1h = _int(creation.get("ephemeral_1h_input_tokens"))
        else:
            write_5m, write_1h = _int(usage.get("cache_creation_input_tokens")), 0
        read = _int(usage.get("cache_read_input_tokens"))
        return (
            _int(usage.get("input_tokens")),
            read,
            write_5m,
            write_1h,
            _int(usage.get("output_tokens")),
        )
    if "prompt_tokens" in usage:
        total = _int(usage.get("prompt_tokens"))
        details = usage.get("prompt_tokens_details")
        output = _int(usage.get("completion_tokens"))
    else:
        total = _int(usage.get("input_tokens"))
        details = usage.get("input_tokens_details")
        output = _int(usage.get("output_tokens"))
    details = details if isinstance(details, Mapping) else {}
    read = min(_int(details.get("cached_tokens")), total)
    write = min(_int(details.get("cache_write_tokens")), total - read)
    return total - read - write, read, write, 0, output


class Billing:
    """The calls the stand-in answered and what they cost; thread-safe."""

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        prices: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.clock = clock
        self.prices = {model: _per_token(table) for model, table in (prices or {}).items()}
        self._calls: list[BilledCall] = []
        self._charges: dict[BilledCall, dict[str, Decimal] | None] = {}
        self._lock = threading.Lock()
        self._book: Any = None

    def record(
        self, path: str, model: str, usage: object, headers: Mapping[str, str]
    ) -> BilledCall | None:
        """Bill an answered call of ``path`` (nothing for routes that bill nothing)."""
        route = _RECORDS.get(path.rstrip("/"))
        if route is None or not isinstance(usage, Mapping):
            return None
        provider, record = route
        project = headers.get("openai-project") if provider == OPENAI else None
        call = BilledCall(
            self.clock(), provider, record, model, project or None, *_usage_of(provider, usage)
        )
        with self._lock:
            self._calls.append(call)
        return call

    def calls(self) -> list[BilledCall]:
        with self._lock:
            return list(self._calls)

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()
            self._charges.clear()

    def charges(self, call: BilledCall) -> dict[str, Decimal] | None:
        """What ``call`` costs per token type (``TOKEN_TYPES``), None when nothing prices it."""
        with self._lock:
            if call in self._charges:
                return self._charges[call]
        found = self._price(call)
        with self._lock:
            self._charges[call] = found
        return found

    def _price(self, call: BilledCall) -> dict[str, Decimal] | None:
        rates = self.prices.get(call.model)
        if rates is not None:
            counts = (call.input, call.cache_read, call.cache_write_5m, call.cache_write_1h)
            return {
                kind: count * rates[kind]
                for kind, count in zip(TOKEN_TYPES, (*counts, call.output), strict=True)
            }
        return self._table_price(call)

    def _table_price(self, call: BilledCall) -> dict[str, Decimal] | None:
        from spanledger.processor.model import Usage
        from spanledger.processor.pricing import PriceBook

        if self._book is None:
            self._book = PriceBook()
        when = int(call.at * 1e9)

        def price(**counts: int) -> Any:
            usage = Usage(call.operation, call.provider, call.model, call.model, **counts)
            return self._book.price(usage, when)

        cost = price(
            input_tokens=call.input_tokens,
            output_tokens=call.output,
            cache_read_tokens=call.cache_read,
            cache_write_tokens=call.cache_write_5m,
            cache_write_1h_tokens=call.cache_write_1h,
        )
        if cost.status != "priced":
            return None
        write_1h = Decimal(0)
        if call.cache_write_1h:
            alone = call.cache_write_1h
            write_1h = price(input_tokens=alone, cache_write_1h_tokens=alone).cache_write
        return {
            "input": cost.input,
            "cache_read": cost.cache_read,
            "cache_write_5m": cost.cache_write - write_1h,
            "cache_write_1h": write_1h,
            "output": cost.output,
        }


def _per_token(table: Mapping[str, Any]) -> dict[str, Decimal]:
    """USD per token from USD per million tokens, with the documented defaults."""
    unknown = set(table) - {"input", "cache_read", "cache_write", "cache_write_1h", "output"}
    if unknown or "input" not in table:
        raise ValueError(
            "a stand-in price needs input (and may give cache_read, cache_write, "
            f"cache_write_1h, output) in USD per million tokens, got {sorted(table)}"
        )

    def rate(key: str, default: Decimal) -> Decimal:
        return Decimal(str(table[key])) / MILLION if key in table else default

    per_input = rate("input", Decimal(0))
    write = rate("cache_write", per_input)
    return {
        "input": per_input,
        "cache_read": rate("cache_read", per_input),
        "cache_write_5m": write,
        "cache_write_1h": rate("cache_write_1h", write),
        "output": rate("output", Decimal(0)),
    }
