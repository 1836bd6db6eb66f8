"""Rollup micro-benchmark: spans per second through ``Pipeline`` and memory per held span.

Directional only: compare runs on the same machine. Requests are built before timing; the
timed part is ``consume`` of every request plus ``flush_all`` (grouping, usage reading, pricing,
annotation, reassembly), handing spans to an exporter and calls to a sink that only count.

    python bench/rollup.py                  # 10% and 100% GenAI spans
    python bench/rollup.py --traces 5000 --spans-per-trace 20
    python bench/rollup.py --traces 1 --spans-per-trace 20000 --shares 0.05   # one big trace
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from collections.abc import Sequence

from harness import add_work
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from spanledger.processor.model import CountedCall
from spanledger.processor.pipeline.core import Pipeline
from spanledger.processor.pipeline.fanout import FanOut
from spanledger.processor.pricing import PriceBook, PricingConfig
from spanledger.processor.rollup import RollupConfig

BATCH = 512
"""Spans per request, the OpenTelemetry SDK's default export batch."""


class CountingExporter:
    def __init__(self) -> None:
        self.spans = 0

    def export(self, request: ExportTraceServiceRequest) -> None:
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                self.spans += len(scope_spans.spans)

    def shutdown(self, timeout: float) -> None:
        pass


class CountingSink:
    def __init__(self) -> None:
        self.calls = 0

    def record(self, calls: Sequence[CountedCall]) -> None:
        self.calls += len(calls)

    def shutdown(self, timeout: float) -> None:
        pass


def _add(span: Span, key: str, value: object) -> None:
    holder = span.attributes.add(key=key).value
    if isinstance(value, str):
        holder.string_value = value
    else:
        holder.int_value = int(value)  # type: ignore[call-overload]


def build_requests(
    traces: int, spans_per_trace: int, genai_share: float, recorders: int = 1
) -> list[ExportTraceServiceRequest]:
    """Realistic traces (HTTP root, internal steps, GenAI chat leaves), in 512-span requests.

    With ``recorders`` > 1 each chat call is also recorded by that many - 1 other
    instrumentations (scopes), in sibling spans sharing its response id.
    """
    requests = [ExportTraceServiceRequest()]
    scope = None
    peers: list = []
    count = 0
    genai_every = max(1, round(1 / genai_share)) if genai_share < 1 else 1
    serial = 0
    for trace in range(traces):
        trace_id = (0xBE00 << 112 | trace + 1).to_bytes(16, "big")
        for index in range(spans_per_trace):
            if count % BATCH == 0:
                if count:
                    requests.append(ExportTraceServiceRequest())
                resource_spans = requests[-1].resource_spans.add()
                resource = resource_spans.resource.attributes
                resource.add(key="service.name").value.string_value = "api"
                resource.add(key="env").value.string_value = "prod"
                scope = resource_spans.scope_spans.add()
                scope.scope.name = "bench"
                peers = [resource_spans.scope_spans.add() for _ in range(recorders - 1)]
                for number, peer in enumerate(peers):
                    peer.scope.name = f"peer{number}"
            serial += 1
            span = scope.spans.add(  # type: ignore[union-attr]
                trace_id=trace_id,
                span_id=(trace * 1000 + index + 1).to_bytes(8, "big"),
                parent_span_id=b"" if index == 0 else (trace * 1000 + 1).to_bytes(8, "big"),
                name="GET /items" if index == 0 else f"step {index}",
                kind=2 if index == 0 else 1,
                start_time_unix_nano=1_767_225_600_000_000_000 + serial * 1000,
                end_time_unix_nano=1_767_225_600_000_000_000 + serial * 1000 + 500,
            )
            _add(span, "customer", f"c{trace % 50}")
            _add(span, "feature", "search")
            chat = bool(index) and serial % genai_every == 0
            add_work(span, trace, chat)
            if chat and peers:
                _add(span, "gen_ai.response.id", f"chatcmpl-{trace}-{index}")
                for number, peer in enumerate(peers):
                    copy = peer.spans.add()
                    copy.CopyFrom(span)
                    own = (number + 1) << 40 | trace * 1000 + index + 1
                    copy.span_id = own.to_bytes(8, "big")
            count += 1
    return requests


def _pipeline(exporter: CountingExporter, sink: CountingSink) -> Pipeline:
    rollup = RollupConfig(max_traces=1_000_000, max_spans=10_000_000)
    tags = ("customer", "feature", "team", "env")
    return Pipeline(rollup, tags, PriceBook(PricingConfig()), FanOut([exporter], [sink]))


def throughput(requests: list[ExportTraceServiceRequest]) -> tuple[float, float, int, int]:
    """Spans per wall-clock second and per CPU second of this process, spans, calls priced."""
    exporter, sink = CountingExporter(), CountingSink()
    pipeline = _pipeline(exporter, sink)
    spans = sum(len(s.spans) for r in requests for rs in r.resource_spans for s in rs.scope_spans)
    gc.collect()
    started, cpu_started = time.perf_counter(), time.process_time()
    for request in requests:
        pipeline.consume(request)
    pipeline.flush_all()
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    assert exporter.spans == spans, (exporter.spans, spans)
    return spans / elapsed, spans / cpu, spans, sink.calls


def memory_per_held_span(requests: list[ExportTraceServiceRequest]) -> tuple[float, float]:
    """Bytes Python allocates per held span (tracemalloc), and the spans' mean wire size."""
    wire = [r.SerializeToString() for r in requests]
    spans = sum(len(s.spans) for r in requests for rs in r.resource_spans for s in rs.scope_spans)
    pipeline = _pipeline(CountingExporter(), CountingSink())
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for body in wire:
        pipeline.consume(ExportTraceServiceRequest.FromString(body))
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert pipeline.stats["spans_held"] == spans
    pipeline.flush_all()
    return held / spans, sum(len(b) for b in wire) / spans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--traces", type=int, default=4000)
    parser.add_argument("--spans-per-trace", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--shares",
        type=float,
        nargs="+",
        default=[0.1, 1.0],
        help="shares of GenAI spans to run, each in its own pass",
    )
    parser.add_argument(
        "--recorders",
        type=int,
        default=1,
        help="instrumentations recording each call (siblings of one call beyond 1)",
    )
    args = parser.parse_args()
    for share in args.shares:
        requests = build_requests(args.traces, args.spans_per_trace, share, args.recorders)
        throughput(requests[:4])  # warm up
        rates = [throughput(requests) for _ in range(args.rounds)]
        best, best_cpu, spans, calls = max(rates)
        per_span, wire = memory_per_held_span(requests)
        print(
            f"GenAI share {share:>4.0%}: {spans} spans, {calls} calls priced; "
            f"best of {args.rounds}: {best:,.0f} spans/s ({best_cpu:,.0f} per CPU second); "
            f"held: {per_span:,.0f} B/span allocated (mean wire size {wire:,.0f} B, "
            f"{per_span - wire:,.0f} B beyond it)"
        )


if __name__ == "__main__":
    main()
