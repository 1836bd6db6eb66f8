"""Instrumentation overhead: the OpenAI SDK with and without ``OpenAIInstrumentor``, same run.

Directional only: compare runs on the same machine. The stand-in serves the OpenAI wire protocol
from a separate process, so its work is not counted. Each round times, in alternating order, a
block of uninstrumented and a block of instrumented work on one keep-alive client:

- per call: ``chat.completions.create`` (not streamed), whole call;
- per chunk: iterating streamed replies of many chunks (stream creation is not timed).

Both CPU time of the calling thread (what the instrumentation adds to the application; steady
under load) and wall-clock time are measured. Reported: the medians over rounds of the
instrumented-minus-uninstrumented difference, with its range, and the ratio of the medians.
Spans go through a BatchSpanProcessor to an exporter that discards them.

    python bench/instrumentation_overhead.py              # writes bench/RESULTS.md
    python bench/instrumentation_overhead.py --rounds 9 --calls 400 --no-write
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import openai
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from spanledger.instrumentation.openai import OpenAIInstrumentor
from spanledger.standin import SCENARIO_HEADER

RESULTS = Path(__file__).with_name("RESULTS.md")
BEGIN, END = "<!-- instrumentation:begin -->", "<!-- instrumentation:end -->"
MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]
CALL_TARGET_US = 50.0
CHUNK_TARGET_US = 2.0


class DiscardExporter(SpanExporter):
    """Accepts every span and keeps none."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


@dataclass
class Sample:
    cpu_us: float
    wall_us: float


def start_standin() -> tuple[subprocess.Popen[str], str]:
    """The stand-in in its own process; returns it and its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "spanledger.standin", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    if not url.startswith("http://"):
        process.terminate()
        raise SystemExit(f"the stand-in did not start (printed {url!r})")
    return process, url + "/v1"


def timed(work: Callable[[], int]) -> Sample:
    """Run ``work`` (which returns how many units it did); per-unit CPU and wall microseconds."""
    cpu, wall = time.thread_time_ns(), time.perf_counter_ns()
    units = work()
    cpu, wall = time.thread_time_ns() - cpu, time.perf_counter_ns() - wall
    return Sample(cpu / units / 1000, wall / units / 1000)


def call_block(client: openai.OpenAI, calls: int) -> Callable[[], int]:
    def work() -> int:
        for _ in range(calls):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        return calls

    return work


def chunk_block(client: openai.OpenAI, streams: int, chunks: int) -> Callable[[], Sample]:
    headers = {SCENARIO_HEADER: json.dumps({"chunks": chunks})}

    def run() -> Sample:
        cpu = wall = received = 0
        for _ in range(streams):
            stream = client.chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers=headers
            )
            start_cpu, start_wall = time.thread_time_ns(), time.perf_counter_ns()
            for _chunk in stream:
                received += 1
            cpu += time.thread_time_ns() - start_cpu
            wall += time.perf_counter_ns() - start_wall
        return Sample(cpu / received / 1000, wall / received / 1000)

    return run


def measure(args: argparse.Namespace, base_url: str) -> dict[str, list[tuple[Sample, Sample]]]:
    """Per round: (uninstrumented, instrumented) samples for calls and for chunks."""
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DiscardExporter()))
    instrumentor = OpenAIInstrumentor()
    client = openai.OpenAI(api_key="bench", base_url=base_url, max_retries=0)
    calls = call_block(client, args.calls)
    chunks = chunk_block(client, args.streams, args.chunks)

    def both(instrumented: bool) -> tuple[Sample, Sample]:
        if instrumented:
            instrumentor.instrument(tracer_provider=provider)
        try:
            return timed(calls), chunks()
        finally:
            if instrumented:
                instrumentor.uninstrument()

    both(False)
    both(True)  # warm-up: connections, imports, caches
    results: dict[str, list[tuple[Sample, Sample]]] = {"call": [], "chunk": []}
    for round_number in range(args.rounds):
        order = (False, True) if round_number % 2 == 0 else (True, False)
        samples = {mode: both(mode) for mode in order}
        results["call"].append((samples[False][0], samples[True][0]))
        results["chunk"].append((samples[False][1], samples[True][1]))
    client.close()
    provider.shutdown()
    return results


def summarise(name: str, pairs: list[tuple[Sample, Sample]], target_us: float) -> str:
    lines = []
    for clock in ("cpu_us", "wall_us"):
        plain = [getattr(p, clock) for p, _ in pairs]
        instrumented = [getattr(i, clock) for _, i in pairs]
        added = [i - p for p, i in zip(plain, instrumented, strict=True)]
        median_plain = statistics.median(plain)
        median_instrumented = statistics.median(instrumented)
        label = "CPU " if clock == "cpu_us" else "wall"
        verdict = ""
        if clock == "cpu_us":
            verdict = "  (target ≤ {:g} µs: {})".format(
                target_us, "met" if statistics.median(added) <= target_us else "NOT met"
            )
        lines.append(
            f"per {name:5} {label}: uninstrumented {median_plain:9.2f} µs, instrumented "
            f"{median_instrumented:9.2f} µs, ratio {median_instrumented / median_plain:5.3f}; "
            f"added {statistics.median(added):+8.2f} µs "
            f"(range {min(added):+.2f} … {max(added):+.2f}){verdict}"
        )
    return "\n".join(lines)


def report(args: argparse.Namespace, results: dict[str, list[tuple[Sample, Sample]]]) -> str:
    command = (
        f"python bench/instrumentation_overhead.py --rounds {args.rounds} --calls {args.calls} "
        f"--streams {args.streams} --chunks {args.chunks}"
    )
    figures = "\n".join(
        [
            summarise("call", results["call"], CALL_TARGET_US),
            summarise("chunk", results["chunk"], CHUNK_TARGET_US),
        ]
    )
    return (
        "## Instrumentation overhead (`bench/instrumentation_overhead.py`)\n\n"
        "What is timed: the real `openai` SDK against the stand-in (in its own process), with and\n"
        "without `OpenAIInstrumentor`, alternating blocks in one run: whole non-streamed\n"
        "`chat.completions.create` calls, and iteration of streamed replies per chunk. Medians\n"
        'over rounds; "added" is instrumented minus uninstrumented in the same round, with its\n'
        "range over rounds. CPU is the calling thread's CPU time, the figure that matters to the\n"
        "application and the one that stays steady on a loaded machine.\n\n"
        f"Machine: {platform.machine()}, Python {platform.python_version()}, "
        f"openai {openai.__version__}.\n\n"
        f"```\n$ {command}\n{figures}\n```"
    )


def write_section(text: str) -> None:
    """Replace this benchmark's section of RESULTS.md, leaving the others as they are."""
    block = f"{BEGIN}\n{text}\n{END}"
    current = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    if BEGIN in current and END in current:
        head, rest = current.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        updated = f"{head}{block}{tail}"
    else:
        updated = f"{current.rstrip()}\n\n{block}\n"
    RESULTS.write_text(updated, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds [7]")
    parser.add_argument("--calls", type=int, default=200, help="non-streamed calls per block [200]")
    parser.add_argument("--streams", type=int, default=5, help="streams per block [5]")
    parser.add_argument("--chunks", type=int, default=400, help="chunks per stream [400]")
    parser.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS.md")
    args = parser.parse_args()

    process, base_url = start_standin()
    try:
        results = measure(args, base_url)
    finally:
        process.terminate()
        process.wait(timeout=10)
    text = report(args, results)
    print(text)
    if not args.no_write:
        write_section(text)


if __name__ == "__main__":
    main()
