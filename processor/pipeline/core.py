"""The processor's core: receivers hand requests in, traces wait briefly, then get priced.

``Pipeline.consume`` (the ``TraceConsumer`` the receivers call) files each span under its trace.
A trace is flushed when it has been idle for ``rollup.trace_idle`` seconds or ``rollup.root_grace``
seconds after its root arrived; flushing prices its inference spans, writes the cost
attributes and hands the spans (under their original resource and scope) with the counted calls
to the pipeline's one output (``components.TraceOutput``; in the service, ``fanout.FanOut``).
A background thread (``start``) flushes due traces; ``shutdown`` flushes everything left.

Receivers never wait for that work: once the flusher runs, ``consume`` only files the spans and
hands traces flushed early (to make room) to the flusher, so an answer never waits on the output.
Room is bounded by ``rollup.max_spans`` counting spans held and spans handed off or being
delivered; beyond it ``consume`` raises ``Backpressure`` at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from spanledger import semconv
from spanledger.processor.components import Backpressure, ConsumeResult, TraceOutput
from spanledger.processor.model import CountedCall, Usage
from spanledger.processor.pipeline.call_check import MAX_TAG_VALUE_CHARS, CallCheck
from spanledger.processor.rollup import (
    AnnotatedTrace,
    OriginTable,
    PendingTrace,
    Pricer,
    RollupConfig,
    TraceAnnotator,
    TraceBuffer,
)
from spanledger.processor.rollup.buffer import Arrival, HeldSpan

log = logging.getLogger("spanledger.processor.pipeline")

_TRACE_ID_BYTES = 16
_SPAN_ID_BYTES = 8
_INVALID_TRACE_ID = bytes(_TRACE_ID_BYTES)
_INVALID_SPAN_ID = bytes(_SPAN_ID_BYTES)
_MAX_PROCESS_SPANS = 65536
"""Flushed traces are rolled up and delivered in groups of at most this many spans."""

_COUNTERS = (
    "spans_received",
    "spans_rejected",
    "spans_forwarded",
    "duplicates",
    "late_spans",
    "traces_flushed",
    "early_flushes",
    "llm_calls",
    "unpriced_calls",
    "not_counted",
    "roots_missing",
    "backpressure",
    "annotate_errors",
)


class Pipeline:
    """Groups spans per trace, prices and rolls up each trace, hands spans and counted calls on.

    ``price_book`` has ``price(usage, start_time_unix_nano) -> Cost``. ``extract_usage``
    defaults to ``spanledger.processor.usage.extract_usage`` and ``is_candidate`` (which spans'
    attributes are read at all, from their bytes) to ``spanledger.processor.usage.is_candidate``;
    a custom reader comes with ``usage.candidate_check(keys it reads)``. ``clock`` returns
    seconds and is only compared with itself. ``output.deliver`` runs on the flusher's thread,
    one call at a time; while it blocks (a full exporter), receivers are refused once the rollup
    is full. The pipeline does not shut ``output`` down: whoever built it does, after
    ``shutdown``.
    """

    def __init__(
        self,
        rollup: RollupConfig,
        tag_keys: Sequence[str],
        price_book: Pricer,
        output: TraceOutput,
        *,
        clock: Callable[[], float] = time.monotonic,
        extract_usage: Callable[[Mapping[str, object], str], Usage | None] | None = None,
        is_candidate: Callable[[bytes], bool] | None = None,
    ) -> None:
        problems = rollup.problems()
        if problems:
            raise ValueError("invalid rollup configuration: " + "; ".join(problems))
        from spanledger.processor import usage

        self._is_candidate = is_candidate or usage.is_candidate
        if extract_usage is None:
            extract_usage = usage.extract_usage
        self.rollup = rollup
        self.output = output
        self._clock = clock
        self._buffer = TraceBuffer(rollup)
        self._annotator = TraceAnnotator(tag_keys, price_book, extract_usage)
        self._origins = OriginTable()
        self._check = CallCheck()
        self._lock = threading.Lock()
        self._output_lock = threading.Lock()
        self._in_flight = 0
        self._counters = dict.fromkeys(_COUNTERS, 0)
        self._closed = False
        self._handoff: deque[PendingTrace] = deque()
        """Traces flushed early by ``consume``, waiting for the flusher (under ``_lock``)."""
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # Receiving.

    def consume(self, request: ExportTraceServiceRequest) -> ConsumeResult:
        """File the request's spans under their traces; flush traces early if out of room.

        Spans with an invalid trace or span id are rejected (reported in the result); everything
        else is accepted. Raises ``Backpressure`` while shutting down or when spans still being
        delivered leave no room, and ``PermanentError`` for a request larger than the limits.
        Traces flushed early are handed to the flusher when it runs (``start``), so this never
        waits on the output; without it, the caller processes them.
        """
        if self._closed:
            raise Backpressure("the processor is shutting down", retry_after=1.0)
        arrivals, rejected = self._read(request)
        with self._lock:
            self._counters["spans_received"] += len(arrivals) + rejected
            self._counters["spans_rejected"] += rejected
            try:
                admission = self._buffer.admit(arrivals, self._clock(), self._in_flight)
            except Backpressure:
                self._counters["spans_rejected"] += len(arrivals)
                self._counters["backpressure"] += 1
                raise
            except Exception:
                self._counters["spans_rejected"] += len(arrivals)
                raise
            self._counters["duplicates"] += admission.duplicates
            self._counters["late_spans"] += admission.late
            self._counters["early_flushes"] += len(admission.early)
            self._in_flight += sum(len(trace.spans) for trace in admission.early)
            handed_off = bool(admission.early) and self._thread is not None
            if handed_off:
                self._handoff.extend(admission.early)
        if handed_off:
            self._wake.set()
        elif admission.early:
            self._process(admission.early)
        if not rejected:
            return ConsumeResult()
        return ConsumeResult(
            rejected_spans=rejected,
            error_message=(
                f"{rejected} span(s) rejected: a trace id must be 16 bytes and a span id 8 "
                "bytes, not all zero"
            ),
        )

    def _read(self, request: ExportTraceServiceRequest) -> tuple[list[Arrival], int]:
        arrivals: list[Arrival] = []
        rejected = 0
        origins = self._origins
        is_candidate = self._is_candidate
        for resource_spans in request.resource_spans:
            resource = resource_spans.resource.SerializeToString()
            for scope_spans in resource_spans.scope_spans:
                origin = origins.of(resource_spans, scope_spans, resource)
                for span in scope_spans.spans:
                    trace_id = span.trace_id
                    span_id = span.span_id
                    if (
                        len(trace_id) != _TRACE_ID_BYTES
                        or len(span_id) != _SPAN_ID_BYTES
                        or trace_id == _INVALID_TRACE_ID
                        or span_id == _INVALID_SPAN_ID
                    ):
                        rejected += 1
                        continue
                    parent = span.parent_span_id
                    if parent == _INVALID_SPAN_ID:
                        parent = b""  # some senders write a root's missing parent as zeros
                    data = span.SerializeToString()
                    arrivals.append((trace_id, span_id, parent, data, origin, is_candidate(data)))
        return arrivals, rejected

    # Flushing.

    def flush_due(self) -> int:
        """Flush every trace whose wait is over, and those handed off; how many were flushed."""
        with self._lock:
            handed = self._take_handoff()
            traces = self._buffer.due(self._clock())
            self._counters["early_flushes"] += sum(1 for t in traces if t.early is not None)
            self._in_flight += sum(len(trace.spans) for trace in traces)
        self._process(handed + traces)
        return len(handed) + len(traces)

    def flush_all(self) -> int:
        """Flush every waiting trace now, due or not; returns how many traces were flushed."""
        with self._lock:
            handed = self._take_handoff()
            traces = self._buffer.drain()
            self._in_flight += sum(len(trace.spans) for trace in traces)
        self._process(handed + traces)
        return len(handed) + len(traces)

    def _take_handoff(self) -> list[PendingTrace]:
        """The traces ``consume`` flushed early (already counted in flight); call under _lock."""
        handed = list(self._handoff)
        self._handoff.clear()
        return handed

    def _process(self, traces: list[PendingTrace]) -> None:
        """Roll up, price and deliver ``traces``, at most ``_MAX_PROCESS_SPANS`` spans at a time,
        so that a backlog (after a stalled output) never sits in memory twice at once."""
        groups: list[list[PendingTrace]] = [[]]
        size = 0
        for trace in traces:
            if groups[-1] and size + len(trace.spans) > _MAX_PROCESS_SPANS:
                groups.append([])
                size = 0
            groups[-1].append(trace)
            size += len(trace.spans)
        for group in groups:
            if not group:
                continue
            try:
                self._process_group(group)
            except Exception:  # each group leaves the spans in flight whatever happens
                log.exception("processing %d flushed traces failed", len(group))

    def _process_group(self, traces: list[PendingTrace]) -> None:
        span_count = sum(len(trace.spans) for trace in traces)
        counts = dict.fromkeys(("llm_calls", "unpriced_calls", "not_counted", "roots_missing"), 0)
        errors = 0
        try:
            spans: list[HeldSpan] = []
            calls: list[CountedCall] = []
            for trace in traces:
                annotated = self._annotate(trace)
                if annotated is None:
                    errors += 1
                    annotated = AnnotatedTrace(list(trace.spans.values()))
                spans += annotated.spans
                calls += self._check.admit(annotated.calls)
                counts["llm_calls"] += len(annotated.calls)
                counts["unpriced_calls"] += sum(
                    1 for call in annotated.calls if call.cost.status != semconv.STATUS_PRICED
                )
                counts["not_counted"] += annotated.not_counted
                counts["roots_missing"] += annotated.root_missing
            with self._output_lock:
                self.output.deliver(spans, calls)
        finally:
            with self._lock:
                self._in_flight -= span_count
                self._counters["spans_forwarded"] += span_count
                self._counters["traces_flushed"] += len(traces)
                self._counters["annotate_errors"] += errors
                for key, value in counts.items():
                    self._counters[key] += value

    def _annotate(self, trace: PendingTrace) -> AnnotatedTrace | None:
        try:
            return self._annotator.annotate(trace)
        except Exception:
            log.exception(
                "could not roll up trace %s; forwarding its %d spans unchanged",
                trace.trace_id.hex(),
                len(trace.spans),
            )
            return None

    # Lifecycle.

    def start(self) -> None:
        """Start the background thread that flushes due traces."""
        if self._thread is not None:
            return
        interval = min(0.25, max(0.01, min(self.rollup.trace_idle, self.rollup.root_grace) / 4))
        self._thread = threading.Thread(
            target=self._run, args=(interval,), name="spanledger-rollup", daemon=True
        )
        self._thread.start()

    def _run(self, interval: float) -> None:
        while not self._stop.is_set():
            self._wake.wait(interval)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.flush_due()
            except Exception:
                log.exception("flushing due traces failed")

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop accepting and flush every waiting trace to the output (not shut down here)."""
        deadline = time.monotonic() + timeout
        self._closed = True
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
        try:
            self.flush_all()
        except Exception:
            log.exception("flushing waiting traces on shutdown failed")

    def relieve_memory(self) -> None:
        """Forget the older half of the span ids remembered to recognise late duplicates.

        Called by the memory limiter when memory stays above its soft limit with nothing else
        to free: duplicates of those spans arriving later are no longer recognised (the ledger
        still keeps one row per span), which is better than refusing all data.
        """
        with self._lock:
            forgotten = self._buffer.forget(0.5)
            left = self._buffer.remembered_spans
        if forgotten:
            log.warning(
                "memory pressure: forgot %d remembered span ids (%d kept); late duplicates of "
                "those spans are no longer recognised",
                forgotten,
                left,
            )

    def settled_before(self) -> float | None:
        """A time on the pipeline's clock before which every accepted span has left the pipeline.

        Every span accepted before it was handed to the output (or given up on).
        None while spans are being processed. Used to retire a write-ahead log.
        """
        with self._lock:
            if self._in_flight:
                return None
            now = self._clock()
            return min((trace.first_seen for trace in self._buffer.pending.values()), default=now)

    @property
    def stats(self) -> dict[str, int]:
        """Counters since start, plus what is held right now, plus the output's ``stats`` if it
        keeps any (the fan-out's ``export_waits``, ``export_errors``, ``sink_errors``)."""
        with self._lock:
            found = dict(self._counters)
            found["spans_held"] = self._buffer.held_spans
            found["traces_held"] = len(self._buffer.pending)
            found["spans_in_flight"] = self._in_flight
            found["remembered_spans"] = self._buffer.remembered_spans
        found["calls_set_aside"] = self._check.set_aside
        found["call_times_replaced"] = self._check.times_replaced
        found.update(getattr(self.output, "stats", {}))
        return found


__all__ = ["MAX_TAG_VALUE_CHARS", "Pipeline"]
