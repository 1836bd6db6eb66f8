"""The running processor: receivers → pipeline (pricing, rollup) → fan-out → exporters, sinks.

OTLP metrics and logs skip the pipeline: receivers hand them to a ``Forwarder`` per signal, which
queues them unchanged on the exporters that take the signal (or drops them when none does).

Lifecycle reads top-down: ``start`` builds and starts every component (the kinds in
``registry``), ``stop`` stops accepting, flushes the traces waiting for rollup, then shuts the
exporters and sinks it built down, within the shutdown deadline.
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any, cast

from spanledger.processor import redaction
from spanledger.processor.components import CallSink, SettlingConsumer, SpanExporter, TraceConsumer
from spanledger.processor.config import Config
from spanledger.processor.exporters.forwarding import Forwarder
from spanledger.processor.intake.memory_limiter import MemoryLimiter
from spanledger.processor.intake.write_ahead import WriteAhead
from spanledger.processor.listeners import configured_listeners, exposure_problems
from spanledger.processor.otlp.signals import LOGS, METRICS, TRACES, Signal
from spanledger.processor.pipeline.core import Pipeline
from spanledger.processor.pipeline.fanout import FanOut
from spanledger.processor.pricing import PriceBook
from spanledger.processor.receivers import GrpcReceiver, HttpReceiver
from spanledger.processor.registry import EXPORTER, RECEIVER, SINK, SinkWiring, registry
from spanledger.processor.sinks.budgets import BudgetSink
from spanledger.processor.sinks.ledger import LedgerSink, open_ledger
from spanledger.processor.sinks.ledger.settling import LedgerSettling
from spanledger.processor.sinks.metrics import MetricsSink

if TYPE_CHECKING:
    from spanledger.processor.reconcile.gauge import GapGauges

log = logging.getLogger("spanledger.processor")

_SERVING_GC_THRESHOLDS = (50_000, 20, 100)
"""Allocations before a young collection, and young/middle collections before the next older."""


class Service:
    """One processor process. Extra exporters and sinks (e.g. the demo's recorder) may be added;
    the service shuts them down with its own."""

    def __init__(
        self,
        config: Config,
        extra_exporters: Sequence[SpanExporter] = (),
        extra_sinks: Sequence[CallSink] = (),
        budget_clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._extra_exporters = list(extra_exporters)
        self._extra_sinks = list(extra_sinks)
        self.pipeline: Pipeline | None = None
        self.fanout: FanOut | None = None
        """Where the pipeline's output goes: every trace exporter and every sink."""
        self.receivers: dict[str, Any] = {}
        """The started receivers, by kind name (``grpc``, ``http``)."""
        self.sinks: dict[str, CallSink] = {}
        """The sinks built from the config, by kind name (``metrics``, ``ledger``, ``budgets``)."""
        self.metrics: MetricsSink | None = None
        self.ledger: LedgerSink | None = None
        self.gap_gauges: GapGauges | None = None
        self.write_ahead: WriteAhead | None = None
        self.budgets: BudgetSink | None = None
        self.limiter: MemoryLimiter | None = None
        self.forwarders: dict[Signal, Forwarder] = {}
        """The metrics and logs forwarders, by signal."""
        self._budget_clock = budget_clock
        self._stopped = threading.Event()

    def start(self) -> None:
        """Build every component from the config and start accepting OTLP.

        Raises ``ValueError`` if an endpoint would listen beyond loopback without
        authentication and without ``insecure: true`` (``listeners.exposure_problems``).
        """
        config = self.config
        exposed = exposure_problems(configured_listeners(config))
        if exposed:
            raise ValueError(exposed[0])
        redaction.register(config.secrets())
        for warning in config.warnings():
            log.warning("%s", warning)
        exporters: list[SpanExporter] = _exporters(config.exporters, TRACES)
        exporters += self._extra_exporters
        self._start_forwarders()
        self._build_sinks()
        sinks = [*self.sinks.values(), *self._extra_sinks]
        self.fanout = FanOut(exporters, sinks)
        self.pipeline = Pipeline(config.rollup, config.tags, PriceBook(config.pricing), self.fanout)
        self.pipeline.start()
        consumer: TraceConsumer = self.pipeline
        if config.service.write_ahead is not None:
            if any(getattr(exporter, "queue", None) is None for exporter in config.exporters):
                log.warning(
                    "service.write_ahead is set but not every exporter has a disk queue: "
                    "spans in an in-memory exporter queue are lost if the process is killed"
                )
            if config.ledger.shared and not config.ledger.queue.directory:
                log.warning(
                    "service.write_ahead is set but ledger.queue.directory is not: while the "
                    "ledger's database is away, the write-ahead log keeps every request and "
                    "fills up (then the receivers push back)"
                )
            settling: SettlingConsumer = self.pipeline
            if self.ledger is not None:
                settling = LedgerSettling(self.pipeline, self.ledger)
            self.write_ahead = WriteAhead(config.service.write_ahead, settling)
            self.write_ahead.replay()
            self.write_ahead.start()
            consumer = self.write_ahead
        if config.memory_limiter is not None:
            self.limiter = MemoryLimiter(config.memory_limiter)
            self.limiter.add_relief(self.pipeline.relieve_memory)
            self.limiter.start()
        self._start_receivers(consumer)
        log.info(
            "spanledger processor listening: %s; forwarding traces to %d exporter(s), metrics "
            "to %d, logs to %d; ledger %s",
            ", ".join(self.endpoints()) or "no receiver",
            len(exporters),
            len(self.forwarders[METRICS].exporters),
            len(self.forwarders[LOGS].exporters),
            config.ledger.location(),
        )

    def _build_sinks(self) -> None:
        """Build the sink of every kind in the registry whose section turns it on."""
        config = self.config
        wiring = SinkWiring(config, self.sinks, self._budget_clock)
        for kind in registry().kinds(SINK):
            section = getattr(config, kind.name, None) or kind.config()
            sink = kind.factory(section, wiring)
            if sink is not None:
                self.sinks[kind.name] = sink
        self.metrics = cast("MetricsSink | None", self.sinks.get("metrics"))
        self.ledger = cast("LedgerSink | None", self.sinks.get("ledger"))
        self.budgets = cast("BudgetSink | None", self.sinks.get("budgets"))
        if self.ledger is not None and self.metrics is not None:
            from spanledger.processor.reconcile.gauge import GapGauges

            self.gap_gauges = GapGauges(
                lambda: open_ledger(config.ledger), location=config.ledger.location()
            )
            for meter, unit in self.metrics.meters_with_cost_unit():
                self.gap_gauges.register(meter, unit)

    def _start_receivers(self, consumer: TraceConsumer) -> None:
        """Start a receiver of every kind in the registry that the config sets."""
        others = {
            "metrics": self.forwarders[METRICS],
            "logs": self.forwarders[LOGS],
            "limiter": self.limiter,
        }
        for kind in registry().kinds(RECEIVER):
            section = getattr(self.config, kind.name, None)
            if section is None:
                continue
            receiver = kind.factory(section, consumer, **others)
            receiver.start()
            self.receivers[kind.name] = receiver

    @property
    def grpc(self) -> GrpcReceiver | None:
        """The OTLP/gRPC receiver, once started."""
        return cast("GrpcReceiver | None", self.receivers.get("grpc"))

    @property
    def http(self) -> HttpReceiver | None:
        """The OTLP/HTTP receiver, once started."""
        return cast("HttpReceiver | None", self.receivers.get("http"))

    def _start_forwarders(self) -> None:
        """Build the metrics and logs exporters; say once if a signal will be dropped."""
        for kind in (METRICS, LOGS):
            self.forwarders[kind] = Forwarder(kind, _exporters(self.config.exporters, kind))
        dropped = [s.name for s, forwarder in self.forwarders.items() if not forwarder.exporters]
        if dropped:
            log.info(
                "OTLP %s are accepted and dropped: no exporter takes them", " and ".join(dropped)
            )

    def endpoints(self) -> list[str]:
        """Where the receivers and the Prometheus endpoint listen, for people to read."""
        found = []
        if self.grpc is not None:
            found.append(f"OTLP/gRPC {_host(self.config.grpc.endpoint)}:{self.grpc.port}")
        if self.http is not None:
            found.append(f"OTLP/HTTP http://{_host(self.config.http.endpoint)}:{self.http.port}")
        if self.metrics is not None and self.metrics.prometheus_port:
            endpoint = self.config.metrics.prometheus_endpoint or ""
            found.append(f"metrics http://{_host(endpoint)}:{self.metrics.prometheus_port}/metrics")
        if self.budgets is not None and self.budgets.server is not None:
            found.append(f"budget status {self.budgets.server.url}/v1/budget/status")
        return found

    def stop(self) -> None:
        """Stop accepting, then flush and drain within ``service.shutdown_timeout``."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        deadline = time.monotonic() + self.config.service.shutdown_timeout
        for receiver in self.receivers.values():
            receiver.stop(grace=min(1.0, self.config.service.shutdown_timeout / 4))
        # Metrics and logs drain beside the traces, within the same deadline.
        drains = [
            threading.Thread(
                target=forwarder.shutdown,
                args=(max(0.1, deadline - time.monotonic()),),
                name=f"drain-{kind.name}",
            )
            for kind, forwarder in self.forwarders.items()
            if forwarder.exporters
        ]
        for drain in drains:
            drain.start()
        if self.fanout is not None:
            self.fanout.give_up_by(deadline)
        if self.pipeline is not None:
            self.pipeline.shutdown(max(0.1, deadline - time.monotonic()))
        if self.fanout is not None:
            self.fanout.shutdown(max(0.1, deadline - time.monotonic()))
        for drain in drains:
            drain.join(max(0.1, deadline - time.monotonic()) + 1.0)
        if self.write_ahead is not None:
            self.write_ahead.close()
        if self.gap_gauges is not None:
            self.gap_gauges.close()
        if self.limiter is not None:
            self.limiter.stop()
        log.info("spanledger processor stopped")

    def run(self) -> None:
        """Start, serve until SIGTERM or SIGINT, then stop; previous handlers are restored.

        While serving, the cycle collector runs less often and skips the objects that exist once
        started (price table, configuration, modules): most of what the processor allocates per
        span is acyclic and freed by reference counting, and the collector's scans of the
        long-lived objects cost 15-20% of the CPU under load.
        """
        wake = threading.Event()

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            log.info("received %s, shutting down", signal.Signals(signum).name)
            wake.set()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        thresholds = gc.get_threshold()
        try:
            self.start()
            gc.freeze()
            gc.set_threshold(*_SERVING_GC_THRESHOLDS)
            while not wake.wait(0.5):
                pass
        finally:
            self.stop()
            gc.set_threshold(*thresholds)
            gc.unfreeze()
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def _exporters(configs: Sequence[Any], signal: Signal) -> list[Any]:
    """An exporter of ``signal`` for every config whose ``signals`` name it (by default
    ``traces`` only), built by the factory registered for the config's kind."""
    built = []
    for config in configs:
        if signal.name not in getattr(config, "signals", (TRACES.name,)):
            continue
        built.append(registry().kind_of(EXPORTER, config).factory(config, signal=signal))
    return built


def _host(endpoint: str) -> str:
    host = endpoint.rsplit(":", 1)[0] if ":" in endpoint else endpoint
    return host or "127.0.0.1"
