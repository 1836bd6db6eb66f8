"""Recognise one LLM call recorded by several inference spans that are not nested.

Two instrumentations of one process (ours and a peer's), or a framework and an SDK, may each
record the same call in a span of its own without one span being the other's ancestor: a span
started without being made current, or made after the call returned. Such spans are *records*
of one call, and only one of them may be counted.

Two records are of the same call when they come from different recorders (a recorder is one
instrumentation scope of one resource: one recorder records a call once) and

- they carry the same ``gen_ai.response.id``; or
- carrying no conflicting response ids, they have the same parent span, overlap in time, name
  the same model, and report the same output tokens and the same input tokens (or input tokens
  that differ by exactly the cached tokens one of them reports, a dialect leaving cached input
  out); a record without token counts matches on parent, time and model alone.

Never the same call: two records of one recorder; records with different response ids; records
whose providers, models or token counts disagree. Records are grouped one call at a time, in
order of start: a record joins the first call that has no record of its recorder yet and that it
matches, so two identical calls recorded by two recorders stay two calls.

Of each call's records the richest is counted: usable token counts first, then a cost the
provider reported, then how many of the breakdowns it reports (cache reads, cache writes,
1-hour cache writes, reasoning), then this project's own instrumentation before an SDK's own
span before any other, then a cost another tool estimated; ties go to the smallest span id.

Work is linear in the records of a trace (plus sorting them by start), and a trace whose
records all come from one recorder costs one pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from spanledger import semconv
from spanledger.processor.model import Usage
from spanledger.processor.usage import extract, has_unusable_counts

OWN_SCOPE_MARK = b"spanledger.instrumentation"
"""Bytes of the instrumentation scope name of this project's spans."""

SDK_SCOPES = frozenset({b"com.anthropic.sdk.python"})
"""Instrumentation scopes of SDKs' own spans (the anthropic SDK traces its calls itself)."""

_DETAILS = (
    frozenset(extract.CACHE_READ),
    frozenset(extract.CACHE_WRITE + extract.CACHE_WRITE_5M + extract.CACHE_WRITE_1H),
    frozenset(extract.CACHE_WRITE_1H),
    frozenset(extract.REASONING),
)
"""Quantities that break a call's usage down beyond its input and output totals, each under
the names the dialects give it: cache reads, cache writes, 1-hour cache writes, reasoning."""


@dataclass(slots=True)
class Record:
    """One inference span, as a record of a call."""

    span_id: bytes
    parent: bytes
    recorder: tuple[bytes, bytes]
    """The span's resource and instrumentation scope, serialized."""
    start: int
    end: int
    usage: Usage
    response_id: str | None
    models: frozenset[str]
    richness: tuple[int, ...]


@dataclass(slots=True, eq=False)
class _Call:
    records: list[Record] = field(default_factory=list)
    recorders: set[tuple[bytes, bytes]] = field(default_factory=set)
    response_id: str | None = None
    output: int | None = None
    """Output tokens of the first record that has token counts."""
    end: int = 0
    """The latest end of its records."""
    filed: set[object] = field(default_factory=set)
    """The index keys this call is filed under."""


@dataclass(slots=True)
class SameCall:
    """A record that is not counted because another record of the same call is."""

    counted: bytes
    """The span id of the counted record."""
    reason: str
    """``same_response_id`` or ``same_call``."""


@dataclass(slots=True)
class _Index:
    by_response_id: dict[str, list[_Call]] = field(default_factory=dict)
    by_parent_output: dict[tuple[bytes, int | None], list[_Call]] = field(default_factory=dict)
    by_parent: dict[bytes, list[_Call]] = field(default_factory=dict)


def record_of(
    span_id: bytes,
    *,
    parent: bytes,
    recorder: tuple[bytes, bytes],
    start: int,
    end: int,
    usage: Usage,
    attributes: Mapping[str, object],
) -> Record:
    """The record of one inference span, from its ids, origin, times, usage and attributes."""
    response_id = attributes.get(semconv.GEN_AI_RESPONSE_ID)
    if not isinstance(response_id, str) or not response_id.strip():
        response_id = None
    usable = 0 if usage.problems and has_unusable_counts(usage) else 1
    keys = attributes.keys()
    details = sum(not keys.isdisjoint(names) for names in _DETAILS) if usable else 0
    richness = (
        usable,
        usage.reported_cost is not None,
        details,
        _provenance(recorder[1]),
        usage.peer_cost is not None,
    )
    return Record(
        span_id,
        parent,
        recorder,
        start,
        end,
        usage,
        response_id,
        _model_names(usage),
        richness,
    )


def _provenance(scope: bytes) -> int:
    """2 for this project's spans, 1 for an SDK's own spans, 0 for any other."""
    if OWN_SCOPE_MARK in scope:
        return 2
    return 1 if any(name in scope for name in SDK_SCOPES) else 0


def _model_names(usage: Usage) -> frozenset[str]:
    names = set()
    for model in (usage.request_model, usage.response_model):
        if model:
            name = model.strip().lower()
            names.add(name)
            # "openai/gpt-4o-mini" (a router's spelling) names "gpt-4o-mini".
            if "/" in name:
                names.add(name.rsplit("/", 1)[1])
    return frozenset(names)


def same_calls(records: Iterable[Record]) -> dict[bytes, SameCall]:
    """For each record that is not counted because it records a call another record counts,
    which record is counted and why. Records of distinct calls are not in the result."""
    listed = list(records)
    if len(listed) < 2 or len({record.recorder for record in listed}) < 2:
        return {}
    listed.sort(key=lambda record: (record.start, record.span_id))
    index = _Index()
    calls: list[_Call] = []
    for record in listed:
        call = _find_call(record, index)
        if call is None:
            call = _Call()
            calls.append(call)
        _add(call, record, index)
    found: dict[bytes, SameCall] = {}
    for call in calls:
        if len(call.records) < 2:
            continue
        counted = max(call.records, key=_rank)
        for record in call.records:
            if record is counted:
                continue
            shared = record.response_id is not None and record.response_id == counted.response_id
            reason = (
                semconv.NOT_COUNTED_SAME_RESPONSE_ID if shared else semconv.NOT_COUNTED_SAME_CALL
            )
            found[record.span_id] = SameCall(counted.span_id, reason)
    return found


def _rank(record: Record) -> tuple[tuple[int, ...], bytes]:
    # The smallest span id wins a tie: invert the bytes so that ``max`` picks it.
    return record.richness, bytes(255 - b for b in record.span_id)


def _tokens(record: Record) -> tuple[int, int, int] | None:
    """``(input, output, cached)`` when the record has usable token counts."""
    if not record.richness[0]:
        return None
    usage = record.usage
    cached = usage.cache_read_tokens + usage.cache_write_tokens + usage.cache_write_1h_tokens
    return usage.input_tokens, usage.output_tokens, cached


def _find_call(record: Record, index: _Index) -> _Call | None:
    """The first call ``record`` can join, or None."""
    candidates: list[_Call] = []
    if record.response_id is not None:
        candidates += index.by_response_id.get(record.response_id, ())
    tokens = _tokens(record)
    start = record.start
    if tokens is None:
        candidates += _current(index.by_parent, record.parent, start)
    else:
        candidates += _current(index.by_parent_output, (record.parent, tokens[1]), start)
        candidates += _current(index.by_parent_output, (record.parent, None), start)
    for call in candidates:
        if record.recorder not in call.recorders and _joins(record, tokens, call):
            return call
    return None


def _current(table: dict, key: object, start: int) -> list[_Call]:
    """The calls filed under ``key`` that a record starting at ``start`` can overlap.

    Records come in order of start, so a call that ended before ``start`` cannot overlap this
    record or any later one: it leaves the list (it stays findable by response id).
    """
    calls = table.get(key)
    if not calls:
        return []
    calls[:] = [call for call in calls if call.end >= start]
    return calls


def _joins(record: Record, tokens: tuple[int, int, int] | None, call: _Call) -> bool:
    """Whether ``record`` records the call that ``call``'s records record."""
    if (
        record.response_id is not None
        and call.response_id is not None
        and record.response_id != call.response_id
    ):
        return False
    linked = False
    for other in call.records:
        if not _agree(record, tokens, other):
            return False
        if not linked:
            linked = (
                record.response_id is not None and record.response_id == other.response_id
            ) or (
                record.parent == other.parent
                and record.start <= other.end
                and other.start <= record.end
                and bool(record.models)
            )
    return linked


def _agree(record: Record, tokens: tuple[int, int, int] | None, other: Record) -> bool:
    """Whether nothing the two records say contradicts their being one call."""
    if record.response_id is not None and other.response_id is not None:
        # The provider's id names the call, whatever each dialect says of model or tokens.
        return record.response_id == other.response_id
    a, b = record.usage.provider, other.usage.provider
    if a is not None and b is not None and a != b:
        return False
    # Without a shared response id, the model is what names the call.
    if not record.models or not other.models or record.models.isdisjoint(other.models):
        return False
    theirs = _tokens(other)
    if tokens is None or theirs is None:
        return True
    (input_a, output_a, cached_a), (input_b, output_b, cached_b) = tokens, theirs
    if output_a != output_b:
        return False
    return input_a == input_b or input_a + cached_b == input_b or input_b + cached_a == input_a


def _add(call: _Call, record: Record, index: _Index) -> None:
    """Add ``record`` to ``call`` and make the call findable by what the record adds."""
    first_tokens = call.output is None
    call.records.append(record)
    call.recorders.add(record.recorder)
    call.end = max(call.end, record.end)
    if call.response_id is None:
        call.response_id = record.response_id
    keys: list[tuple[dict, object]] = []
    if record.response_id is not None:
        keys.append((index.by_response_id, record.response_id))
    keys.append((index.by_parent, record.parent))
    tokens = _tokens(record)
    if tokens is not None and first_tokens:
        call.output = tokens[1]
        keys.append((index.by_parent_output, (record.parent, tokens[1])))
    elif tokens is None and call.output is None:
        keys.append((index.by_parent_output, (record.parent, None)))
    for table, key in keys:
        tagged = (id(table), key)
        if tagged not in call.filed:
            call.filed.add(tagged)
            table.setdefault(key, []).append(call)
