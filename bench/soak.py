"""Soak: a steady stream of priced traces through ``spanledger serve`` for a few minutes.

Starts an OTLP/HTTP backend in this process and the processor as a subprocess, sends traces at a
fixed rate over OTLP/HTTP (retrying like an OTLP client), samples the processor's resident memory,
then stops it with SIGTERM and counts what the backend received. Prints one table row per RSS
sample and a summary; ``lost`` is spans answered 200 minus distinct spans delivered.

    python bench/soak.py                        # 3 minutes, 2,000 spans/s
    python bench/soak.py --seconds 60 --rate 5000 --durable   # with write-ahead and disk queue
    python bench/soak.py --write-ahead-cost     # in-process: consume with and without the log
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from spanledger.processor.otlp.attributes import to_any_value

CALLS = 3
TRACES_PER_REQUEST = 10
SPANS_PER_REQUEST = TRACES_PER_REQUEST * (CALLS + 1)


class Backend:
    """Counts distinct spans and the cost they carry."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: set[bytes] = set()
        self.deliveries = 0
        self.priced = 0
        handler = self._handler()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                backend.record(ExportTraceServiceRequest.FromString(body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def record(self, request: ExportTraceServiceRequest) -> None:
        with self.lock:
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.deliveries += 1
                        key = span.trace_id + span.span_id
                        if key not in self.seen:
                            self.seen.add(key)
                            if any(a.key == "gen_ai.usage.cost" for a in span.attributes):
                                self.priced += 1


def build_request(first_trace: int) -> bytes:
    request = ExportTraceServiceRequest()
    for trace in range(first_trace, first_trace + TRACES_PER_REQUEST):
        trace_id = (0x50A4 << 112 | trace).to_bytes(16, "big")
        spans = request.resource_spans.add().scope_spans.add().spans
        start = time.time_ns()
        root = spans.add(
            trace_id=trace_id,
            span_id=(trace << 8 | 1).to_bytes(8, "big"),
            name="agent run",
            start_time_unix_nano=start,
            end_time_unix_nano=start + 10**9,
        )
        to_any_value(f"customer-{trace % 50}", root.attributes.add(key="customer").value)
        for index in range(CALLS):
            chat = spans.add(
                trace_id=trace_id,
                span_id=(trace << 8 | index + 2).to_bytes(8, "big"),
                parent_span_id=root.span_id,
                name="chat gpt-4o-mini",
                kind=Span.SPAN_KIND_CLIENT,
                start_time_unix_nano=start,
                end_time_unix_nano=start + 10**8,
            )
            for key, value in (
                ("gen_ai.operation.name", "chat"),
                ("gen_ai.provider.name", "openai"),
                ("gen_ai.request.model", "gpt-4o-mini"),
                ("gen_ai.usage.input_tokens", 200 + trace % 700),
                ("gen_ai.usage.output_tokens", 20 + trace % 300),
                ("customer", f"customer-{trace % 50}"),
            ):
                to_any_value(value, chat.attributes.add(key=key).value)
    return request.SerializeToString()


def send(url: str, body: bytes) -> int:
    """POST until answered 200 (bounded); the number of attempts, 0 if never accepted."""
    for attempt in range(1, 200):
        request = urllib.request.Request(
            url, data=body, headers={"Content-Type": "application/x-protobuf"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
                return attempt
        except urllib.error.HTTPError as error:
            if error.code not in (429, 503):
                raise
            time.sleep(float(error.headers.get("Retry-After", "1")))
        except OSError:
            time.sleep(0.2)
    return 0


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_ahead_cost(requests: int = 3000, rounds: int = 5) -> None:
    """Time ``consume`` of 40-span requests on a pipeline alone and behind ``WriteAhead``."""
    from spanledger.processor.intake.write_ahead import WriteAhead, WriteAheadConfig
    from spanledger.processor.pipeline.core import Pipeline
    from spanledger.processor.pipeline.fanout import FanOut
    from spanledger.processor.pricing import PriceBook, PricingConfig
    from spanledger.processor.rollup import RollupConfig

    bodies = [
        ExportTraceServiceRequest.FromString(build_request(n * TRACES_PER_REQUEST))
        for n in range(requests)
    ]
    book = PriceBook(PricingConfig())
    best: dict[str, float] = {}
    for _ in range(rounds):
        for label in ("pipeline", "write-ahead"):
            pipeline = Pipeline(RollupConfig(remember_spans=0), [], book, FanOut([], []))
            consumer: object = pipeline
            directory = tempfile.mkdtemp(prefix="spanledger-wal-")
            if label == "write-ahead":
                consumer = WriteAhead(WriteAheadConfig(directory), pipeline)
            started = time.perf_counter()
            for request in bodies:
                consumer.consume(request)  # type: ignore[attr-defined]
            elapsed = time.perf_counter() - started
            pipeline.flush_all()
            if isinstance(consumer, WriteAhead):
                consumer.close()  # everything has left the pipeline: the log is deleted
            shutil.rmtree(directory)
            best[label] = min(best.get(label, elapsed), elapsed)
    size = len(bodies[0].SerializeToString())
    for label, elapsed in best.items():
        per_request = elapsed / requests * 1e6
        print(f"{label:12} {per_request:8.1f} µs per {SPANS_PER_REQUEST}-span request ({size} B)")
    added = (best["write-ahead"] - best["pipeline"]) / requests * 1e6
    print(
        f"write-ahead adds {added:.1f} µs per request, {added / SPANS_PER_REQUEST:.2f} µs per span"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--rate", type=int, default=2000, help="spans per second")
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between RSS samples")
    parser.add_argument("--durable", action="store_true", help="write-ahead log and disk queue")
    parser.add_argument(
        "--remember-spans",
        type=int,
        default=100_000,
        help="rollup.remember_spans: flushed span ids kept to spot duplicates (memory plateau)",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument(
        "--write-ahead-cost", action="store_true", help="time the write-ahead log in-process"
    )
    options = parser.parse_args()
    if options.write_ahead_cost:
        write_ahead_cost()
        return 0

    backend = Backend()
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="spanledger-soak-"))
    exporter: dict[str, object] = {"endpoint": f"http://127.0.0.1:{backend.port}/v1/traces"}
    config: dict[str, object] = {
        "receivers": {"otlp": {"grpc": None, "http": {"endpoint": f"127.0.0.1:{port}"}}},
        "exporters": [{"otlp_http": exporter}],
        "rollup": {
            "trace_idle": "1s",
            "root_grace": "500ms",
            "remember_spans": options.remember_spans,
        },
        "ledger": {"path": str(workdir / "ledger.db")},
        "service": {"shutdown_timeout": "10s"},
    }
    if options.durable:
        exporter["queue"] = {"directory": str(workdir / "queue")}
        config["service"] = {"shutdown_timeout": "10s", "write_ahead": {"directory": "wal"}}
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    log = (workdir / "processor.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "spanledger.processor.cli", "serve", "--config", "config.yaml"],
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    url = f"http://127.0.0.1:{port}/v1/traces"
    for _ in range(400):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)

    interval = SPANS_PER_REQUEST / options.rate
    accepted = sent = retries = 0
    samples: list[tuple[float, float]] = []
    started = time.monotonic()
    next_send = next_sample = started
    trace = 0
    print(f"{'seconds':>8} {'rss_mib':>8} {'accepted_spans':>15}")
    while time.monotonic() - started < options.seconds:
        now = time.monotonic()
        if now >= next_sample:
            samples.append((now - started, rss_mib(process.pid)))
            print(f"{samples[-1][0]:8.0f} {samples[-1][1]:8.1f} {accepted:15d}", flush=True)
            next_sample += options.sample
        if now < next_send:
            time.sleep(next_send - now)
            continue
        attempts = send(url, build_request(trace))
        trace += TRACES_PER_REQUEST
        sent += SPANS_PER_REQUEST
        if attempts:
            accepted += SPANS_PER_REQUEST
            retries += attempts - 1
        next_send += interval
    elapsed = time.monotonic() - started
    samples.append((elapsed, rss_mib(process.pid)))
    print(f"{samples[-1][0]:8.0f} {samples[-1][1]:8.1f} {accepted:15d}")

    cpu = cpu_seconds(process.pid)
    stop_started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    code = process.wait(60)
    stop_seconds = time.monotonic() - stop_started
    log.close()
    with backend.lock:
        delivered, deliveries, priced = len(backend.seen), backend.deliveries, backend.priced
    summary = {
        "seconds": round(elapsed, 1),
        "rate_spans_per_s": round(accepted / elapsed),
        "sent_spans": sent,
        "accepted_spans": accepted,
        "delivered_distinct": delivered,
        "duplicate_deliveries": deliveries - delivered,
        "priced_spans": priced,
        "lost": accepted - delivered,
        "client_retries": retries,
        "rss_mib_first": round(samples[0][1], 1),
        "rss_mib_after_warmup": round(samples[min(2, len(samples) - 1)][1], 1),
        "rss_mib_max": round(max(rss for _, rss in samples), 1),
        "rss_mib_last": round(samples[-1][1], 1),
        "processor_cpu_seconds": round(cpu, 1),
        "cpu_ms_per_1000_spans": round(cpu * 1e6 / max(accepted, 1), 2),
        "sigterm_exit_code": code,
        "sigterm_seconds": round(stop_seconds, 2),
        "durable": options.durable,
        "remember_spans": options.remember_spans,
    }
    print(
        json.dumps(summary) if options.json else "\n".join(f"{k}: {v}" for k, v in summary.items())
    )
    return 0 if summary["lost"] == 0 and code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
