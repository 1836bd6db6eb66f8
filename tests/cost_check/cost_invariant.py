"""The cost invariant, checked on every trace the tests make: for each trace, the sum of
``gen_ai.usage.cost`` over its spans equals ``spanledger.trace.cost`` (0 when it has none).

``install(annotator_class, report)`` wraps ``TraceAnnotator.annotate`` so that each trace it
annotates in full (not late, not flushed early) is checked as forwarded; ``report`` gets one
line per trace that breaks the rule. The test session installs it in-process (tests/conftest.py)
and, through ``sitecustomize`` in this folder, in every ``spanledger serve`` it starts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

COST = "gen_ai.usage.cost"
TRACE_COST = "spanledger.trace.cost"
_MARKS = (COST.encode(), TRACE_COST.encode())


def problems(spans: Iterable[Any]) -> list[str]:
    """One line per trace of ``spans`` (OTLP ``Span`` messages) whose costs do not add up."""
    sums: dict[bytes, float] = {}
    totals: dict[bytes, float] = {}
    for span in spans:
        trace_id = span.trace_id
        for attribute in span.attributes:
            if attribute.key == COST:
                sums[trace_id] = sums.get(trace_id, 0.0) + attribute.value.double_value
            elif attribute.key == TRACE_COST:
                totals[trace_id] = totals.get(trace_id, 0.0) + attribute.value.double_value
    found = []
    for trace_id in sums.keys() | totals.keys():
        summed, total = sums.get(trace_id, 0.0), totals.get(trace_id, 0.0)
        if not math.isclose(summed, total, rel_tol=1e-9, abs_tol=1e-12):
            found.append(
                f"trace {trace_id.hex()}: sum of {COST} over its spans is {summed!r}, "
                f"{TRACE_COST} is {total!r}"
            )
    return found


def install(annotator_class: type, report: Callable[[str], None]) -> Callable[[], None]:
    """Check every trace ``annotator_class.annotate`` returns; give back the undo function."""
    from opentelemetry.proto.trace.v1.trace_pb2 import Span

    original = annotator_class.annotate

    def annotate(self: Any, trace: Any) -> Any:
        result = original(self, trace)
        if not trace.late and trace.early is None:
            spans = [
                Span.FromString(held.data)
                for held in result.spans
                if _MARKS[0] in held.data or _MARKS[1] in held.data
            ]
            for line in problems(spans):
                report(line)
        return result

    annotator_class.annotate = annotate

    def undo() -> None:
        annotator_class.annotate = original

    return undo
