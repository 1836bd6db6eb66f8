"""Fan-out: every batch of annotated spans to every exporter, the counted calls to every sink.

The pipeline hands each group of flushed traces to one ``TraceOutput``; in the service that is a
``FanOut``. It encodes the spans once into requests of at most ``MAX_EXPORT_SPANS`` spans, hands
each request to every exporter (serialized to those with ``export_serialized``), then the calls
to every sink. An exporter whose queue is full raises ``Backpressure``: the fan-out waits for
it, retrying for up to ``export_patience`` seconds on the caller's thread (the pipeline's
flusher), so spans stay in flight and receivers refuse new data meanwhile.

A failing exporter or sink is logged and counted; it never stops the others. The fan-out does
not build its exporters and sinks and does not shut them down on its own: whoever built them
calls ``shutdown`` once the pipeline has flushed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from spanledger.processor.components import Backpressure, CallSink, SpanExporter
from spanledger.processor.model import CountedCall
from spanledger.processor.otlp.wire import encode
from spanledger.processor.rollup.buffer import HeldSpan

log = logging.getLogger("spanledger.processor.pipeline.fanout")

MAX_EXPORT_SPANS = 8192
"""Spans are handed to exporters in requests of at most this many spans."""
DEFAULT_EXPORT_PATIENCE = 300.0
"""How long to wait for a full exporter queue before giving a batch up: as long as an exporter
retries one batch (``max_elapsed``), so a queue that drains is waited for. Receivers are refused
meanwhile, so waiting costs no memory beyond ``rollup.max_spans``."""

_COUNTERS = ("export_waits", "export_errors", "sink_errors")


class FanOut:
    """Delivers annotated spans to ``exporters`` and counted calls to ``sinks``.

    Exporters all receive the same request object and must not modify it; an exporter that
    also has ``export_serialized(payload, spans)`` is handed the serialized request instead.
    """

    def __init__(
        self,
        exporters: Sequence[SpanExporter],
        sinks: Sequence[CallSink],
        *,
        export_patience: float = DEFAULT_EXPORT_PATIENCE,
    ) -> None:
        self.exporters = list(exporters)
        self.sinks = list(sinks)
        self.export_patience = export_patience
        """Seconds to keep retrying an exporter that raises ``Backpressure`` (queue full)."""
        self._deadline: float | None = None
        self._counters_lock = threading.Lock()
        self._counters = dict.fromkeys(_COUNTERS, 0)

    def deliver(self, spans: list[HeldSpan], calls: list[CountedCall]) -> None:
        """Hand ``spans`` to every exporter and ``calls`` to every sink, one batch at a time.

        Exporters that offer ``export_serialized(payload, spans)`` get the encoded request as
        is; the others get it parsed once into an ``ExportTraceServiceRequest``. Calls come one
        at a time (the pipeline serializes them), so each exporter gets the batches in order.
        """
        chunks = [
            spans[start : start + MAX_EXPORT_SPANS]
            for start in range(0, len(spans), MAX_EXPORT_SPANS)
        ]
        payloads = [encode(chunk) for chunk in chunks]
        parsed: dict[int, ExportTraceServiceRequest] = {}
        failures: dict[str, int] = {}
        for exporter in self.exporters:
            send_serialized = getattr(exporter, "export_serialized", None)
            for index, payload in enumerate(payloads):
                if send_serialized is not None:
                    send = partial(send_serialized, payload, len(chunks[index]))
                else:
                    if index not in parsed:
                        parsed[index] = ExportTraceServiceRequest.FromString(payload)
                    send = partial(exporter.export, parsed[index])
                outcome = self._export(exporter, send)
                if outcome:
                    failures[outcome] = failures.get(outcome, 0) + 1
        if calls:
            for sink in self.sinks:
                try:
                    sink.record(calls)
                except Exception:
                    failures["sink_errors"] = failures.get("sink_errors", 0) + 1
                    log.exception("sink %s failed", type(sink).__name__)
        if failures:
            self._count(failures)

    def _export(self, exporter: SpanExporter, send: Callable[[], None]) -> str | None:
        """Send one batch, waiting while the exporter pushes back; the failure counter or None.

        While this waits, the spans stay in flight, so receivers push back on their senders
        in turn once the rollup is full.
        """
        deadline = time.monotonic() + self.export_patience
        if self._deadline is not None:
            deadline = min(deadline, self._deadline)
        while True:
            try:
                send()
            except Backpressure as exc:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    log.error(
                        "exporter %s stayed full for %.1fs; a batch was not forwarded to it: %s",
                        type(exporter).__name__,
                        self.export_patience,
                        exc,
                    )
                    return "export_errors"
                self._count({"export_waits": 1})
                time.sleep(min(max(exc.retry_after, 0.01), 1.0, remaining))
            except Exception:
                log.exception("exporter %s failed", type(exporter).__name__)
                return "export_errors"
            else:
                return None

    def _count(self, counts: dict[str, int]) -> None:
        with self._counters_lock:
            for key, value in counts.items():
                self._counters[key] += value

    def give_up_by(self, deadline: float) -> None:
        """Stop waiting on full exporters at ``deadline`` (``time.monotonic``): batches started
        after this call are given up on by then. Called as shutdown begins."""
        self._deadline = deadline

    def shutdown(self, timeout: float) -> None:
        """Shut the exporters, then the sinks, down within ``timeout`` seconds, each getting an
        equal share of what is left. Call it after the last ``deliver``."""
        deadline = time.monotonic() + timeout
        components: list[Any] = [*self.exporters, *self.sinks]
        for index, component in enumerate(components):
            share = max(0.0, deadline - time.monotonic()) / (len(components) - index)
            try:
                component.shutdown(share)
            except Exception:
                log.exception("shutting down %s failed", type(component).__name__)

    @property
    def stats(self) -> dict[str, int]:
        """``export_waits``, ``export_errors`` and ``sink_errors`` since start."""
        with self._counters_lock:
            return dict(self._counters)


__all__ = ["DEFAULT_EXPORT_PATIENCE", "MAX_EXPORT_SPANS", "FanOut"]
