"""Overload: ``spanledger serve`` under more than it can take, with its memory limiter on.

Four scenarios, each against a fresh processor with the default settings (rollup waits, both
receivers, the memory limiter of 1024 MiB unless ``--limit-mib``, ledger on) and an OTLP/gRPC
exporter to a backend process:

- ``fast``: two OTLP/HTTP senders and one OTLP/gRPC sender, each with several requests of 510
  spans in flight, as fast as they are answered; the backend answers at once.
- ``stalled``: the same senders; the backend stops answering (holds every export) for
  ``--stall`` seconds a few seconds in, then recovers.
- ``json``: four senders of ~15 MiB OTLP/JSON bodies at once.
- ``grpc``: 32 OTLP/gRPC calls of ~14 MiB at once, again and again.

Senders behave as OTLP clients: a request refused as retryable (HTTP 429/503, gRPC UNAVAILABLE
or RESOURCE_EXHAUSTED) is sent again after the delay asked for (at most 2 s). Every request
carries traces of its own, so the backend can tell which acknowledged request each span belongs
to. Reported per scenario: peak RSS of the processor (the kernel's high-water mark) against
1.15 times the limit, requests answered OK and refused, the longest wait for any answer, and
spans acknowledged but never delivered (lost).

    python bench/overload.py                       # the four scenarios, about 4 minutes
    python bench/overload.py --seconds 5 --only fast json --small     # seconds
    python bench/overload.py --python ../main/.venv/bin/python        # another checkout
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import _PREFIX, SERVICE_METHOD, SPAWN, build_traffic

from spanledger.processor.intake.memory_limiter import DEFAULT_LIMIT_MIB

SCENARIOS = ("fast", "stalled", "json", "grpc")
PEAK_FACTOR = 1.15
RETRYABLE_HTTP = {429, 502, 503, 504}
RETRY_CAP = 2.0


def copy_prefix(index: int) -> bytes:
    """The first 8 bytes of every trace id of request ``index`` (as ``Traffic.copy`` writes)."""
    return (0x5BE1_0000_0000_0000 | (index + 1) << 8).to_bytes(8, "big")


def copy_of(trace_id: bytes) -> int:
    return ((int.from_bytes(trace_id[:8], "big") & 0xFFFF_FFFF_FFFF) >> 8) - 1


# -- the backend --------------------------------------------------------------------------------


def backend_main(port_out, stalled, stop, report, total) -> None:  # type: ignore[no-untyped-def]
    """OTLP/gRPC backend counting spans per request index; holds exports while ``stalled``."""
    from collections import Counter
    from concurrent.futures import ThreadPoolExecutor

    import grpc
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
        ExportTraceServiceResponse,
    )

    counts: Counter[int] = Counter()
    lock = threading.Lock()
    empty = ExportTraceServiceResponse().SerializeToString()

    def export(body: bytes, _context: object) -> bytes:
        while stalled.is_set() and not stop.is_set():
            time.sleep(0.05)
        request = ExportTraceServiceRequest.FromString(body)
        found: Counter[int] = Counter()
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    found[copy_of(span.trace_id)] += 1
        with lock:
            counts.update(found)
        with total.get_lock():
            total.value += sum(found.values())
        return empty

    service, method = SERVICE_METHOD.rsplit("/", 1)
    handler = grpc.method_handlers_generic_handler(
        service.lstrip("/"), {method: grpc.unary_unary_rpc_method_handler(export)}
    )
    server = grpc.server(
        ThreadPoolExecutor(8),
        handlers=[handler],
        options=[("grpc.max_receive_message_length", 64 << 20)],
    )
    port_out.value = server.add_insecure_port("127.0.0.1:0")
    server.start()
    stop.wait(3600)
    with lock:
        report.put(dict(counts))
    server.stop(0.5)


class Backend:
    def __init__(self) -> None:
        self._port = SPAWN.Value("i", 0)
        self.stalled = SPAWN.Event()
        self._stop = SPAWN.Event()
        self._report = SPAWN.Queue()
        self.total = SPAWN.Value("q", 0)
        """Spans received so far, duplicates included."""
        self.process = SPAWN.Process(
            target=backend_main,
            args=(self._port, self.stalled, self._stop, self._report, self.total),
            daemon=True,
        )
        self.process.start()
        deadline = time.monotonic() + 60
        while self._port.value == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        self.port = self._port.value

    def close(self) -> dict[int, int]:
        self.stalled.clear()
        self._stop.set()
        counts = self._report.get(timeout=60)
        self.process.join(10)
        return counts


# -- the processor ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Processor:
    """``spanledger serve`` with both receivers, the memory limiter and a ledger."""

    def __init__(
        self, backend_port: int, limit_mib: int | None, python: str = sys.executable
    ) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="spanledger-overload-")
        self.grpc_port, self.http_port = _free_port(), _free_port()
        limiter = f"memory_limiter: {{limit_mib: {limit_mib}}}\n" if limit_mib else ""
        config = Path(self._dir.name, "processor.yaml")
        config.write_text(
            "receivers: {otlp: {"
            f"grpc: {{endpoint: '127.0.0.1:{self.grpc_port}'}}, "
            f"http: {{endpoint: '127.0.0.1:{self.http_port}'}}}}}}\n"
            f"exporters: [{{otlp_grpc: {{endpoint: '127.0.0.1:{backend_port}', "
            "compression: none, tls: {insecure: true}}}]\n"
            "metrics: {prometheus: null}\n"
            f"ledger: {{path: {self._dir.name}/ledger.db}}\n" + limiter,
            encoding="utf-8",
        )
        self.log_path = Path(self._dir.name, "processor.log")
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    python,
                    "-m",
                    "spanledger.processor.cli",
                    "serve",
                    "--config",
                    str(config),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self._dir.name,
            )
        self.pid = self.process.pid
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", self.http_port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        log = self.log()
        self.close()
        raise RuntimeError("the processor did not start:\n" + log)

    def status(self, key: str) -> int:
        """A ``/proc/<pid>/status`` figure in bytes (``VmRSS``, ``VmHWM``)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
        return 0

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def close(self) -> tuple[int, float]:
        started = time.monotonic()
        self.process.terminate()
        try:
            code = self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(10)
        took = time.monotonic() - started
        self._dir.cleanup()
        return code, took


# -- the senders --------------------------------------------------------------------------------


@dataclass
class SenderPlan:
    kind: str
    """``http`` (protobuf), ``json`` (OTLP/JSON over HTTP) or ``grpc``."""
    port: int
    traces: int
    """Traces of 10 spans per request."""
    threads: int
    first_index: int
    seconds: float
    give_up: float
    """Seconds after the start when a request still refused is no longer retried."""


@dataclass
class SenderReport:
    accepted: list[int] = field(default_factory=list)
    """Indices of the requests answered OK."""
    spans_per_request: int = 0
    refused: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    longest: float = 0.0
    answers: int = 0


def sender_main(plan: SenderPlan, results, ready, go) -> None:  # type: ignore[no-untyped-def]
    import http.client

    import grpc

    from spanledger.processor.otlp import json as otlp_json

    traffic = build_traffic(plan.traces, 10, 0.1)
    template = b"".join(traffic.bodies)
    prefix_hex = _PREFIX.hex()
    if plan.kind == "json":
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        template = otlp_json.encode_request(ExportTraceServiceRequest.FromString(template))
    report = SenderReport(spans_per_request=traffic.spans)
    lock = threading.Lock()
    counter = [plan.first_index]
    ready.set()
    go.wait(120)
    started = time.monotonic()

    def body_for(index: int) -> bytes:
        if plan.kind == "json":
            return template.replace(prefix_hex.encode(), copy_prefix(index).hex().encode())
        return template.replace(_PREFIX, copy_prefix(index))

    def note(latency: float, error: str | None = None, refused: bool = False) -> None:
        with lock:
            report.answers += 1
            report.longest = max(report.longest, latency)
            if refused:
                report.refused += 1
            if error:
                report.errors[error] = report.errors.get(error, 0) + 1

    def send_http(connection: http.client.HTTPConnection, body: bytes) -> tuple[bool, float]:
        content_type = "application/json" if plan.kind == "json" else "application/x-protobuf"
        connection.request("POST", "/v1/traces", body, {"Content-Type": content_type})
        response = connection.getresponse()
        response.read()
        if response.status == 200:
            return True, 0.0
        if response.status in RETRYABLE_HTTP:
            return False, float(response.getheader("Retry-After") or 1)
        raise RuntimeError(f"HTTP {response.status}")

    def worker() -> None:
        connection = None
        channel = None
        call = None
        if plan.kind == "grpc":
            channel = grpc.insecure_channel(
                f"127.0.0.1:{plan.port}", options=[("grpc.max_send_message_length", 64 << 20)]
            )
            call = channel.unary_unary(SERVICE_METHOD)
        while time.monotonic() - started < plan.seconds:
            with lock:
                index = counter[0]
                counter[0] += 1
            body = body_for(index)
            while True:  # until accepted, refused for good, or given up
                sent = time.monotonic()
                try:
                    if call is not None:
                        try:
                            call(body, timeout=60)
                            accepted, delay = True, 0.0
                        except grpc.RpcError as error:
                            code = error.code()  # type: ignore[attr-defined]
                            if code not in (
                                grpc.StatusCode.UNAVAILABLE,
                                grpc.StatusCode.RESOURCE_EXHAUSTED,
                            ):
                                raise RuntimeError(code.name) from None
                            accepted, delay = False, 1.0
                    else:
                        if connection is None:
                            connection = http.client.HTTPConnection(
                                "127.0.0.1", plan.port, timeout=60
                            )
                        accepted, delay = send_http(connection, body)
                except (OSError, http.client.HTTPException, RuntimeError) as exc:
                    note(time.monotonic() - sent, error=str(exc)[:60] or type(exc).__name__)
                    if connection is not None:
                        connection.close()
                        connection = None
                    break
                note(time.monotonic() - sent, refused=not accepted)
                if accepted:
                    with lock:
                        report.accepted.append(index)
                    break
                if time.monotonic() - started > plan.give_up:
                    break
                time.sleep(min(delay, RETRY_CAP))
        if connection is not None:
            connection.close()
        if channel is not None:
            channel.close()

    threads = [threading.Thread(target=worker) for _ in range(plan.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(plan.give_up + 120)
    results.put(report)


# -- a scenario ---------------------------------------------------------------------------------


@dataclass
class Outcome:
    name: str
    limit_mib: int
    peak_rss: int
    requests_ok: int
    refused: int
    errors: dict[str, int]
    longest: float
    acknowledged: int
    lost: int
    drained_in: float
    sigterm: tuple[int, float]
    rss_end: int
    accepting_in: float | None
    """Seconds after delivery until requests were accepted again (None: not within 30 s)."""


def scenario(name: str, args: argparse.Namespace) -> Outcome:
    backend = Backend()
    try:
        processor = Processor(backend.port, args.limit_mib, args.python)
    except Exception:
        backend.close()
        raise
    try:
        return _run(name, args, backend, processor)
    finally:
        if processor.process.poll() is None:
            processor.close()
        if backend.process.is_alive():
            backend.process.kill()


def _run(name: str, args: argparse.Namespace, backend: Backend, processor: Processor) -> Outcome:
    small = args.small
    limit_mib = args.limit_mib or DEFAULT_LIMIT_MIB
    seconds = args.seconds
    plans: list[SenderPlan] = []
    if name in ("fast", "stalled"):
        for sender, kind in enumerate(("http", "http", "grpc")):
            port = processor.grpc_port if kind == "grpc" else processor.http_port
            plans.append(SenderPlan(kind, port, 51, 4, sender * 10_000_000, seconds, seconds + 20))
    elif name == "json":
        traces = 200 if small else 2600
        plans += [
            SenderPlan(
                "json", processor.http_port, traces, 1, n * 10_000_000, seconds, seconds + 20
            )
            for n in range(4)
        ]
    else:
        traces = 300 if small else 5600
        plans.append(SenderPlan("grpc", processor.grpc_port, traces, 32, 0, seconds, seconds + 20))
    results, go = SPAWN.Queue(), SPAWN.Event()
    senders = []
    for plan in plans:
        ready = SPAWN.Event()
        process = SPAWN.Process(target=sender_main, args=(plan, results, ready, go), daemon=True)
        process.start()
        senders.append((process, ready))
    for _process, ready in senders:
        if not ready.wait(300):
            raise RuntimeError("a sender did not get ready")
    rss_samples: list[int] = []
    go.set()
    started = time.monotonic()
    stall_at, stall_for = 3.0, args.stall
    while any(p.is_alive() for p, _ in senders) and time.monotonic() - started < seconds + 200:
        elapsed = time.monotonic() - started
        if name == "stalled":
            if stall_at <= elapsed < stall_at + stall_for:
                backend.stalled.set()
            else:
                backend.stalled.clear()
        rss_samples.append(processor.status("VmRSS"))
        if results.qsize() >= len(senders):
            break
        time.sleep(0.1)
    backend.stalled.clear()
    reports: list[SenderReport] = [results.get(timeout=300) for _ in senders]
    for process, _ in senders:
        process.join(10)
    acknowledged = {
        index: report.spans_per_request for report in reports for index in report.accepted
    }
    # Drain: wait until the backend has as many spans as were acknowledged, or stops receiving.
    drain_started = time.monotonic()
    last, last_change = -1, time.monotonic()
    while time.monotonic() - drain_started < 180 and time.monotonic() - last_change < 15:
        received = backend.total.value
        if received >= sum(acknowledged.values()):
            break
        if received != last:
            last, last_change = received, time.monotonic()
        rss_samples.append(processor.status("VmRSS"))
        time.sleep(0.2)
    drained_in = time.monotonic() - drain_started
    accepting_in = _accepting_again(processor.http_port)
    rss_end = processor.status("VmRSS")
    peak = max([*rss_samples, processor.status("VmHWM")])
    code, took = processor.close()  # SIGTERM drains what is left within shutdown_timeout
    counts = backend.close()
    lost = sum(max(0, spans - counts.get(index, 0)) for index, spans in acknowledged.items())
    errors: dict[str, int] = {}
    for report in reports:
        for key, value in report.errors.items():
            errors[key] = errors.get(key, 0) + value
    return Outcome(
        name=name,
        limit_mib=limit_mib,
        peak_rss=peak,
        requests_ok=sum(len(r.accepted) for r in reports),
        refused=sum(r.refused for r in reports),
        errors=errors,
        longest=max(r.longest for r in reports),
        acknowledged=sum(acknowledged.values()),
        lost=lost,
        drained_in=drained_in,
        sigterm=(code, took),
        rss_end=rss_end,
        accepting_in=accepting_in,
    )


def _accepting_again(port: int, patience: float = 30.0) -> float | None:
    """Seconds until an empty OTLP/HTTP request is answered OK again (None: not within
    ``patience``): the memory limiter lets data in again once memory is below its soft limit."""
    import http.client

    started = time.monotonic()
    while time.monotonic() - started < patience:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request(
                "POST", "/v1/traces", b"", {"Content-Type": "application/x-protobuf"}
            )
            if connection.getresponse().status == 200:
                return time.monotonic() - started
        except (OSError, http.client.HTTPException):
            pass
        finally:
            connection.close()
        time.sleep(0.25)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--seconds", type=float, default=30.0, help="sending time per scenario")
    parser.add_argument("--stall", type=float, default=20.0, help="seconds the backend stalls")
    parser.add_argument(
        "--limit-mib", type=int, help=f"memory_limiter.limit_mib [{DEFAULT_LIMIT_MIB}]"
    )
    parser.add_argument("--small", action="store_true", help="small bodies (a quick check)")
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="run the spanledger this python has installed (another checkout, for a before/after)",
    )
    args = parser.parse_args(argv)
    print(
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; {args.seconds:g} s of "
        f"sending per scenario; memory_limiter.limit_mib {args.limit_mib or DEFAULT_LIMIT_MIB} "
        f"(peak allowed {PEAK_FACTOR} x)",
        flush=True,
    )
    failed = False
    for name in args.only:
        outcome = scenario(name, args)
        ok = (
            outcome.peak_rss <= PEAK_FACTOR * outcome.limit_mib * 2**20
            and outcome.lost == 0
            and outcome.longest < 5.0
            and outcome.accepting_in is not None
        )
        failed |= not ok
        errors = ", ".join(f"{k} x{v}" for k, v in outcome.errors.items()) or "none"
        print(
            f"{name:<8} peak RSS {outcome.peak_rss / 2**20:6.1f} MiB "
            f"({outcome.peak_rss / (outcome.limit_mib * 2**20):.2f} x limit); "
            f"answered OK {outcome.requests_ok:,}, refused {outcome.refused:,}, other errors: "
            f"{errors}; longest answer {outcome.longest:.2f} s; spans acknowledged "
            f"{outcome.acknowledged:,}, lost {outcome.lost:,} (all in "
            f"{outcome.drained_in:.1f} s after sending stopped); accepting again "
            f"{_seconds(outcome.accepting_in)} later; RSS after {outcome.rss_end / 2**20:.0f} MiB; "
            "SIGTERM exit "
            f"{outcome.sigterm[0]} in {outcome.sigterm[1]:.1f} s "
            f"[{'met' if ok else 'NOT met'}]",
            flush=True,
        )
    return 1 if failed else 0


def _seconds(value: float | None) -> str:
    return "never (30 s)" if value is None else f"{value:.1f} s"


if __name__ == "__main__":
    sys.exit(main())
