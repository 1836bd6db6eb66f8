"""Processor throughput: spans/s through ``spanledger serve``, against a raw-bytes gRPC forwarder.

Four processes share the machine: the load generator (OTLP/gRPC, 512-span requests, a few in
flight), the process under test, and a sink that parses and counts every span. The process under
test is either the real processor (receive, group by trace, price, roll up, ledger and Prometheus
counters, OTLP/gRPC out) or a bare forwarder that relays the request bytes unparsed on the same
grpcio. Rounds alternate forwarder, processor at 10% GenAI spans and at 100%, with processors
started afresh every round; each figure is the median over rounds with its range, and the ratio
is taken within each round.

    python bench/processor_throughput.py                  # 5 rounds
    python bench/processor_throughput.py --rounds 1 --copies 2 --traces 200   # seconds
    python bench/processor_throughput.py --baseline-python ../main/.venv/bin/python   # compare
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    Flow,
    Forwarder,
    Processor,
    Sink,
    Traffic,
    build_traffic,
    drive,
    fmt_spread,
    median_spread,
    settle,
)

TARGETS = {0.1: 100_000, 1.0: 50_000}
TARGET_RATIO = 0.3
TARGETS_BY_CASE = {"processor 10%": 0.1, "processor 100%": 1.0}


CASES = (("forwarder", 0.1), ("processor 10%", 0.1), ("processor 100%", 1.0))
"""Each round runs these, in this order: (name, share of GenAI spans)."""


BASELINE = " (baseline)"
"""Suffix of the cases run by ``--baseline-python``'s processor."""


def run(
    rounds: int,
    traffic: dict[float, Traffic],
    copies: int,
    *,
    cases: Sequence[tuple[str, float]] = CASES,
    in_flight: int = 4,
    baseline_python: str | None = None,
) -> dict[str, list[Flow]]:
    """Alternate forwarder and processor runs; return the flows of each case.

    Every round starts its processors afresh and warms each with one copy of every case's
    traffic, so that no processor carries a long run's state (a ledger of millions of rows) or
    a core the machine happens to slow down through the whole comparison. With
    ``baseline_python``, each processor case is also run, in the same rounds, through a
    processor started by that interpreter (another checkout's code), named ``... (baseline)``;
    every other round runs the baseline first, so that neither side always follows the other.
    Each run starts once every process has gone quiet after the one before.
    """
    if baseline_python is not None:
        cases = [
            case
            for name, share in cases
            for case in ((name, share), (name + BASELINE, share))
            if case[0] != "forwarder" + BASELINE
        ]
    sink = Sink()
    forwarder = Forwarder(sink.port)
    flows: dict[str, list[Flow]] = {name: [] for name, _share in cases}
    copies_sent = 0

    def send(port: int, pid: int, share: float, count: int) -> Flow:
        nonlocal copies_sent
        batch = range(copies_sent + 1, copies_sent + 1 + count)
        copies_sent += count
        return drive(port, pid, sink, traffic[share], batch, in_flight=in_flight)

    try:
        send(forwarder.port, forwarder.pid, cases[0][1], 1)  # warm-up
        for round_ in range(rounds):
            processors = {"": Processor(sink.port)}
            if baseline_python is not None:
                processors[BASELINE] = Processor(sink.port, python=baseline_python)
            try:
                ends = {"forwarder": (forwarder.port, forwarder.pid)}
                for name, _share in cases:
                    if name not in ends:
                        chosen = processors[BASELINE if name.endswith(BASELINE) else ""]
                        ends[name] = (chosen.port, chosen.pid)
                pids = [sink.process.pid, forwarder.pid, *(p.pid for p in processors.values())]
                for name, share in cases:
                    if name != "forwarder":
                        send(*ends[name], share, 1)  # warm-up
                for name, share in _ordered(cases, swap=round_ % 2 == 1):
                    settle(pids)
                    flows[name].append(send(*ends[name], share, copies))
            finally:
                for processor in processors.values():
                    processor.close()
    finally:
        forwarder.close()
        sink.close()
    return flows


def _ordered(cases: Sequence[tuple[str, float]], *, swap: bool) -> list[tuple[str, float]]:
    """``cases``, with each baseline case moved before its own case when ``swap``."""
    ordered = list(cases)
    if swap:
        for i in range(len(ordered) - 1):
            if ordered[i + 1][0] == ordered[i][0] + BASELINE:
                ordered[i], ordered[i + 1] = ordered[i + 1], ordered[i]
    return ordered


def report(flows: dict[str, list[Flow]]) -> list[str]:
    """Readable lines: rates, per-CPU rates, cores used, ratio to the forwarder per round."""
    lines = []
    base = flows["forwarder"]
    for name, items in flows.items():
        line = (
            f"{name:<26} {fmt_spread([f.rate for f in items]):>28} spans/s wall, "
            f"{fmt_spread([f.rate_per_cpu for f in items]):>28} per CPU-second, "
            f"{fmt_spread([f.cores for f in items], '.2f')} cores"
        )
        target = name.removesuffix(BASELINE)
        if target in TARGETS_BY_CASE:
            ratios = [f.rate / b.rate for f, b in zip(items, base, strict=True)]
            share = TARGETS_BY_CASE[target]
            mid = median_spread([f.rate for f in items])[0]
            line += (
                f"; ratio to forwarder {fmt_spread(ratios, '.2f')} "
                f"[target ≥ {TARGET_RATIO} and ≥ {TARGETS[share]:,} spans/s: "
                f"{'met' if median_spread(ratios)[0] >= TARGET_RATIO else 'ratio NOT met'}, "
                f"{'met' if mid >= TARGETS[share] else 'rate NOT met'}]"
            )
        if name.endswith(BASELINE) is False and name + BASELINE in flows:
            paired = zip(items, flows[name + BASELINE], strict=True)
            change = [f.rate / b.rate - 1 for f, b in paired]
            line += f"; against the baseline in the same round {fmt_spread(change, '+.1%')}"
        failures = sum(f.load_report["failures"] for f in items)
        retries = sum(f.load_report["retries"] for f in items)
        if failures or retries:
            line += f" (load generator: {retries} retries, {failures} failed requests)"
        lines.append(line)
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--traces", type=int, default=2000, help="traces per copy")
    parser.add_argument("--spans-per-trace", type=int, default=10)
    parser.add_argument("--copies", type=int, default=5, help="copies sent per measured run")
    parser.add_argument("--in-flight", type=int, default=4)
    parser.add_argument(
        "--baseline-python",
        help="also run every processor case through the spanledger this python has installed "
        "(another checkout in its own venv), in the same rounds",
    )
    args = parser.parse_args(argv)
    traffic = {
        share: build_traffic(args.traces, args.spans_per_trace, share) for share in (0.1, 1.0)
    }
    flows = run(
        args.rounds,
        traffic,
        args.copies,
        in_flight=args.in_flight,
        baseline_python=args.baseline_python,
    )
    spans = flows["forwarder"][0].spans
    print(
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; {args.rounds} rounds of "
        f"{spans:,.0f} spans per case ({args.traces * args.copies:,} traces of "
        f"{args.spans_per_trace} spans, 512-span requests, {args.in_flight} in flight); "
        "timed: first request sent to last span at the sink; median (min-max)"
    )
    for line in report(flows):
        print(line)


if __name__ == "__main__":
    main()
