"""Growth: how throughput and memory change with trace size and with tag cardinality.

Trace size: traces of 10, 100 and 1,000 spans (10% GenAI spans, the same number of spans per
run): spans/s through ``spanledger serve`` against the raw-bytes forwarder in the same round,
per CPU-second, and RSS per held span (see ``bench/memory.py``).

Tag cardinality: 10, 1,000 and 10,000 distinct ``customer`` values over 10,000 traces with every
non-root span a priced call, so each value reaches the ledger and the per-tag counters (which
cap each label at ``metrics.cardinality_limit``, 1,000 by default): spans/s, ratio to the
forwarder, and the processor's RSS after the run.

    python bench/growth.py
    python bench/growth.py --rounds 1 --spans 2000 --traces-for-tags 100   # seconds
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import build_traffic, fmt_spread
from memory import held_slope
from processor_throughput import run

TRACE_SIZES = (10, 100, 1000)
CARDINALITIES = (10, 1000, 10_000)


def by_trace_size(rounds: int, spans: int) -> list[str]:
    lines = []
    for size in TRACE_SIZES:
        traces = max(1, spans // size)
        traffic = {0.1: build_traffic(traces, size, 0.1)}
        flows = run(rounds, traffic, 1, cases=(("forwarder", 0.1), ("processor", 0.1)))
        ratios = [
            p.rate / f.rate for p, f in zip(flows["processor"], flows["forwarder"], strict=True)
        ]
        per_span, wire, _held = held_slope(size, 3, max(1, spans // size // 3))
        lines.append(
            f"{size:>5} spans/trace: {fmt_spread([f.rate for f in flows['processor']])} spans/s, "
            f"{fmt_spread([f.rate_per_cpu for f in flows['processor']])} per CPU-second, "
            f"ratio to forwarder {fmt_spread(ratios, '.2f')}; held span {per_span:,.0f} B RSS "
            f"(wire {wire:,.0f} B)"
        )
    return lines


def by_cardinality(rounds: int, traces: int) -> list[str]:
    lines = []
    for cardinality in CARDINALITIES:
        traffic = {1.0: build_traffic(traces, 10, 1.0, cardinality)}
        flows = run(rounds, traffic, 1, cases=(("forwarder", 1.0), ("processor", 1.0)))
        ratios = [
            p.rate / f.rate for p, f in zip(flows["processor"], flows["forwarder"], strict=True)
        ]
        lines.append(
            f"{cardinality:>6} customers: {fmt_spread([f.rate for f in flows['processor']])} "
            f"spans/s, {fmt_spread([f.rate_per_cpu for f in flows['processor']])} per "
            f"CPU-second, ratio to forwarder {fmt_spread(ratios, '.2f')}; processor RSS after "
            f"{fmt_spread([f.rss / 2**20 for f in flows['processor']], '.1f')} MiB"
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--spans", type=int, default=60_000, help="spans per trace-size run")
    parser.add_argument("--traces-for-tags", type=int, default=10_000)
    args = parser.parse_args(argv)
    print(f"[trace size] 10% GenAI spans, {args.spans:,} spans per run, {args.rounds} rounds")
    for line in by_trace_size(args.rounds, args.spans):
        print(line)
    print(
        f"[tag cardinality] 100% GenAI spans, {args.traces_for_tags:,} traces of 10 spans per "
        f"run, {args.rounds} rounds"
    )
    for line in by_cardinality(args.rounds, args.traces_for_tags):
        print(line)


if __name__ == "__main__":
    main()
