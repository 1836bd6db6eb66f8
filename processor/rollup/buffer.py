"""Spans waiting for the rest of their trace, and what is remembered of traces already flushed.

``TraceBuffer`` is plain bookkeeping with no lock and no clock of its own: the pipeline calls it
under its lock and passes the current time in. Traces are kept in order of last activity, so the
idle ones are found at the front without scanning.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from spanledger.processor.components import Backpressure, PermanentError
from spanledger.processor.otlp.wire import Origin
from spanledger.processor.rollup.config import RollupConfig

_SPAN_ID_BYTES = 8
_NO_IDS: frozenset[bytes] = frozenset()

EARLY_CAPACITY = "capacity"
"""Flushed before its time because ``max_traces`` or ``max_spans`` was reached."""
EARLY_MAX_WAIT = "max_wait"
"""Flushed because it was still receiving spans ``max_wait`` seconds after its first one."""

Arrival = tuple[bytes, bytes, bytes, bytes, Origin, bool]
"""One incoming span: trace id, span id, parent span id, serialized span, origin, and whether
it might be an inference span (it has a key under a dialect's prefix: ``usage.is_candidate``)."""


class HeldSpan(NamedTuple):
    """A span waiting in the buffer, kept in its serialized form.

    A tuple of immutable values, so Python's cycle collector stops tracking it: a buffer of a
    million spans does not slow every collection down. Its first two items are the
    ``(origin, span bytes)`` pair that ``wire.encode`` takes.
    """

    origin: Origin
    data: bytes
    parent: bytes
    candidate: bool


_new_held = tuple.__new__
"""Builds a ``HeldSpan`` without the NamedTuple's Python-level ``__new__``, once per received
span: 1,300 fewer instructions per span, 3.8% of the whole pipeline at 0% GenAI spans (callgrind,
``pipeline 0%`` of ``bench/span_floor.py``: 137.4M against 132.2M instructions for 4,000 spans)."""


class FlushedTrace:
    """What is remembered of a flushed trace to recognise duplicates and nesting in late spans.

    Span ids are kept packed in one bytes object (8 bytes each), which costs a fraction of a
    set of ids; a lookup scans it, which only happens for spans of traces already flushed.
    """

    __slots__ = ("_ids", "counted", "enclosing")

    def __init__(self) -> None:
        self._ids = b""
        self.counted: frozenset[bytes] = _NO_IDS
        """Spans counted as inference calls."""
        self.enclosing: frozenset[bytes] = _NO_IDS
        """Ancestors of counted spans, including parents that had not arrived."""

    def __len__(self) -> int:
        return len(self._ids) // _SPAN_ID_BYTES

    def __contains__(self, span_id: object) -> bool:
        if not isinstance(span_id, bytes) or len(span_id) != _SPAN_ID_BYTES:
            return False
        ids = self._ids
        found = ids.find(span_id)
        while found >= 0:
            if found % _SPAN_ID_BYTES == 0:
                return True
            found = ids.find(span_id, found + 1)
        return False

    def add(self, span_ids: Iterable[bytes]) -> None:
        """Remember ``span_ids`` (8 bytes each, none of them remembered already)."""
        self._ids += b"".join(span_ids)

    def note_counted(self, counted: Iterable[bytes], enclosing: Iterable[bytes]) -> None:
        """Remember which spans were counted and which spans enclose them."""
        if counted:
            self.counted = self.counted.union(counted)
        if enclosing:
            self.enclosing = self.enclosing.union(enclosing)


class PendingTrace:
    """The spans of one trace received so far."""

    __slots__ = (
        "early",
        "first_seen",
        "last_seen",
        "late",
        "memory",
        "root_seen",
        "spans",
        "trace_id",
    )

    def __init__(self, trace_id: bytes, now: float, memory: FlushedTrace | None) -> None:
        self.trace_id = trace_id
        self.spans: dict[bytes, HeldSpan] = {}
        self.first_seen = now
        self.last_seen = now
        self.root_seen: float | None = None
        self.memory = memory
        self.late = memory is not None
        """Part of the trace was flushed already; these spans arrived after it."""
        self.early: str | None = None
        """Why the trace was flushed before it was complete (None when it was not)."""


@dataclass
class Admission:
    """The outcome of adding one request's spans."""

    accepted: int = 0
    duplicates: int = 0
    late: int = 0
    early: list[PendingTrace] = field(default_factory=list)
    """Traces flushed early to make room; the caller must process them."""


class TraceBuffer:
    """Groups spans by trace and decides when each trace is due. Not thread-safe."""

    def __init__(self, config: RollupConfig) -> None:
        self.config = config
        self.pending: OrderedDict[bytes, PendingTrace] = OrderedDict()
        self.held_spans = 0
        self._roots: deque[tuple[float, bytes]] = deque()
        self._next_wait_check = 0.0
        self._flushed: OrderedDict[bytes, FlushedTrace] = OrderedDict()
        self._remembered = 0

    @property
    def remembered_spans(self) -> int:
        return self._remembered

    def admit(self, arrivals: list[Arrival], now: float, in_flight: int = 0) -> Admission:
        """Add ``arrivals``, first flushing the least recently active traces early if needed.

        ``in_flight`` spans are out of the buffer but still being processed; they count against
        ``max_spans``. Raises ``Backpressure`` when they leave no room, and ``PermanentError``
        when the request alone is larger than the limits.
        """
        config = self.config
        count = len(arrivals)
        trace_ids = {arrival[0] for arrival in arrivals}
        if count > config.max_spans or len(trace_ids) > config.max_traces:
            raise PermanentError(
                f"the request holds {count} spans of {len(trace_ids)} traces, more than the "
                f"rollup can hold at once (max_spans={config.max_spans}, "
                f"max_traces={config.max_traces}); send smaller batches"
            )
        if in_flight + count > config.max_spans:
            raise Backpressure(
                f"the rollup is full: {in_flight} spans are still being exported", retry_after=1.0
            )
        admission = Admission()
        new_traces = sum(1 for trace_id in trace_ids if trace_id not in self.pending)
        while self.pending and (
            self.held_spans + in_flight + count > config.max_spans
            or len(self.pending) + new_traces > config.max_traces
        ):
            trace_id, trace = self.pending.popitem(last=False)
            trace.early = EARLY_CAPACITY
            self._retire(trace)
            admission.early.append(trace)
            if trace_id in trace_ids:
                new_traces += 1
        self._insert(arrivals, now, admission)
        return admission

    def _insert(self, arrivals: Iterable[Arrival], now: float, admission: Admission) -> None:
        pending = self.pending
        touched: dict[bytes, PendingTrace] = {}
        for trace_id, span_id, parent, data, origin, candidate in arrivals:
            trace = touched.get(trace_id) or pending.get(trace_id)
            if trace is None:
                memory = self._flushed.get(trace_id)
                if memory is not None and span_id in memory:
                    admission.duplicates += 1
                    continue
                trace = pending[trace_id] = PendingTrace(trace_id, now, memory)
            elif span_id in trace.spans or (trace.memory is not None and span_id in trace.memory):
                admission.duplicates += 1
                continue
            trace.spans[span_id] = _new_held(HeldSpan, (origin, data, parent, candidate))
            touched[trace_id] = trace
            if not parent and trace.root_seen is None:
                trace.root_seen = now
                self._roots.append((now, trace_id))
            if trace.late:
                admission.late += 1
            admission.accepted += 1
        for trace_id, trace in touched.items():
            trace.last_seen = now
            pending.move_to_end(trace_id)
        self.held_spans += admission.accepted

    def due(self, now: float) -> list[PendingTrace]:
        """Take out every trace whose wait is over."""
        config = self.config
        pending = self.pending
        found: list[PendingTrace] = []
        while pending:
            trace = next(iter(pending.values()))
            if now - trace.last_seen < config.trace_idle:
                break
            found.append(self._take(trace))
        roots = self._roots
        while roots and now - roots[0][0] >= config.root_grace:
            _, trace_id = roots.popleft()
            trace = pending.get(trace_id)
            if (
                trace is not None
                and trace.root_seen is not None
                and now - trace.root_seen >= config.root_grace
            ):
                found.append(self._take(trace))
        if now >= self._next_wait_check:
            self._next_wait_check = now + min(1.0, config.max_wait / 4)
            for trace in [t for t in pending.values() if now - t.first_seen >= config.max_wait]:
                trace.early = EARLY_MAX_WAIT
                found.append(self._take(trace))
        return found

    def forget(self, share: float) -> int:
        """Forget the oldest ``share`` of the flushed traces remembered (memory pressure);
        returns how many span ids were forgotten."""
        forgotten = 0
        for _ in range(int(len(self._flushed) * share)):
            _, memory = self._flushed.popitem(last=False)
            forgotten += len(memory)
        self._remembered -= forgotten
        return forgotten

    def drain(self) -> list[PendingTrace]:
        """Take out every trace, due or not (on shutdown)."""
        return [self._take(trace) for trace in list(self.pending.values())]

    def _take(self, trace: PendingTrace) -> PendingTrace:
        del self.pending[trace.trace_id]
        self._retire(trace)
        return trace

    def _retire(self, trace: PendingTrace) -> None:
        """Account for ``trace`` leaving the buffer and remember its span ids."""
        self.held_spans -= len(trace.spans)
        if self.config.remember_spans <= 0:
            if trace.memory is None:
                trace.memory = FlushedTrace()
            return
        memory = trace.memory
        if memory is None:
            memory = trace.memory = FlushedTrace()
        if self._flushed.get(trace.trace_id) is memory:
            self._flushed.move_to_end(trace.trace_id)
        else:
            self._flushed[trace.trace_id] = memory
            self._remembered += len(memory)
        memory.add(trace.spans)
        self._remembered += len(trace.spans)
        while self._remembered > self.config.remember_spans and self._flushed:
            _, forgotten = self._flushed.popitem(last=False)
            self._remembered -= len(forgotten)
