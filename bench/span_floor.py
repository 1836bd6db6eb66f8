"""Where a span's CPU time goes inside the processor, step by step, in one process and run.

Directional only: compare runs on the same machine. Each step adds work to the one before, on
the same pre-built 512-span requests of 10-span traces, so the differences show what each
stage costs per span:

- ``parse``: ``ExportTraceServiceRequest.FromString`` of each request (C, upb);
- ``+ read ids``: also read each span's trace, span and parent ids (what grouping needs);
- ``+ serialize``: also serialize each span on its own (what holding it as bytes needs);
- ``parse 100%`` and ``+ LLM attributes``: the same parse of requests whose spans are all LLM
  calls but the roots, then also reading each call's attributes into Python values, which is
  the least the processor must do with a call before its usage is known;
- ``pipeline`` at 0%, 10% and 100% GenAI spans: ``Pipeline.consume`` of every request plus
  ``flush_all`` (grouping, usage, pricing, rollup, reassembly) into an exporter that takes the
  encoded request as is; ``+ sinks`` adds the ledger (SQLite) and the per-tag counters.

Rounds alternate the steps; each figure is the median of CPU µs per span over rounds, with its
range. The per-call figures are the 100% pipeline minus the 0% one, and ``+ LLM attributes``
minus ``parse 100%``, per LLM call.

    python bench/span_floor.py                 # writes bench/RESULTS.md
    python bench/span_floor.py --rounds 1 --traces 100 --no-write
    python bench/span_floor.py --instructions  # the pipeline steps' instructions (callgrind)

``--instructions`` counts, with valgrind's callgrind, the instructions per span of the pipeline
steps (each run once, after a warm-up run, inside the window callgrind counts): unlike time, the
count does not move with the load of the machine, so two checkouts compare to within a percent.
"""

from __future__ import annotations

import argparse
import functools
import gc
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Traffic, build_traffic, count_in_reduce
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from rollup import CountingSink

from spanledger.processor.components import CallSink
from spanledger.processor.otlp.attributes import attributes_to_dict
from spanledger.processor.pipeline.core import Pipeline
from spanledger.processor.pipeline.fanout import FanOut
from spanledger.processor.pricing import PriceBook, PricingConfig
from spanledger.processor.rollup import RollupConfig
from spanledger.processor.sinks.ledger import LedgerConfig, LedgerSink
from spanledger.processor.sinks.metrics import MetricsConfig, MetricsSink

RESULTS = Path(__file__).with_name("RESULTS.md")
BEGIN, END = "<!-- floor:begin -->", "<!-- floor:end -->"
TAGS = ("customer", "feature", "team", "env")


class SerializedExporter:
    """Takes each encoded request as it is and counts its spans."""

    def __init__(self) -> None:
        self.spans = 0

    def export_serialized(self, payload: bytes, spans: int) -> None:
        self.spans += spans

    def export(self, request: ExportTraceServiceRequest) -> None:
        raise AssertionError("the pipeline should hand over the encoded request")

    def shutdown(self, timeout: float) -> None:
        pass


def parse(bodies: list[bytes]) -> None:
    for body in bodies:
        ExportTraceServiceRequest.FromString(body)


def read_ids(bodies: list[bytes]) -> None:
    for body in bodies:
        for resource_spans in ExportTraceServiceRequest.FromString(body).resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    _ = (span.trace_id, span.span_id, span.parent_span_id)


def serialize(bodies: list[bytes]) -> None:
    for body in bodies:
        for resource_spans in ExportTraceServiceRequest.FromString(body).resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    _ = (span.trace_id, span.span_id, span.parent_span_id)
                    span.SerializeToString()


def llm_attributes(bodies: list[bytes]) -> None:
    for body in bodies:
        for resource_spans in ExportTraceServiceRequest.FromString(body).resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    if span.parent_span_id:  # every span but the root is an LLM call
                        attributes_to_dict(span.attributes)


def pipeline_run(bodies: list[bytes], spans: int, sinks: Callable[[], list[CallSink]]) -> None:
    exporter = SerializedExporter()
    made = sinks()
    rollup = RollupConfig(max_traces=1_000_000, max_spans=10_000_000)
    pipeline = Pipeline(rollup, TAGS, PRICE_BOOK, FanOut([exporter], made))
    try:
        for body in bodies:
            pipeline.consume(ExportTraceServiceRequest.FromString(body))
        pipeline.flush_all()
    finally:
        for sink in made:
            sink.shutdown(5.0)
    assert exporter.spans == spans, (exporter.spans, spans)


PRICE_BOOK = PriceBook(PricingConfig())
_WORKDIR = tempfile.TemporaryDirectory(prefix="spanledger-floor-")


def real_sinks() -> list[CallSink]:
    """The ledger and the per-tag counters, as ``spanledger serve`` runs them by default."""
    ledger = LedgerConfig(path=str(Path(_WORKDIR.name, f"ledger-{time.monotonic_ns()}.db")))
    metrics = MetricsConfig(prometheus_endpoint="127.0.0.1:0")
    return [LedgerSink(ledger, TAGS), MetricsSink(metrics, TAGS)]


def counting_sinks() -> list[CallSink]:
    return [CountingSink()]


def steps(traffic: dict[float, Traffic]) -> dict[str, tuple[Callable[[list[bytes]], None], float]]:
    """Each step: (work over a copy's request bodies, the GenAI share of the traffic it takes)."""

    def pipeline(share: float, sinks: Callable[[], list[CallSink]]) -> Callable:
        return lambda bodies: pipeline_run(bodies, traffic[share].spans, sinks)

    return {
        "parse": (parse, 0.1),
        "+ read ids": (read_ids, 0.1),
        "+ serialize": (serialize, 0.1),
        "parse 100%": (parse, 1.0),
        "+ LLM attributes": (llm_attributes, 1.0),
        "pipeline 0%": (pipeline(0.0, counting_sinks), 0.0),
        "pipeline 10%": (pipeline(0.1, counting_sinks), 0.1),
        "pipeline 100%": (pipeline(1.0, counting_sinks), 1.0),
        "pipeline 10% + sinks": (pipeline(0.1, real_sinks), 0.1),
        "pipeline 100% + sinks": (pipeline(1.0, real_sinks), 1.0),
    }


def measure(traces: int, rounds: int) -> tuple[dict[str, list[float]], dict[float, Traffic]]:
    """CPU µs per span of every step, one value per round."""
    traffic = {share: build_traffic(traces, 10, share or 1e-9) for share in (0.0, 0.1, 1.0)}
    work = steps(traffic)
    results: dict[str, list[float]] = {name: [] for name in work}
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)  # as ``spanledger serve`` runs
    copy = 0
    for round_index in range(rounds + 1):
        for name, (run, share) in work.items():
            copy += 1
            bodies = traffic[share].copy(copy)
            started = time.process_time()
            run(bodies)
            elapsed = time.process_time() - started
            if round_index:  # the first round warms up caches and imports
                results[name].append(elapsed / traffic[share].spans * 1e6)
    return results, traffic


def spread(values: Sequence[float]) -> str:
    return f"{statistics.median(values):6.2f} µs ({min(values):.2f}-{max(values):.2f})"


def report(results: dict[str, list[float]], traffic: dict[float, Traffic], traces: int) -> str:
    load = os.getloadavg()[0]
    lines = [
        f"{os.cpu_count()} CPUs, load average {load:.1f}; {len(results['parse'])} rounds of "
        f"{traces:,} traces of 10 spans per step; CPU µs per span, median (min-max)"
    ]
    for name, values in results.items():
        lines.append(f"{name:<22} {spread(values)}")
    calls = traffic[1.0].calls / traffic[1.0].spans

    def per_call(step: str, before: str = "pipeline 0%") -> list[float]:
        pairs = zip(results[step], results[before], strict=True)
        return [(full - base) / calls for full, base in pairs]

    reading = per_call("+ LLM attributes", "parse 100%")
    lines.append(f"reading one LLM call's attributes:  {spread(reading)}")
    lines.append(f"per LLM call beyond a plain span: {spread(per_call('pipeline 100%'))}")
    lines.append(
        "per LLM call beyond a plain span, with ledger and counters: "
        f"{spread(per_call('pipeline 100% + sinks'))}"
    )
    floor = [s / p for s, p in zip(results["+ serialize"], results["pipeline 0%"], strict=True)]
    lines.append(
        "parse + ids + serialize as a share of the 0% pipeline: "
        f"{statistics.median(floor):.0%} ({min(floor):.0%}-{max(floor):.0%})"
    )
    return "\n".join(lines)


def write_section(text: str, command: str) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    section = (
        f"{BEGIN}\n## Where a span's CPU goes (`bench/span_floor.py`)\n\n"
        f"In one process, no network: each step adds work to the one before on the same "
        f"requests (see the module docstring). Python {platform.python_version()}, "
        f"{platform.machine()}.\n\n```\n$ {command}    # {stamp}\n{text}\n```\n{END}"
    )
    current = RESULTS.read_text(encoding="utf-8")
    if BEGIN in current and END in current:
        head, rest = current.split(BEGIN, 1)
        current = head + section + rest.split(END, 1)[1]
    else:
        current = current.rstrip("\n") + "\n\n" + section + "\n"
    RESULTS.write_text(current, encoding="utf-8")


INSTRUCTION_STEPS = ("pipeline 0%", "pipeline 10%", "pipeline 100%")
_CHILD = "--instructions-child"


def instructions_child(name: str, traces: int) -> None:
    """Under callgrind: run one step inside ``functools.reduce``, the window that is counted."""
    traffic = {share: build_traffic(traces, 10, share or 1e-9) for share in (0.0, 0.1, 1.0)}
    run, share = steps(traffic)[name]
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    run(traffic[share].copy(1))  # imports, caches
    bodies = traffic[share].copy(2)
    functools.reduce(lambda _done, _item: run(bodies), [0], None)
    print(traffic[share].spans)


def count_instructions(name: str, traces: int) -> float:
    """Instructions per span of step ``name``, counted by callgrind."""
    counts, stdout = count_in_reduce(__file__, [_CHILD, name, str(traces)])
    if not counts:
        raise RuntimeError(f"no instruction count for {name}")
    return counts[0] / int(stdout.split()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--traces", type=int, default=2000, help="traces per step and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count the pipeline steps' instructions per span with callgrind instead",
    )
    args = parser.parse_args(argv)
    if args.instructions:
        if shutil.which("valgrind") is None:
            raise SystemExit("span_floor: --instructions needs valgrind")
        traces = min(args.traces, 400)
        for name in INSTRUCTION_STEPS:
            print(f"{name:22s} {count_instructions(name, traces):>10,.0f} instructions per span")
        return
    results, traffic = measure(args.traces, args.rounds)
    text = report(results, traffic, args.traces)
    print(text)
    if not args.no_write:
        command = "python bench/span_floor.py " + " ".join(argv or sys.argv[1:])
        write_section(text, command.strip())


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == _CHILD:
        instructions_child(sys.argv[2], int(sys.argv[3]))
    else:
        main()
