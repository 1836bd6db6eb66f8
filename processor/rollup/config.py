"""How long the rollup waits for a trace's spans, and how much it may hold while waiting."""

from __future__ import annotations

from dataclasses import dataclass

from spanledger.processor.config_schema import Duration


@dataclass
class RollupConfig:
    """Trace grouping settings (the ``rollup`` section of the processor's config).

    A trace is flushed ``trace_idle`` seconds after its last span arrived, or ``root_grace``
    seconds after its root span arrived, whichever comes first, and at the latest ``max_wait``
    seconds after its first span (then marked partial). At most ``max_traces`` traces and
    ``max_spans`` spans are held; beyond that the oldest traces are flushed early (marked
    partial). ``remember_spans`` span ids of flushed traces are remembered so that a late copy of
    a span already forwarded is recognised as a duplicate.
    """

    trace_idle: Duration = 2.0
    root_grace: Duration = 1.0
    max_traces: int = 100_000
    max_spans: int = 1_000_000
    max_wait: Duration = 60.0
    remember_spans: int = 1_000_000

    def problems(self) -> list[str]:
        """Every reason this configuration cannot be used, as readable text (empty when fine)."""
        found: list[str] = []
        for name in ("trace_idle", "root_grace", "max_wait"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                found.append(f"{name} must be a duration of zero or more, got {value!r}")
        for name in ("max_traces", "max_spans"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                found.append(f"{name} must be an integer of at least 1, got {value!r}")
        value = self.remember_spans
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            found.append(f"remember_spans must be an integer of zero or more, got {value!r}")
        if not found and self.max_wait < self.trace_idle:
            found.append(
                f"max_wait ({self.max_wait}s) must not be shorter than trace_idle "
                f"({self.trace_idle}s)"
            )
        return found
