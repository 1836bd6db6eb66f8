"""The gap between the bill and the ledger as gauges, per provider and model.

``spanledger reconcile`` writes its gaps to the ledger; the processor reads the latest run of
each provider when its metrics are collected and reports, with the labels
``gen_ai.provider.name`` and ``gen_ai.response.model``:

- ``spanledger.reconcile.gap`` (USD): billed minus attributed cost over that run's period
  [Prometheus ``spanledger_reconcile_gap_usd``];
- ``spanledger.reconcile.billed`` (USD): the billed cost [``spanledger_reconcile_billed_usd``];
- ``spanledger.reconcile.gap_share`` (1): the gap over the billed cost, 0.05 = 5%
  [``spanledger_reconcile_gap_share``]; absent when nothing was billed.

Without a processor (or to feed node_exporter's textfile collector), ``spanledger reconcile
--textfile PATH`` writes the same gauges in the Prometheus text format.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from spanledger.processor.ledger import Ledger
from spanledger.processor.ledger.reconciled import LatestGap, latest_gaps
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
    """Observable gauges reading the latest reconciliation from ``ledger`` at each collection."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

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
            try:
                gaps = latest_gaps(self.ledger)
            except Exception as exc:
                log.debug("reconcile gauges: cannot read the ledger: %s", exc)
                return []
            points = []
            for gap in gaps:
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
