"""The gap between the bill and the ledger as gauges, per provider and model.

``spanledger reconcile`` writes its gaps to the ledger (SQLite or PostgreSQL); the processor
reads the latest run of each provider when its metrics are collected and reports, with the
labels ``gen_ai.provider.name`` and ``gen_ai.response.model``:

- ``spanledger.reconcile.gap`` (USD): billed minus attributed cost over that run's period
  [Prometheus ``spanledger_reconcile_gap_usd``];
- ``spanledger.reconcile.billed`` (USD): the billed cost [``spanledger_reconcile_billed_usd``];
- ``spanledger.reconcile.gap_share`` (1): the gap over the billed cost, 0.05 = 5%
  [``spanledger_reconcile_gap_share``]; absent when nothing was billed.

A collection never waits on the database for long: the ledger is read on a thread of its own,
through a connection of its own (never the writer's), and a collection waits at most
``GapGauges.wait`` seconds for that read. A database that is away, slow or locked leaves the
gauges at the last values read until it answers again.

Without a processor (or to feed node_exporter's textfile collector), ``spanledger reconcile
--textfile PATH`` writes the same gauges in the Prometheus text format.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from spanledger.processor.sinks.ledger import LedgerStore
from spanledger.processor.sinks.ledger.reconciled import LatestGap
from spanledger.semconv import GEN_AI_PROVIDER_NAME, GEN_AI_RESPONSE_MODEL

log = logging.getLogger(__name__)

GAP = "spanledger.reconcile.gap"
BILLED = "spanledger.reconcile.billed"
GAP_SHARE = "spanledger.reconcile.gap_share"


def _labels(gap: LatestGap) -> dict[str, str]:
    return {GEN_AI_PROVIDER_NAME: gap.provider, GEN_AI_RESPONSE_MODEL: gap.model}


def _share(gap: LatestGap) -> float | None:
    if not gap.billed_usd:
        return None
    return float((gap.billed_usd - gap.attributed_usd) / gap.billed_usd)


class GapGauges:
    """Observable gauges of the latest reconciliation in the ledger.

    ``open_reader`` opens the ledger for reading; it is called on the reading thread, the first
    time and again after a failure. At each collection, values older than ``max_age`` seconds
    are read again; the collection waits at most ``wait`` seconds for them and otherwise
    reports the last values read (none before the first read).
    """

    def __init__(
        self,
        open_reader: Callable[[], LedgerStore],
        *,
        wait: float = 0.5,
        max_age: float = 1.0,
        location: str = "the ledger",
    ) -> None:
        self.wait = wait
        self.max_age = max_age
        self.location = location
        self._open_reader = open_reader
        self._reader: LedgerStore | None = None
        self._lock = threading.Lock()
        self._gaps: list[LatestGap] = []
        self._started_at: float | None = None
        """When the latest read started (monotonic seconds)."""
        self._reading = False
        self._failing = False
        self._closed = False

    def latest(self) -> list[LatestGap]:
        """The gaps to report now: fresh when the ledger answers within ``wait``, else the last
        read."""
        now = time.monotonic()
        with self._lock:
            fresh = self._started_at is not None and now - self._started_at < self.max_age
            if self._closed or self._reading or fresh:
                return self._gaps
            self._reading = True
            self._started_at = now
            done = threading.Event()
        threading.Thread(
            target=self._read, args=(done,), name="reconcile-gauges", daemon=True
        ).start()
        done.wait(self.wait)
        with self._lock:
            return self._gaps

    def _read(self, done: threading.Event) -> None:
        gaps = None
        try:
            if self._reader is None:
                self._reader = self._open_reader()
            gaps = self._reader.latest_gaps()
        except Exception as exc:
            level = logging.DEBUG if self._failing else logging.WARNING
            log.log(
                level,
                "reconcile gauges: cannot read %s, keeping the last values: %s",
                self.location,
                exc,
            )
            self._failing = True
        else:
            if self._failing:
                log.info("reconcile gauges: reading %s again", self.location)
            self._failing = False
        finally:
            with self._lock:
                if gaps is not None:
                    self._gaps = gaps
                self._reading = False
                close = self._closed
            done.set()
            if close:
                self._close_reader()

    def close(self) -> None:
        """Stop reading and close the reader (at once, or when a read in progress ends)."""
        with self._lock:
            self._closed = True
            reading = self._reading
        if not reading:
            self._close_reader()

    def _close_reader(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            try:
                reader.close()
            except Exception as exc:
                log.debug("reconcile gauges: closing %s: %s", self.location, exc)

    def register(self, meter: Meter, cost_unit: str) -> None:
        meter.create_observable_gauge(
            GAP,
            [self._points(lambda g: float(g.billed_usd - g.attributed_usd))],
            unit=cost_unit,
            description="Billed minus attributed cost over the latest reconciled period",
        )
        meter.create_observable_gauge(
            BILLED,
            [self._points(lambda g: float(g.billed_usd))],
            unit=cost_unit,
            description="The provider's billed cost over the latest reconciled period",
        )
        meter.create_observable_gauge(
            GAP_SHARE,
            [self._points(_share)],
            unit="1",
            description="The gap over the billed cost (0.05 = 5%), latest reconciled period",
        )

    def _points(
        self, value: Callable[[LatestGap], float | None]
    ) -> Callable[[CallbackOptions], list[Observation]]:
        def observe(_options: CallbackOptions | None = None) -> list[Observation]:
            points = []
            for gap in self.latest():
                number = value(gap)
                if number is not None:
                    points.append(Observation(number, _labels(gap)))
            return points

        return observe


def _prometheus_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def textfile(gaps: Sequence[LatestGap]) -> str:
    """The gauges in the Prometheus text exposition format (as node_exporter reads them)."""
    families = (
        (
            "spanledger_reconcile_gap_usd",
            "Billed minus attributed cost, last reconciled period",
            lambda g: g.billed_usd - g.attributed_usd,
        ),
        (
            "spanledger_reconcile_billed_usd",
            "Billed cost, last reconciled period",
            lambda g: g.billed_usd,
        ),
        (
            "spanledger_reconcile_gap_share",
            "Gap over billed cost (0.05 = 5%)",
            lambda g: (
                None if not g.billed_usd else (g.billed_usd - g.attributed_usd) / g.billed_usd
            ),
        ),
    )
    lines = []
    for name, help_text, value in families:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        for gap in gaps:
            number = value(gap)
            if number is None:
                continue
            labels = (
                f'gen_ai_provider_name="{_prometheus_label(gap.provider)}",'
                f'gen_ai_response_model="{_prometheus_label(gap.model)}"'
            )
            lines.append(f"{name}{{{labels}}} {_number(number)}")
    return "\n".join(lines) + "\n"


def _number(value: Decimal) -> str:
    return repr(float(value))


def write_textfile(path: Path, gaps: Sequence[LatestGap]) -> None:
    """Replace ``path`` atomically, so a collector never reads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(textfile(gaps))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
