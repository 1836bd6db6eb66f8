"""Price a complete trace and write its cost attributes: per call, per subtree, per trace.

Work happens once per trace, at flush. Only spans whose bytes contain ``gen_ai.`` or ``llm.`` are
parsed and asked for usage; only spans that receive attributes are parsed and serialized again;
every other span is forwarded as the bytes it arrived as.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from opentelemetry.proto.trace.v1.trace_pb2 import Span

from spanledger import semconv
from spanledger.processor.model import ZERO, Cost, CountedCall, Usage
from spanledger.processor.otlp.attributes import (
    AttributeValue,
    attributes_to_dict,
    set_attributes,
)
from spanledger.processor.otlp.wire import Origin, with_attributes
from spanledger.processor.rollup.buffer import HeldSpan, PendingTrace
from spanledger.processor.rollup.siblings import Record, record_of, same_calls
from spanledger.processor.usage import has_unusable_counts

log = logging.getLogger("spanledger.processor.rollup")

_OWN_PREFIX = b"spanledger."

FOREIGN_COST_KEYS = frozenset(
    {
        semconv.GEN_AI_USAGE_COST,
        semconv.LLM_COST_TOTAL,
        semconv.LLM_COST_PROMPT,
        semconv.LLM_COST_COMPLETION,
    }
)
"""Cost attributes other tools write too: on a span not priced here they move aside, so that
the sum of ``gen_ai.usage.cost`` over a trace's spans is ``spanledger.trace.cost``."""

UsageExtractor = Callable[[Mapping[str, object], str], "Usage | None"]
"""``extract_usage(attributes, span_name)``: the usage of an inference span, None otherwise."""


class Pricer(Protocol):
    """Prices one call's usage as of the call's start time (the service gives it a
    ``spanledger.processor.pricing.PriceBook``)."""

    def price(self, usage: Usage, start_time_unix_nano: int) -> Cost: ...


@dataclass
class AnnotatedTrace:
    """A flushed trace ready to forward: its spans (annotated where needed) and counted calls."""

    spans: list[HeldSpan]
    """Each span's ``HeldSpan``, with the annotated bytes where attributes were written."""
    calls: list[CountedCall] = field(default_factory=list)
    not_counted: int = 0
    root_missing: bool = False


def cost_attributes(cost: Cost) -> dict[str, object]:
    """The attributes a counted inference span gets for ``cost`` (Decimals written as floats)."""
    if cost.status != semconv.STATUS_PRICED:
        values: dict[str, object] = {semconv.COST_STATUS: cost.status}
        if cost.reason:
            values[semconv.COST_UNPRICED_REASON] = cost.reason
        if cost.pricing_model:
            values[semconv.PRICING_MODEL] = cost.pricing_model
        return values
    total = float(cost.total)
    input_cost = float(cost.input)
    output_cost = float(cost.output)
    cached = cost.cache_read or cost.cache_write
    values = {
        semconv.GEN_AI_USAGE_COST: total,
        semconv.COST_INPUT: input_cost,
        semconv.COST_OUTPUT: output_cost,
        semconv.COST_CACHE_READ: float(cost.cache_read) if cached else 0.0,
        semconv.COST_CACHE_WRITE: float(cost.cache_write) if cached else 0.0,
        semconv.COST_STATUS: semconv.STATUS_PRICED,
        semconv.LLM_COST_TOTAL: total,
        semconv.LLM_COST_PROMPT: (
            float(cost.input + cost.cache_read + cost.cache_write) if cached else input_cost
        ),
        semconv.LLM_COST_COMPLETION: output_cost,
    }
    if cost.source:
        values[semconv.COST_SOURCE] = cost.source
    if cost.pricing_model:
        values[semconv.PRICING_MODEL] = cost.pricing_model
    if cost.billable is not None:
        values[semconv.COST_BILLABLE] = float(cost.billable)
    return values


class _Inference:
    __slots__ = ("attributes", "cost", "span", "usage")

    def __init__(self, span: Span, usage: Usage, attributes: dict[str, AttributeValue]) -> None:
        self.span = span
        self.usage = usage
        self.attributes = attributes
        self.cost: Cost | None = None

    @property
    def usable(self) -> bool:
        """Whether the span carries token counts that can be priced."""
        return not self.usage.problems or not has_unusable_counts(self.usage)


class TraceAnnotator:
    """Turns a flushed ``PendingTrace`` into annotated spans and ``CountedCall``s."""

    def __init__(
        self,
        tag_keys: Sequence[str],
        price_book: Pricer,
        extract_usage: UsageExtractor,
    ) -> None:
        self.tag_keys = tuple(tag_keys)
        self.price_book = price_book
        self.extract_usage = extract_usage
        self._resource_attributes: dict[bytes, dict[str, AttributeValue]] = {}

    def annotate(self, trace: PendingTrace) -> AnnotatedTrace:
        """Price and annotate ``trace``; spans it cannot make sense of pass through unchanged."""
        spans = trace.spans
        parsed: dict[bytes, Span] = {}
        foreign: set[bytes] = set()
        inference = self._find_inference(spans, parsed, foreign)
        if not inference and not foreign and not trace.late and trace.early is None:
            return AnnotatedTrace(list(spans.values()))

        written: dict[bytes, dict[str, object]] = {}
        counted, enclosing = _innermost(spans, inference)
        not_counted: dict[bytes, dict[str, object]] = {}
        if trace.late and trace.memory is not None:
            memory = trace.memory
            for span_id in counted:
                if _under_counted(span_id, spans, memory.counted):
                    not_counted[span_id] = _reason(semconv.NOT_COUNTED_INSIDE)
                elif span_id in memory.enclosing:
                    not_counted[span_id] = _reason(semconv.NOT_COUNTED_ENCLOSES)
            counted = [s for s in counted if s not in not_counted]
        if len(counted) > 1 or (counted and enclosing and inference[counted[0]].usage.problems):
            counted = self._one_per_call(spans, inference, counted, enclosing, not_counted)
        counted_set = set(counted)
        result = AnnotatedTrace(spans=[])
        for span_id in inference:
            if span_id not in counted_set:
                written[span_id] = not_counted.get(span_id) or _reason(semconv.NOT_COUNTED_ENCLOSES)
                result.not_counted += 1
        for span_id in counted:
            found = inference[span_id]
            found.cost = self._price(found)
            written[span_id] = cost_attributes(found.cost)
            result.calls.append(self._counted_call(trace, span_id, found, spans[span_id].origin))
        for span_id in foreign:
            written.setdefault(span_id, {})

        if trace.late:
            for span_id in spans:
                written.setdefault(span_id, {})[semconv.ROLLUP_LATE] = True
        else:
            self._write_subtree_costs(spans, inference, counted, written)
            carrier, root_missing = self._carrier(spans, parsed)
            values: dict[str, object] = {}
            if inference:
                values.update(_trace_totals(inference, counted))
                if root_missing:
                    values[semconv.TRACE_ROOT_MISSING] = True
                    result.root_missing = True
            if trace.early is not None:
                values[semconv.TRACE_PARTIAL] = True
            if carrier is not None and values:
                written.setdefault(carrier, {}).update(values)

        if trace.memory is not None:
            trace.memory.note_counted(counted, enclosing)
        annotated = {
            span_id: _with_attributes(
                spans[span_id].data, values, inference.get(span_id), span_id in foreign
            )
            for span_id, values in written.items()
        }
        for span_id, data in annotated.items():
            origin, _, parent, candidate = spans[span_id]
            spans[span_id] = HeldSpan(origin, data, parent, candidate)
        result.spans = list(spans.values())
        return result

    def _find_inference(
        self, spans: dict[bytes, HeldSpan], parsed: dict[bytes, Span], foreign: set[bytes]
    ) -> dict[bytes, _Inference]:
        """The inference spans; ``foreign`` gets the spans carrying another tool's cost."""
        found: dict[bytes, _Inference] = {}
        for span_id, held in spans.items():
            if not held.candidate:
                continue
            span = parsed[span_id] = Span.FromString(held.data)
            attributes = attributes_to_dict(span.attributes)
            if not FOREIGN_COST_KEYS.isdisjoint(attributes):
                foreign.add(span_id)
            try:
                usage = self.extract_usage(attributes, span.name)
            except Exception:
                log.exception("could not read usage from span %r; it is not counted", span.name)
                continue
            if usage is not None:
                found[span_id] = _Inference(span, usage, attributes)
        return found

    def _one_per_call(
        self,
        spans: dict[bytes, HeldSpan],
        inference: dict[bytes, _Inference],
        counted: list[bytes],
        enclosing: set[bytes],
        not_counted: dict[bytes, dict[str, object]],
    ) -> list[bytes]:
        """``counted`` less the spans that record a call another span records better.

        A counted span without usable token counts yields to the nearest inference span
        enclosing it when that span has token counts and encloses no other counted call; then,
        of sibling spans recording one call (see ``siblings``), only the richest stays counted.
        """
        if any(not inference[span_id].usable for span_id in counted):
            counted = _richer_enclosing(spans, inference, counted, enclosing, not_counted)
        if len(counted) < 2 or len({spans[span_id].origin for span_id in counted}) < 2:
            return counted
        records: list[Record] = []
        for span_id in counted:
            found = inference[span_id]
            held = spans[span_id]
            origin = held.origin
            records.append(
                record_of(
                    span_id,
                    parent=held.parent,
                    recorder=(origin.resource, origin.scope),
                    start=found.span.start_time_unix_nano,
                    end=found.span.end_time_unix_nano,
                    usage=found.usage,
                    attributes=found.attributes,
                )
            )
        same = same_calls(records)
        if not same:
            return counted
        for span_id, which in same.items():
            not_counted[span_id] = _reason(which.reason, which.counted)
        return [span_id for span_id in counted if span_id not in same]

    def _price(self, found: _Inference) -> Cost:
        try:
            return self.price_book.price(found.usage, found.span.start_time_unix_nano)
        except Exception as exc:
            log.exception("pricing failed for model %r", found.usage.model)
            return Cost(status=semconv.STATUS_UNPRICED, reason=f"pricing failed: {exc}")

    def _counted_call(
        self, trace: PendingTrace, span_id: bytes, found: _Inference, origin: Origin
    ) -> CountedCall:
        tags: dict[str, str] = {}
        attributes = found.attributes
        resource: dict[str, AttributeValue] | None = None
        for key in self.tag_keys:
            value = attributes.get(key)
            if value is None or value == "":
                if resource is None:
                    resource = self._resource(origin)
                value = resource.get(key)
            tags[key] = semconv.UNTAGGED if _blank(value) else _text(value)
        assert found.cost is not None
        return CountedCall(
            trace_id=trace.trace_id.hex(),
            span_id=span_id.hex(),
            start_time_unix_nano=found.span.start_time_unix_nano,
            tags=tags,
            usage=found.usage,
            cost=found.cost,
        )

    def _resource(self, origin: Origin) -> dict[str, AttributeValue]:
        known = self._resource_attributes.get(origin.resource)
        if known is None:
            if len(self._resource_attributes) >= 1024:
                self._resource_attributes.clear()
            known = attributes_to_dict(origin.parsed_resource().attributes)
            self._resource_attributes[origin.resource] = known
        return known

    @staticmethod
    def _write_subtree_costs(
        spans: dict[bytes, HeldSpan],
        inference: dict[bytes, _Inference],
        counted: list[bytes],
        written: dict[bytes, dict[str, object]],
    ) -> None:
        subtree: dict[bytes, Decimal] = {}
        for span_id in counted:
            cost = inference[span_id].cost
            if cost is None or cost.status != semconv.STATUS_PRICED:
                continue
            for ancestor in _lineage(span_id, spans):
                subtree[ancestor] = subtree.get(ancestor, ZERO) + cost.total
        for span_id, total in subtree.items():
            written.setdefault(span_id, {})[semconv.SUBTREE_COST] = float(total)

    @staticmethod
    def _carrier(
        spans: dict[bytes, HeldSpan], parsed: dict[bytes, Span]
    ) -> tuple[bytes | None, bool]:
        """The span that carries the trace totals, and whether the true root is missing.

        The root (no parent) when present; otherwise the earliest-starting of the topmost spans
        (those whose parent did not arrive). Ties go to the smallest span id.
        """
        tops = [span_id for span_id, held in spans.items() if not held.parent]
        root_missing = not tops
        if root_missing:
            tops = [span_id for span_id, held in spans.items() if held.parent not in spans]
        if not tops:
            tops = list(spans)
        if len(tops) == 1:
            return tops[0], root_missing
        for span_id in tops:
            if span_id not in parsed:
                parsed[span_id] = Span.FromString(spans[span_id].data)
        return min(tops, key=lambda s: (parsed[s].start_time_unix_nano, s)), root_missing


def _with_attributes(
    data: bytes, values: dict[str, object], found: _Inference | None, foreign: bool = False
) -> bytes:
    """``data`` with ``values`` set: appended on the wire unless a key may already be there.

    With ``foreign``, the span's own cost attributes (another tool's) first move aside.
    """
    if foreign:
        span = Span.FromString(data)
        _move_aside(span)
        set_attributes(span, values)
        return span.SerializeToString()
    if found is not None:
        present = not found.attributes.keys().isdisjoint(values)
    else:
        # Every key written on spans that are not counted calls is a ``spanledger.`` key.
        present = _OWN_PREFIX in data
    if not present:
        return with_attributes(data, values)
    span = Span.FromString(data)
    set_attributes(span, values)
    return span.SerializeToString()


def _move_aside(span: Span) -> None:
    """Rename each cost attribute of another tool to ``spanledger.foreign.<key>``."""
    keys = {kv.key for kv in span.attributes}
    for index in reversed(range(len(span.attributes))):
        kv = span.attributes[index]
        if kv.key in FOREIGN_COST_KEYS:
            moved = semconv.FOREIGN_PREFIX + kv.key
            if moved in keys:
                del span.attributes[index]
            else:
                kv.key = moved
                keys.add(moved)


def _reason(reason: str, counted: bytes | None = None) -> dict[str, object]:
    """The attributes of a span that is not counted, for ``reason``."""
    values: dict[str, object] = {
        semconv.COST_STATUS: semconv.STATUS_NOT_COUNTED,
        semconv.COST_NOT_COUNTED_REASON: reason,
    }
    if counted is not None:
        values[semconv.COST_COUNTED_SPAN_ID] = counted.hex()
    return values


def _richer_enclosing(
    spans: dict[bytes, HeldSpan],
    inference: dict[bytes, _Inference],
    counted: list[bytes],
    enclosing: set[bytes],
    not_counted: dict[bytes, dict[str, object]],
) -> list[bytes]:
    """Hand each counted span without usage over to the inference span enclosing only it.

    Such a pair is one call recorded twice, the outer record with usage (our span over a peer's
    span that saw no usage chunk, say). An enclosing span over several counted calls is a
    framework's aggregate and stays not counted.
    """
    below: dict[bytes, int] = {}
    for span_id in counted:
        for ancestor in _lineage(span_id, spans)[1:]:
            if ancestor in inference:
                below[ancestor] = below.get(ancestor, 0) + 1
    chosen: list[bytes] = []
    for span_id in counted:
        found = inference[span_id]
        if not found.usable:
            outer = next(
                (a for a in _lineage(span_id, spans)[1:] if a in inference),
                None,
            )
            if outer is not None and below.get(outer) == 1 and inference[outer].usable:
                not_counted[span_id] = _reason(semconv.NOT_COUNTED_NO_USAGE_NESTED, outer)
                enclosing.discard(outer)
                chosen.append(outer)
                continue
        chosen.append(span_id)
    return chosen


def _lineage(span_id: bytes, spans: dict[bytes, HeldSpan]) -> list[bytes]:
    """``span_id`` and its ancestors present in the trace, nearest first (cycle-safe)."""
    chain = [span_id]
    seen = {span_id}
    parent = spans[span_id].parent
    while parent in spans and parent not in seen:
        chain.append(parent)
        seen.add(parent)
        parent = spans[parent].parent
    return chain


def _innermost(
    spans: dict[bytes, HeldSpan], inference: dict[bytes, _Inference]
) -> tuple[list[bytes], set[bytes]]:
    """Inference spans with no inference span below them, and every ancestor of those.

    The ancestors include the first missing parent of each chain, so a parent arriving late
    is known to enclose a counted call.
    """
    above: set[bytes] = set()
    for span_id in inference:
        parent = spans[span_id].parent
        while parent and parent != span_id and parent not in above:
            above.add(parent)
            held = spans.get(parent)
            if held is None:
                break
            parent = held.parent
    counted = [span_id for span_id in inference if span_id not in above]
    return counted, above


def _under_counted(span_id: bytes, spans: dict[bytes, HeldSpan], counted: set[bytes]) -> bool:
    """Whether an ancestor of ``span_id`` (held, or the first one not held) was counted."""
    parent = spans[span_id].parent
    seen = {span_id}
    while parent and parent not in seen:
        if parent in counted:
            return True
        seen.add(parent)
        held = spans.get(parent)
        if held is None:
            return False
        parent = held.parent
    return False


def _trace_totals(inference: dict[bytes, _Inference], counted: list[bytes]) -> dict[str, object]:
    total = ZERO
    unpriced = 0
    input_tokens = 0
    output_tokens = 0
    for span_id in counted:
        found = inference[span_id]
        input_tokens += found.usage.input_tokens
        output_tokens += found.usage.output_tokens
        if found.cost is not None and found.cost.status == semconv.STATUS_PRICED:
            total += found.cost.total
        else:
            unpriced += 1
    return {
        semconv.TRACE_COST: float(total),
        semconv.TRACE_LLM_CALLS: len(counted),
        semconv.TRACE_INPUT_TOKENS: input_tokens,
        semconv.TRACE_OUTPUT_TOKENS: output_tokens,
        semconv.TRACE_UNPRICED_CALLS: unpriced,
    }


def _text(value: object) -> str:
    return value if isinstance(value, str) else str(value)


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str | list | dict) and not value)
