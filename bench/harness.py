"""Shared parts of the end-to-end benchmarks: traffic, processes, gRPC ends and measurements.

Every piece runs in its own process (``multiprocessing`` spawn context), so the processor under
test competes with the load generator and the sink for the machine's cores as it would in a
deployment on one host:

- ``Traffic``: OTLP requests of realistic traces, serialized once; every copy sent gets fresh
  trace ids by replacing an 8-byte trace-id prefix in the wire bytes, so nothing is a duplicate.
- ``sink_main``: an OTLP/gRPC server that parses and counts every span it receives.
- ``forwarder_main``: the baseline, a bare gRPC server that forwards raw request bytes.
- ``load_main``: sends the copies with a fixed number of requests in flight.
- ``start_processor``: ``spanledger serve`` as a subprocess with a generated config.
- ``count_in_reduce``: instructions counted by valgrind's callgrind inside ``functools.reduce``
  calls, for comparisons that the machine's load does not move.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

BATCH = 512
"""Spans per request, the OpenTelemetry SDK's default export batch."""
SERVICE_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
_PREFIX = bytes.fromhex("5be1c0de7a11ab1e")
"""First 8 bytes of every template trace id; replaced per copy."""
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SPAWN = multiprocessing.get_context("spawn")


# Traffic.


@dataclass
class Traffic:
    """Serialized requests for ``traces`` traces; ``copy(i)`` gives the i-th unique copy."""

    bodies: list[bytes]
    spans: int
    calls: int
    """Inference spans in one copy (the calls the processor prices)."""

    def copy(self, index: int) -> list[bytes]:
        prefix = (0x5BE1_0000_0000_0000 | (index + 1) << 8).to_bytes(8, "big")
        return [body.replace(_PREFIX, prefix) for body in self.bodies]

    @property
    def wire_bytes(self) -> int:
        return sum(len(b) for b in self.bodies)


def build_traffic(
    traces: int, spans_per_trace: int, genai_share: float, cardinality: int = 50
) -> Traffic:
    """Traces of an HTTP root, internal steps and GenAI chat spans, in 512-span requests.

    ``genai_share`` of the non-root spans are chat calls (1.0: every span but the root);
    ``cardinality`` distinct ``customer`` tag values are spread over the traces.
    """
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    requests = [ExportTraceServiceRequest()]
    scope = None
    count = calls = 0
    every = 1 if genai_share >= 1 else max(1, round(1 / genai_share))
    serial = 0
    for trace in range(traces):
        trace_id = _PREFIX + (trace + 1).to_bytes(8, "big")
        root_id = (trace * 10_000 + 1).to_bytes(8, "big")
        for index in range(spans_per_trace):
            if count % BATCH == 0:
                if count:
                    requests.append(ExportTraceServiceRequest())
                resource_spans = requests[-1].resource_spans.add()
                attributes = resource_spans.resource.attributes
                attributes.add(key="service.name").value.string_value = "api"
                attributes.add(key="deployment.environment").value.string_value = "prod"
                scope = resource_spans.scope_spans.add()
                scope.scope.name = "bench"
            serial += 1
            start = 1_767_225_600_000_000_000 + serial * 1000
            span = scope.spans.add(  # type: ignore[union-attr]
                trace_id=trace_id,
                span_id=(trace * 10_000 + index + 1).to_bytes(8, "big"),
                parent_span_id=b"" if index == 0 else root_id,
                name="GET /items" if index == 0 else f"step {index}",
                kind=2 if index == 0 else 1,
                start_time_unix_nano=start,
                end_time_unix_nano=start + 500_000,
            )
            _add(span, "customer", f"customer-{trace % cardinality}")
            _add(span, "feature", "search")
            chat = bool(index) and serial % every == 0
            if chat:
                calls += 1
            add_work(span, trace, chat)
            count += 1
    bodies = [r.SerializeToString() for r in requests]
    return Traffic(bodies, count, calls)


def add_work(span: object, trace: int, chat: bool) -> None:
    """Make ``span`` an OpenAI chat call (``chat``) or an outgoing HTTP request, attributes too."""
    if chat:
        span.name = "chat gpt-4o-mini"  # type: ignore[attr-defined]
        span.kind = 3  # type: ignore[attr-defined]
        _add(span, "gen_ai.operation.name", "chat")
        _add(span, "gen_ai.provider.name", "openai")
        _add(span, "gen_ai.request.model", "gpt-4o-mini")
        _add(span, "gen_ai.response.model", "gpt-4o-mini-2024-07-18")
        _add(span, "gen_ai.usage.input_tokens", 1200 + trace % 7)
        _add(span, "gen_ai.usage.output_tokens", 300)
    else:
        _add(span, "http.request.method", "GET")
        _add(span, "url.path", "/items/42")
        _add(span, "server.address", "inventory.internal")
        _add(span, "http.response.status_code", 200)


def _add(span: object, key: str, value: str | int) -> None:
    holder = span.attributes.add(key=key).value  # type: ignore[attr-defined]
    if isinstance(value, str):
        holder.string_value = value
    else:
        holder.int_value = value


# Process measurements.


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process ``pid`` (and its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def settle(
    pids: Sequence[int], *, busy: float = 0.1, window: float = 0.2, limit: float = 10.0
) -> float:
    """Wait until the processes ``pids`` together use less than ``busy`` of a core over
    ``window`` seconds (at most ``limit`` seconds); return the seconds waited.

    A processor goes on writing its ledger for a moment after its last span reached the sink; a
    run started meanwhile would pay for it.
    """
    start = time.perf_counter()
    while time.perf_counter() - start < limit:
        before = sum(cpu_seconds(pid) for pid in pids)
        time.sleep(window)
        if sum(cpu_seconds(pid) for pid in pids) - before < busy * window:
            break
    return time.perf_counter() - start


def count_in_reduce(
    script: str, args: Sequence[str], *, each_call: bool = False
) -> tuple[list[int], str]:
    """Run ``python script *args`` under callgrind; return the instructions counted and its stdout.

    One count for all ``functools.reduce`` calls together, or with ``each_call`` one per call
    (in order; calls that counted nothing are left out).
    """
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "callgrind.out"
        child = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--collect-atstart=no",
                "--toggle-collect=functools_reduce",
                *(["--dump-after=functools_reduce"] if each_call else []),
                f"--callgrind-out-file={out}",
                sys.executable,
                script,
                *args,
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
            timeout=3600,
            check=True,
        )
        if each_call:
            dumps = sorted(out.parent.glob(out.name + ".*"), key=lambda p: int(p.suffix[1:]))
        else:
            dumps = [out]
        counts = [count for count in map(_counted, dumps) if count > 0]
    return counts, child.stdout


def _counted(dump: Path) -> int:
    for line in dump.read_text(encoding="utf-8").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    return 0


def rss_bytes(pid: int) -> int:
    """Resident set size of process ``pid``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def median_spread(values: Sequence[float]) -> tuple[float, float, float]:
    """Median, minimum and maximum."""
    return statistics.median(values), min(values), max(values)


def fmt_spread(values: Sequence[float], spec: str = ",.0f") -> str:
    mid, low, high = median_spread(values)
    return f"{mid:{spec}} ({low:{spec}}-{high:{spec}})"


# The sink.


def sink_main(port_out: multiprocessing.Value, spans_out: multiprocessing.Value, stop) -> None:  # type: ignore[valid-type,no-untyped-def]
    """Serve OTLP/gRPC, count every span received into ``spans_out`` until ``stop`` is set."""
    from concurrent.futures import ThreadPoolExecutor

    import grpc
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
        ExportTraceServiceResponse,
    )

    empty = ExportTraceServiceResponse().SerializeToString()

    def export(body: bytes, _context: object) -> bytes:
        request = ExportTraceServiceRequest.FromString(body)
        spans = sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
        with spans_out.get_lock():
            spans_out.value += spans
        return empty

    server = _raw_server(export, ThreadPoolExecutor(4), grpc)
    port_out.value = server.add_insecure_port("127.0.0.1:0")
    server.start()
    stop.wait(3600)
    server.stop(0.5)


def _raw_server(handler: Callable[[bytes, object], bytes], pool: object, grpc: object):  # type: ignore[no-untyped-def]
    service, method = SERVICE_METHOD.rsplit("/", 1)
    generic = grpc.method_handlers_generic_handler(  # type: ignore[attr-defined]
        service.lstrip("/"),
        {method: grpc.unary_unary_rpc_method_handler(handler)},  # type: ignore[attr-defined]
    )
    return grpc.server(  # type: ignore[attr-defined]
        pool, handlers=[generic], options=[("grpc.max_receive_message_length", 64 << 20)]
    )


# The baseline: a raw-bytes forwarder.


def forwarder_main(port_out: multiprocessing.Value, target_port: int, workers: int, stop) -> None:  # type: ignore[valid-type,no-untyped-def]
    """Serve ``TraceService/Export`` and forward each request's bytes, unparsed, to the sink."""
    from concurrent.futures import ThreadPoolExecutor

    import grpc

    channel = grpc.insecure_channel(f"127.0.0.1:{target_port}")
    send = channel.unary_unary(SERVICE_METHOD)

    def export(body: bytes, _context: object) -> bytes:
        return send(body, timeout=30)

    server = _raw_server(export, ThreadPoolExecutor(workers), grpc)
    port_out.value = server.add_insecure_port("127.0.0.1:0")
    server.start()
    stop.wait(3600)
    server.stop(0.5)
    channel.close()


# The load generator.


def load_main(  # noqa: PLR0917 (a process target takes its arguments by position)
    port: int,
    traffic: Traffic,
    copies: range,
    in_flight: int,
    results,  # type: ignore[no-untyped-def]
    ready,  # type: ignore[no-untyped-def]
    go,  # type: ignore[no-untyped-def]
    pace: float | None = None,
) -> None:
    """Send ``copies`` of ``traffic``, ``in_flight`` requests outstanding; report to ``results``.

    With ``pace`` (spans per second) sending is throttled to that rate. A request refused with
    RESOURCE_EXHAUSTED or UNAVAILABLE (backpressure) is sent again after a short pause.
    """
    from collections import deque

    import grpc

    channel = grpc.insecure_channel(
        f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", 64 << 20)]
    )
    send = channel.unary_unary(SERVICE_METHOD)
    grpc.channel_ready_future(channel).result(timeout=30)
    ready.set()
    go.wait(60)
    pending: deque = deque()
    retries = failures = sent = 0
    started = time.perf_counter()
    spans_per_body = traffic.spans / len(traffic.bodies)

    def settle(body: bytes, future: grpc.Future) -> None:  # type: ignore[name-defined]
        nonlocal retries, failures
        for _attempt in range(200):
            try:
                future.result(timeout=60)
                return
            except grpc.RpcError as error:
                if error.code() not in (  # type: ignore[attr-defined]
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    grpc.StatusCode.UNAVAILABLE,
                ):
                    break
                retries += 1
                time.sleep(0.05)
                future = send.future(body, timeout=60)
        failures += 1

    for index in copies:
        for body in traffic.copy(index):
            if len(pending) >= in_flight:
                settle(*pending.popleft())
            if pace is not None:
                due = started + sent * spans_per_body / pace
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            pending.append((body, send.future(body, timeout=60)))
            sent += 1
    while pending:
        settle(*pending.popleft())
    results.put({"requests": sent, "retries": retries, "failures": failures})
    channel.close()


# Running a whole topology.


class Sink:
    """The counting sink in its own process."""

    def __init__(self) -> None:
        self._port = SPAWN.Value("i", 0)
        self.spans = SPAWN.Value("q", 0)
        self._stop = SPAWN.Event()
        self.process = SPAWN.Process(
            target=sink_main, args=(self._port, self.spans, self._stop), daemon=True
        )
        self.process.start()
        self.port = _wait_port(self._port, self.process)

    def count(self) -> int:
        return self.spans.value

    def close(self) -> None:
        self._stop.set()
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()


class Forwarder:
    """The raw-bytes forwarder in its own process."""

    def __init__(self, target_port: int, workers: int = 8) -> None:
        self._port = SPAWN.Value("i", 0)
        self._stop = SPAWN.Event()
        self.process = SPAWN.Process(
            target=forwarder_main,
            args=(self._port, target_port, workers, self._stop),
            daemon=True,
        )
        self.process.start()
        self.port = _wait_port(self._port, self.process)
        self.pid = self.process.pid

    def close(self) -> None:
        self._stop.set()
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()


def _wait_port(port: multiprocessing.Value, process: multiprocessing.Process) -> int:  # type: ignore[valid-type]
    deadline = time.monotonic() + 60
    while port.value == 0:  # type: ignore[attr-defined]
        if not process.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("a benchmark server did not start")
        time.sleep(0.02)
    return port.value  # type: ignore[attr-defined]


_LISTENING = re.compile(r"OTLP/gRPC receiver listening on [^ ]+:(\d+)")


class Processor:
    """``spanledger serve`` in a subprocess, with its OTLP/gRPC receiver on a free port.

    ``python`` is the interpreter to run it with: another venv runs another checkout's code.
    """

    def __init__(
        self,
        sink_port: int | None,
        *,
        trace_idle: str = "0.5s",
        root_grace: str = "0.2s",
        max_wait: str = "60s",
        remember_spans: int = 1_000_000,
        extra: str = "",
        ledger: bool = True,
        metrics: bool = True,
        python: str = sys.executable,
    ) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="spanledger-bench-")
        exporters = (
            f"[{{otlp_grpc: {{endpoint: '127.0.0.1:{sink_port}', compression: none, "
            "tls: {insecure: true}}}]"
            if sink_port is not None
            else "[]"
        )
        config = Path(self._dir.name, "processor.yaml")
        config.write_text(
            "receivers: {otlp: {grpc: {endpoint: '127.0.0.1:0'}, http: null}}\n"
            f"exporters: {exporters}\n"
            f"rollup: {{trace_idle: {trace_idle}, root_grace: {root_grace}, "
            f"max_wait: {max_wait}, remember_spans: {remember_spans}}}\n"
            + (
                "metrics: {prometheus: {endpoint: '127.0.0.1:0'}}\n"
                if metrics
                else "metrics: {prometheus: null}\n"
            )
            + (
                f"ledger: {{path: {self._dir.name}/ledger.db}}\n"
                if ledger
                else "ledger: {path: null}\n"
            )
            + extra,
            encoding="utf-8",
        )
        self._log = open(Path(self._dir.name, "processor.log"), "w+b")  # noqa: SIM115
        # Started outside any checkout (``-m`` puts the working directory first on the path), so
        # that ``python`` runs the spanledger it has installed, another checkout's included.
        self.process = subprocess.Popen(
            [python, "-m", "spanledger.processor.cli", "serve", "--config", str(config)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self._dir.name,
        )
        self.pid = self.process.pid
        self.port = self._wait_listening()

    def _wait_listening(self) -> int:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = _LISTENING.search(Path(self._log.name).read_text(errors="replace"))
            if found:
                return int(found.group(1))
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("the processor did not start:\n" + self.log_text())

    def log_text(self) -> str:
        return Path(self._log.name).read_text(errors="replace")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log.close()
        self._dir.cleanup()


@dataclass
class Flow:
    """What one measured run moved, and what it cost the process under test."""

    spans: int
    wall: float
    """Seconds from starting the load generator to the sink holding every span."""
    cpu: float
    """CPU seconds the process under test spent over the same window."""
    load_report: dict
    rss: int
    """RSS of the process under test at the end of the run."""

    @property
    def rate(self) -> float:
        return self.spans / self.wall

    @property
    def rate_per_cpu(self) -> float:
        return self.spans / self.cpu if self.cpu else float("nan")

    @property
    def cores(self) -> float:
        return self.cpu / self.wall


def drive(
    port: int,
    measured_pid: int,
    sink: Sink,
    traffic: Traffic,
    copies: range,
    *,
    in_flight: int = 4,
    pace: float | None = None,
    timeout: float = 300.0,
) -> Flow:
    """Send the copies through ``port``; time from the first request to the last span at the sink.

    The load generator's start-up and the processor's rollup wait (``root_grace`` after the
    last root) are inside the timed window, so short runs understate the steady rate.
    """
    expected = traffic.spans * len(copies)
    base = sink.count()
    results, ready, go = SPAWN.Queue(), SPAWN.Event(), SPAWN.Event()
    loader = SPAWN.Process(
        target=load_main,
        args=(port, traffic, copies, in_flight, results, ready, go, pace),
        daemon=True,
    )
    loader.start()
    if not ready.wait(60):
        loader.kill()
        raise RuntimeError("the load generator did not connect")
    go.set()
    marks = {0.0: (time.perf_counter(), cpu_seconds(measured_pid))}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = sink.count() - base
        now, cpu = time.perf_counter(), cpu_seconds(measured_pid)
        if done >= expected:
            marks[1.0] = (now, cpu)
            break
        time.sleep(0.01)
    else:
        loader.kill()
        raise RuntimeError(f"timed out: {sink.count() - base} of {expected} spans arrived")
    report = results.get(timeout=60)
    loader.join(10)
    (t0, c0), (t1, c1) = marks[0.0], marks[1.0]
    return Flow(expected, t1 - t0, c1 - c0, report, rss_bytes(measured_pid))
