"""Processor memory: RSS per held span and per waiting trace, and RSS over a steady run.

Held spans: ``spanledger serve`` with a rollup wait far longer than the run, so every span sent
stays held; traffic is sent in equal steps and the processor's RSS is read after each. The slope
of RSS against spans held (least squares) is the cost of a held span, compared with the spans'
mean wire size. Running once with 10-span traces and once with 1-span traces separates the cost
of a span from the cost of a trace.

Steady run: the processor forwarding to a sink at a fixed pace, RSS sampled twice a second; a
flat curve has the same median RSS in its last quarter as in its second.

    python bench/memory.py                         # about a minute
    python bench/memory.py --steps 2 --step-traces 200 --steady-seconds 3     # seconds
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Processor, Sink, build_traffic, rss_bytes

HELD_WAIT = "600s"
TARGET_BEYOND_WIRE = 1024


def held_slope(spans_per_trace: int, steps: int, step_traces: int) -> tuple[float, float, int]:
    """RSS bytes per held span (slope), mean wire bytes per span, and the spans held at the end."""
    traffic = build_traffic(step_traces, spans_per_trace, 0.1)
    processor = Processor(
        None,
        trace_idle=HELD_WAIT,
        root_grace=HELD_WAIT,
        max_wait=HELD_WAIT,
        ledger=False,
        metrics=False,
    )
    points: list[tuple[int, int]] = []
    try:
        points.append((0, _settled_rss(processor.pid)))
        for step in range(steps):
            _send(processor, traffic, step)
            points.append(((step + 1) * traffic.spans, _settled_rss(processor.pid)))
    finally:
        processor.close()
    return _slope(points), traffic.wire_bytes / traffic.spans, points[-1][0]


def _send(processor: Processor, traffic, step: int) -> None:  # type: ignore[no-untyped-def]
    """Send one copy; the processor answers each request once its spans are held."""
    from harness import SPAWN, load_main

    results, ready, go = SPAWN.Queue(), SPAWN.Event(), SPAWN.Event()
    go.set()
    loader = SPAWN.Process(
        target=load_main,
        args=(processor.port, traffic, range(step, step + 1), 4, results, ready, go),
        daemon=True,
    )
    loader.start()
    report = results.get(timeout=300)
    loader.join(10)
    if report["failures"]:
        raise RuntimeError(f"the processor refused {report['failures']} requests")


def _settled_rss(pid: int) -> int:
    """RSS once it stops moving (at most 3 s)."""
    previous = rss_bytes(pid)
    for _ in range(15):
        time.sleep(0.2)
        current = rss_bytes(pid)
        if abs(current - previous) < 64 * 1024:
            return current
        previous = current
    return previous


def _slope(points: list[tuple[int, int]]) -> float:
    xs = [float(x) for x, _ in points]
    ys = [float(y) for _, y in points]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    cov = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    var = sum((x - mean_x) ** 2 for x in xs)
    return cov / var


def steady(seconds: float, pace: float, remember_spans: int) -> list[tuple[float, int]]:
    """(seconds since start, RSS) of a processor forwarding ``pace`` spans/s for ``seconds``.

    The processor remembers the ids of up to ``remember_spans`` forwarded spans (to spot late
    duplicates), so its memory rises until that many have passed, then stays flat.
    """
    from harness import SPAWN, load_main

    traffic = build_traffic(1000, 10, 0.1)
    copies = max(1, math.ceil(pace * seconds / traffic.spans))
    sink = Sink()
    processor = Processor(sink.port, remember_spans=remember_spans)
    samples: list[tuple[float, int]] = []
    try:
        results, ready, go = SPAWN.Queue(), SPAWN.Event(), SPAWN.Event()
        go.set()
        loader = SPAWN.Process(
            target=load_main,
            args=(processor.port, traffic, range(1, copies + 1), 4, results, ready, go, pace),
            daemon=True,
        )
        started = time.perf_counter()
        loader.start()
        deadline = started + seconds * 3 + 30
        while loader.is_alive() and time.perf_counter() < deadline:
            samples.append((time.perf_counter() - started, rss_bytes(processor.pid)))
            time.sleep(0.5)
        results.get(timeout=60)
        loader.join(10)
    finally:
        processor.close()
        sink.close()
    return samples


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--step-traces", type=int, default=2000, help="10-span traces per step")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steady-seconds", type=float, default=40.0)
    parser.add_argument("--pace", type=float, default=5000.0, help="spans/s in the steady run")
    parser.add_argument(
        "--remember-spans",
        type=int,
        default=50_000,
        help="rollup.remember_spans in the steady run (memory plateaus once that many passed)",
    )
    args = parser.parse_args(argv)

    per_span, per_trace, beyond = [], [], []
    wire = 0.0
    held = 0
    for _ in range(args.rounds):
        b, wire, held = held_slope(10, args.steps, args.step_traces)
        a, _wire1, _ = held_slope(1, args.steps, args.step_traces * 5)
        span_cost = (10 * b - a) / 9
        per_span.append(b)
        beyond.append(b - wire)
        per_trace.append(a - span_cost)
    print(
        f"held spans (10-span traces, up to {held:,} spans, {args.rounds} rounds, RSS slope): "
        f"{_fmt(per_span)} B per held span, mean wire size {wire:,.0f} B, "
        f"{_fmt(beyond)} B beyond it [target ≤ {TARGET_BEYOND_WIRE} B: "
        f"{'met' if statistics.median(beyond) <= TARGET_BEYOND_WIRE else 'NOT met'}]"
    )
    print(f"waiting traces (1-span traces against 10-span traces): {_fmt(per_trace)} B per trace")

    samples = steady(args.steady_seconds, args.pace, args.remember_spans)
    quarter = max(1, len(samples) // 4)
    second = statistics.median(r for _, r in samples[quarter : 2 * quarter])
    last = statistics.median(r for _, r in samples[-quarter:])
    print(
        f"steady run ({args.pace:,.0f} spans/s, 10% GenAI, remember_spans "
        f"{args.remember_spans:,}, {samples[-1][0]:.0f} s, "
        f"{len(samples)} samples): RSS median {second / 2**20:.1f} MiB in the second quarter, "
        f"{last / 2**20:.1f} MiB in the last, change {(last - second) / 2**20:+.1f} MiB "
        f"({(last - second) / second:+.1%}); peak {max(r for _, r in samples) / 2**20:.1f} MiB"
    )


def _fmt(values: list[float]) -> str:
    mid = statistics.median(values)
    return f"{mid:,.0f} ({min(values):,.0f}-{max(values):,.0f})"


if __name__ == "__main__":
    main()
