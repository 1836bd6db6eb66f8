"""Range checks on counted calls before they reach the sinks (ledger, metrics, budgets).

Spans come from senders the processor does not trust, and one value out of range must not stop
the sinks that store or count it: an SQLite integer holds less than 2^63, a date cannot be made
of a time past the year 2262, a label or row key should not be a megabyte long. Every counted
call passes here on its way from the rollup to the sinks:

- a tag value, provider, model, operation or price-table name longer than 256 characters is cut;
- a start time that is not a time after 1970 and before 2^63 ns (2262) is replaced by the time
  the processor saw the call, and counted (``times_replaced``);
- a call whose cost is not what the price book produces (finite non-negative dollars up to
  ``MAX_CALL_COST_USD``), or then whose token counts are not (whole numbers from 0 to
  ``MAX_TOKENS``, as the usage reader checks them where they enter), is set aside: not handed to
  any sink, counted (``set_aside``) and logged once with its span id. Its span is forwarded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from decimal import Decimal

from spanledger.processor.model import CountedCall
from spanledger.processor.usage.counts import MAX_TOKENS

log = logging.getLogger("spanledger.processor.pipeline")

MAX_TAG_VALUE_CHARS = 256
"""Tag values reaching the sinks (metrics labels, ledger rows) are cut to this many characters."""
MAX_NAME_CHARS = 256
"""Provider, model, operation and price-table names are cut to this many characters."""
MAX_TIME_UNIX_NANO = 2**63 - 1
"""The latest start time kept: SQLite's largest integer (2262-04-11)."""
MAX_CALL_COST_USD = Decimal(1_000_000)
"""No single LLM call costs more; a larger figure is an error upstream."""
_TOKEN_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "reasoning_tokens",
)
_COST_FIELDS = ("total", "input", "output", "cache_read", "cache_write", "billable")
_NAME_FIELDS = ("provider", "request_model", "response_model", "operation")
_ZERO = Decimal(0)
_LOG_EVERY = 60.0
"""Seconds between log lines about replaced start times (they are counted every time)."""


class CallCheck:
    """Checks calls on their way to the sinks; counts what it had to change or set aside.

    ``clock_ns`` gives the wall-clock time (unix nanoseconds) that replaces a bad start time.
    """

    def __init__(self, clock_ns: Callable[[], int] = time.time_ns) -> None:
        self._clock_ns = clock_ns
        self._lock = threading.Lock()
        self.set_aside = 0
        self.times_replaced = 0
        self._next_time_log = 0.0

    def admit(self, calls: Iterable[CountedCall]) -> list[CountedCall]:
        """The calls fit for the sinks, values cut or replaced where needed.

        The common case costs a few comparisons per call: the full check runs only for a call
        whose cost is implausible.
        """
        admitted = []
        for call in calls:
            cost = call.cost
            try:
                plausible = _ZERO <= cost.total <= MAX_CALL_COST_USD and (
                    cost.billable is None or _ZERO <= cost.billable <= MAX_CALL_COST_USD
                )
            except (TypeError, ArithmeticError):  # NaN and other non-numbers do not compare
                plausible = False
            problem = None if plausible else _problem(call)
            if problem is not None:
                self._set_aside(call, problem)
                continue
            _cut_names(call)
            started = call.start_time_unix_nano
            if type(started) is not int or not 0 < started <= MAX_TIME_UNIX_NANO:
                self._replace_time(call)
            admitted.append(call)
        return admitted

    def _set_aside(self, call: CountedCall, problem: str) -> None:
        with self._lock:
            self.set_aside += 1
        log.error(
            "call in span %s of trace %s set aside, not counted in the ledger, metrics or "
            "budgets: %s",
            getattr(call, "span_id", "?"),
            getattr(call, "trace_id", "?"),
            problem,
        )

    def _replace_time(self, call: CountedCall) -> None:
        bad = call.start_time_unix_nano
        call.start_time_unix_nano = self._clock_ns()
        with self._lock:
            self.times_replaced += 1
            now = time.monotonic()
            if now < self._next_time_log:
                return
            self._next_time_log = now + _LOG_EVERY
            count = self.times_replaced
        log.warning(
            "span %s of trace %s starts at %r ns, not a time the ledger can keep: counted at the "
            "time it was seen instead (%d such calls so far)",
            call.span_id,
            call.trace_id,
            bad,
            count,
        )


def _problem(call: CountedCall) -> str | None:
    """Why ``call`` cannot be counted, or None (the full check, for implausible calls)."""
    try:
        usage, cost = call.usage, call.cost
        for name in _TOKEN_FIELDS:
            count = getattr(usage, name)
            if type(count) is not int or not 0 <= count <= MAX_TOKENS:
                return f"{name} is {count!r}, not a whole number from 0 to {MAX_TOKENS:,}"
        for name in _COST_FIELDS:
            amount = getattr(cost, name)
            if amount is None and name == "billable":
                continue
            if not isinstance(amount, Decimal | int) or isinstance(amount, bool):
                return f"cost {name} is {amount!r}, not a Decimal"
            if not Decimal(amount).is_finite() or not 0 <= amount <= MAX_CALL_COST_USD:
                return f"cost {name} is {amount}, not from 0 to {MAX_CALL_COST_USD} USD"
    except AttributeError as exc:
        return f"malformed call: {exc}"
    return None


def _cut_names(call: CountedCall) -> None:
    tags = call.tags
    for value in tags.values():
        if len(value) > MAX_TAG_VALUE_CHARS:
            call.tags = {key: value[:MAX_TAG_VALUE_CHARS] for key, value in tags.items()}
            break
    usage = call.usage
    model = usage.response_model or usage.request_model
    if (model and len(model) > MAX_NAME_CHARS) or len(usage.provider or "") > MAX_NAME_CHARS:
        for name in _NAME_FIELDS:
            value = getattr(usage, name)
            if isinstance(value, str) and len(value) > MAX_NAME_CHARS:
                setattr(usage, name, value[:MAX_NAME_CHARS])
        pricing_model = call.cost.pricing_model
        if isinstance(pricing_model, str) and len(pricing_model) > MAX_NAME_CHARS:
            call.cost.pricing_model = pricing_model[:MAX_NAME_CHARS]
