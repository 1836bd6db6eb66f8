"""Every benchmark still runs: each in its tiny mode, through the one command that runs them all."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from harness import build_traffic
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from run_all import BENCHMARKS
from support.otlp import spans_in

BENCH = Path(__file__).resolve().parents[2] / "bench"

EXPECTED_LINES = {
    "pricing": [
        r"`PriceBook.price` vs `calc_price`: .* faster",
        r"totals differing from `calc_price`: 0 of",
    ],
    "rollup": [r"GenAI share  10%: .* spans/s", r"GenAI share 100%: .* spans/s"],
    "span_floor": [
        r"^pipeline 10% \+ sinks +[\d.]+ µs",
        r"^per LLM call beyond a plain span: +[\d.-]+ µs",
    ],
    "instrumentation_overhead": [r"per call  CPU : plain", r"per chunk CPU : plain"],
    # Compared in bench/.compare-venv if it exists; else the one line saying how to make it.
    "instrumentation_compare": [
        r"^(  spanledger/openai-v2 added: per call .+, per chunk .+"
        r"|instrumentation_compare: skipped, no \.compare-venv; create it with .+)$"
    ],
    "processor_throughput": [
        r"forwarder +[\d,]+ .*spans/s wall",
        r"processor 10% +[\d,]+ .*ratio to forwarder [\d.]+",
        r"processor 100% +[\d,]+ .*ratio to forwarder [\d.]+",
    ],
    "memory": [
        r"held spans .*: [\d,]+ .* B per held span, mean wire size [\d,]+ B",
        r"waiting traces .*B per trace",
        r"steady run .*RSS median [\d.]+ MiB",
    ],
    "growth": [
        r"^ +10 spans/trace: [\d,]+ ",
        r"^ +1000 spans/trace: [\d,]+ ",
        r"^ +10000 customers: [\d,]+ ",
    ],
    "soak": [r"^rss_mib_max: [\d.]+", r"^sigterm_exit_code: 0"],
    "ledger_write": [
        r"^  sqlite +[\d,]+ .* rows/s",
        r"^  postgres copy +[\d,]+ .* x SQLite .* x the processor's",
        r"^ +[\d.]+ s +[\d.]+ s +\d+ rows  spanledger report --by customer",
    ],
    "otlp_http_servers": [r"^spanledger +[\d,]+ .*spans/s wall", r"^aiohttp +[\d,]+ "],
    "otlp_edges": [
        r"^GrpcReceiver +[\d,]+ spans/s",
        r"^OtlpHttpExporter \(gzip\) +[\d,]+ spans/s  \(([\d,]+) of \1 delivered\)",
    ],
    "overload": [
        rf"^{name} +peak RSS .* lost 0 .*\[met\]$" for name in ("fast", "stalled", "json", "grpc")
    ],
}


# The fast tier keeps the two benchmarks that take under a second; the rest start processors,
# load generators or whole sweeps.
QUICKEST = ("pricing", "rollup")


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=() if name in QUICKEST else pytest.mark.slow)
        for name in sorted(BENCHMARKS)
    ],
)
def test_benchmark_runs_in_quick_mode(name: str) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "run_all.py"), "--quick", "--only", name],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for pattern in EXPECTED_LINES[name]:
        assert re.search(pattern, result.stdout, re.MULTILINE), (pattern, result.stdout)


def test_every_benchmark_has_expected_output() -> None:
    assert set(EXPECTED_LINES) == set(BENCHMARKS)
    assert {p.stem for p in BENCH.glob("*.py")} - {"harness", "run_all"} == set(BENCHMARKS)


def test_traffic_copies_are_valid_requests_with_fresh_trace_ids() -> None:
    traffic = build_traffic(traces=120, spans_per_trace=10, genai_share=0.1)
    assert traffic.spans == 1200
    assert traffic.calls == 120  # every tenth span: the last span of each trace
    seen: list[set[bytes]] = []
    for index in (0, 1):
        ids = set()
        spans = 0
        for body in traffic.copy(index):
            received = spans_in(ExportTraceServiceRequest.FromString(body))
            spans += len(received)
            ids.update(span.trace_id for span in received)
        assert spans == 1200
        assert len(ids) == 120
        seen.append(ids)
    assert not seen[0] & seen[1]
