"""One ledger row per counted call: the columns both backends store, in one order, and the checks
that keep a value no database column can hold out of a batch.

A row is a plain tuple so that it can be bound, copied or spilled to disk as it is. Costs are
exact decimal text (never floats); tags are the call's tag set as sorted JSON text.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from decimal import Decimal

from spanledger.processor.model import CountedCall

log = logging.getLogger("spanledger.processor.sinks.ledger")

COLUMNS = (
    "trace_id",
    "span_id",
    "time_unix_nano",
    "tags",
    "provider",
    "model",
    "operation",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cost_status",
    "cost_source",
    "cost_usd",
    "billable_usd",
    "pricing_model",
)
Row = tuple[object, ...]
"""Values in the order of ``COLUMNS``."""
TRACE_ID, SPAN_ID, TIME, TAGS = 0, 1, 2, 3
MAX_INTEGER = 2**63 - 1
"""The largest value a 64-bit signed column holds (SQLite INTEGER, PostgreSQL bigint)."""
_REPLACEMENT = "\ufffd"

_TAGS_TEXT_CACHE = 4096
_tags_text: dict[tuple[tuple[object, object], ...], str] = {}
"""Recently stored tag sets and their JSON text: calls mostly repeat a few tag sets."""


def _text(value: str | None) -> str | None:
    """``value`` without NUL characters, which no PostgreSQL text column can hold."""
    if value is not None and "\x00" in value:
        return value.replace("\x00", _REPLACEMENT)
    return value


def tags_json(tags: Mapping[object, object]) -> str:
    """The tag set as JSON text with sorted keys (the same set always gives the same text)."""
    key = tuple(tags.items())
    text = _tags_text.get(key)
    if text is None:
        text = json.dumps({_text(str(k)): _text(str(v)) for k, v in key}, sort_keys=True)
        if len(_tags_text) >= _TAGS_TEXT_CACHE:
            _tags_text.clear()
        _tags_text[key] = text
    return text


def _count(name: str, value: int) -> int:
    if not 0 <= value <= MAX_INTEGER:
        raise ValueError(f"{name} {value} is outside 0..2^63-1")
    return value


def _decimal_text(value: Decimal | None) -> str | None:
    if value is None:
        return None
    if not value.is_finite():
        raise ValueError(f"cost {value} is not a finite number")
    return format(value, "f")


def call_row(call: CountedCall) -> Row:
    """The ledger row of ``call``; ``ValueError`` (or ``AttributeError``/``TypeError`` for a
    call missing parts) when a value cannot be stored."""
    usage, cost = call.usage, call.cost
    priced = cost.status == "priced"
    return (
        call.trace_id,
        call.span_id,
        _count("start time", int(call.start_time_unix_nano)),
        tags_json(call.tags),
        _text(usage.provider),
        _text(usage.model),
        _text(usage.operation),
        _count("input_tokens", usage.input_tokens),
        _count("output_tokens", usage.output_tokens),
        _count("cache_read_tokens", usage.cache_read_tokens),
        _count("cache_write_tokens", usage.cache_write_tokens + usage.cache_write_1h_tokens),
        _count("reasoning_tokens", usage.reasoning_tokens),
        cost.status,
        cost.source,
        _decimal_text(cost.total) if priced else None,
        _decimal_text(cost.billable) if priced else None,
        _text(cost.pricing_model),
    )


def call_rows(calls: Iterable[CountedCall]) -> list[Row]:
    """Rows of ``calls``; a call that cannot be turned into a row is logged and skipped."""
    rows = []
    for call in calls:
        try:
            rows.append(call_row(call))
        except (AttributeError, TypeError, ValueError) as exc:
            log.error("ledger: skipping a malformed call %s: %s", describe_call(call), exc)
    return rows


def describe_call(call: object) -> str:
    """``trace <id> span <id>`` for a log line, whatever shape ``call`` has."""
    return f"trace {getattr(call, 'trace_id', '?')} span {getattr(call, 'span_id', '?')}"


def describe_row(row: Row) -> str:
    """``trace <id> span <id>`` of a row, for a log line."""
    return f"trace {row[TRACE_ID]} span {row[SPAN_ID]}"
