"""Range checks on counted calls before they reach the sinks (ledger, metrics, budgets).

Spans come from senders the processor does not trust, and one value out of range must not stop
the sinks that store or count it: an SQLite integer holds less than 2^63, a date cannot be made
of a time past the year 2262, a label or row key should not be a megabyte long. Every counted
call passes here on its way from the rollup to the sinks:

- a tag value, provider, model, operation or price-table name longer than 256 characters is cut;
- a start time that is not a time after 1970 and before 2^63 ns (2262) is replaced by the time
  the processor saw the call, and counted (``times_replaced``);
- a call whose token counts or cost are not what the usage reader and the price book produce
  (whole numbers from 0 to ``MAX_TOKENS``, finite non-negative dollars up to
  ``MAX_CALL_COST_USD``) is set aside: not handed to any sink, counted (``set_aside``) and
  logged once with its span id. Its span is still forwarded.
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
        """The calls fit for the sinks, values cut or replaced where needed."""
        admitted = []
        for call in calls:
            problem = _problem(call)
            if problem is not None:
                with self._lock:
                    self.set_aside += 1
                log.error(
                    "call in span %s of trace %s set aside, not counted in the ledger, metrics "
                    "or budgets: %s",
                    getattr(call, "span_id", "?"),
                    getattr(call, "trace_id", "?"),
                    problem,
                )
                continue
            _cut_names(call)
            if not _good_time(call.start_time_unix_nano):
                self._replace_time(call)
            admitted.append(call)
        return admitted

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
    """Why ``call`` cannot be counted, or None."""
    try:
        trace_id, span_id = call.trace_id, call.span_id
        if not (_hex(trace_id, 32) and _hex(span_id, 16)):
            return "trace or span id is not hex of the right length"
        usage, cost = call.usage, call.cost
        for name in _TOKEN_FIELDS:
            count = getattr(usage, name)
            if (
                isinstance(count, bool)
                or not isinstance(count, int)
                or not 0 <= count <= MAX_TOKENS
            ):
                return f"{name} is {count!r}, not a whole number from 0 to {MAX_TOKENS:,}"
        for name in _COST_FIELDS:
            amount = getattr(cost, name)
            if amount is None and name == "billable":
                continue
            if not isinstance(amount, Decimal | int) or isinstance(amount, bool):
                return f"cost {name} is {amount!r}, not a Decimal"
            if not Decimal(amount).is_finite() or not 0 <= amount <= MAX_CALL_COST_USD:
                return f"cost {name} is {amount}, not from 0 to {MAX_CALL_COST_USD} USD"
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in call.tags.items()):
            return "a tag is not a string"
    except AttributeError as exc:
        return f"malformed call: {exc}"
    return None


def _hex(text: object, length: int) -> bool:
    if not isinstance(text, str) or len(text) != length:
        return False
    try:
        int(text, 16)
    except ValueError:
        return False
    return True


def _good_time(value: object) -> bool:
    return (
        isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_TIME_UNIX_NANO
    )


def _cut_names(call: CountedCall) -> None:
    if any(len(value) > MAX_TAG_VALUE_CHARS for value in call.tags.values()):
        call.tags = {key: value[:MAX_TAG_VALUE_CHARS] for key, value in call.tags.items()}
    usage = call.usage
    for name in _NAME_FIELDS:
        value = getattr(usage, name)
        if isinstance(value, str) and len(value) > MAX_NAME_CHARS:
            setattr(usage, name, value[:MAX_NAME_CHARS])
    model = call.cost.pricing_model
    if isinstance(model, str) and len(model) > MAX_NAME_CHARS:
        call.cost.pricing_model = model[:MAX_NAME_CHARS]
