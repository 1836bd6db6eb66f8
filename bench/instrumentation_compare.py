"""Instrumentation compared: spanledger's and the contrib OpenAI instrumentation, same run.

Directional only: compare runs on the same machine. The same SDK calls are made in one process
for each variant, in blocks whose order rotates from round to round:

- ``plain``: the ``openai`` SDK, not instrumented;
- ``spanledger``: ``spanledger.instrumentation.openai.OpenAIInstrumentor``;
- ``openai-v2``: ``opentelemetry.instrumentation.openai_v2.OpenAIInstrumentor``
  (``opentelemetry-instrumentation-openai-v2``), spans only, as spanledger;
- ``openai-v2+metrics``: the same given the meter and logger providers it asks for, so its
  duration and token histograms are recorded too (what ``opentelemetry-instrument`` sets up).

Each variant is instrumented before its block and uninstrumented after it. Per call: whole
non-streamed ``chat.completions.create`` calls; per chunk: each chunk of streamed replies the
caller receives (stream creation and end not timed), the caller asking for no usage chunk.
Spans go through a BatchSpanProcessor to an exporter that discards them, the same
TracerProvider for all. Two transports: ``replay`` (the stand-in's recorded replies served
in-process by an ``httpx2.MockTransport``: the SDK's work and the instrumentation's only) and
``standin`` (over HTTP to the stand-in process). Neither instrumentation captures message
content. Timing is the median call or chunk of each block, CPU time of the calling thread and
wall time; on a shared machine it moves by more than what either instrumentation adds, so each
variant's instructions are also counted under callgrind (when valgrind is installed), in a
process of its own, over the same replayed calls: a figure the machine's load does not move.

The compared package must not be installed next to spanledger in the project's venv (its
``opentelemetry_instrumentor`` entry point would double every span under
``opentelemetry-instrument``), so this benchmark runs in ``bench/.compare-venv``, made by
``bash bench/setup_compare_venv.sh``; started from another interpreter, it re-runs itself there.

    python bench/instrumentation_compare.py                # writes its section of RESULTS.md
    python bench/instrumentation_compare.py --rounds 9 --no-instructions --no-write
"""

from __future__ import annotations

import argparse
import functools
import gc
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from textwrap import fill
from typing import Any

import httpx2
import openai
from instrumentation_overhead import DiscardExporter, Sample, start_standin
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from spanledger.instrumentation.openai import OpenAIInstrumentor
from spanledger.standin import SCENARIO_HEADER

HERE = Path(__file__).resolve().parent
COMPARE_VENV = HERE / ".compare-venv"
COMPARED_MODULE = "opentelemetry.instrumentation.openai_v2"
COMPARED_DISTRIBUTION = "opentelemetry-instrumentation-openai-v2"
REEXEC_MARK = "SPANLEDGER_COMPARE_VENV"
SETUP_HINT = "bash bench/setup_compare_venv.sh"
# Read when each instrumentor is set up; cleared so both run their default, content-free way.
CONTENT_SETTINGS = (
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
    "OTEL_INSTRUMENTATION_GENAI_EMIT_EVENT",
    "OTEL_SEMCONV_STABILITY_OPT_IN",
)

RESULTS = HERE / "RESULTS.md"
BEGIN, END = "<!-- compare:begin -->", "<!-- compare:end -->"
AFTER = "<!-- instrumentation:end -->"
MODEL = "gpt-4o-mini"
MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]
OURS, OTHER, OTHER_METRICS = "spanledger", "openai-v2", "openai-v2+metrics"


def compare_venv_python() -> Path:
    return COMPARE_VENV / "bin" / "python"


def ensure_compare_venv(if_available: bool) -> None:
    """Return when the compared package imports here; else re-run in its venv, or stop."""
    if importlib.util.find_spec(COMPARED_MODULE) is not None:
        return
    python = compare_venv_python()
    if not python.exists():
        message = (
            f"instrumentation_compare: skipped, no {COMPARE_VENV.name}; "
            f"create it with `{SETUP_HINT}`"
        )
        if if_available:
            print(message, flush=True)
            raise SystemExit(0)
        raise SystemExit(message.replace("skipped", "cannot run"))
    if os.environ.get(REEXEC_MARK):
        raise SystemExit(
            f"instrumentation_compare: {COMPARED_MODULE} does not import in {COMPARE_VENV}; "
            f"re-create it with `{SETUP_HINT}`"
        )
    os.environ[REEXEC_MARK] = "1"
    os.execv(python, [str(python), str(Path(__file__).resolve()), *sys.argv[1:]])


@dataclass
class Variant:
    """One way of running the same calls: how to switch it on, and off again."""

    name: str
    on: Callable[[], None]
    off: Callable[[], None]


class Replay:
    """The stand-in's replies, recorded once, served in-process to the SDK."""

    def __init__(self, replies: dict[str, str]) -> None:
        self.reply = replies["reply"].encode()
        self.stream = replies["stream"].encode()
        self.stream_with_usage = replies["stream_with_usage"].encode()

    @classmethod
    def record(cls, base_url: str, chunks: int) -> Replay:
        body = {"model": MODEL, "messages": MESSAGES}
        streamed = {**body, "stream": True}
        with_usage = {**streamed, "stream_options": {"include_usage": True}}
        headers = {SCENARIO_HEADER: json.dumps({"chunks": chunks})}
        with httpx2.Client(base_url=base_url) as recorder:
            replies = {
                "reply": recorder.post("/chat/completions", json=body).text,
                "stream": recorder.post("/chat/completions", json=streamed, headers=headers).text,
                "stream_with_usage": recorder.post(
                    "/chat/completions", json=with_usage, headers=headers
                ).text,
            }
        return cls(replies)

    def save(self, path: Path) -> None:
        replies = {
            "reply": self.reply.decode(),
            "stream": self.stream.decode(),
            "stream_with_usage": self.stream_with_usage.decode(),
        }
        path.write_text(json.dumps(replies), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Replay:
        return cls(json.loads(path.read_text(encoding="utf-8")))

    def handle(self, request: Any) -> Any:
        body = json.loads(request.content)
        if not body.get("stream"):
            return httpx2.Response(
                200, content=self.reply, headers={"content-type": "application/json"}
            )
        asked = (body.get("stream_options") or {}).get("include_usage")
        content = self.stream_with_usage if asked else self.stream
        return httpx2.Response(200, content=content, headers={"content-type": "text/event-stream"})

    def client(self) -> Any:
        return openai.OpenAI(
            api_key="bench",
            base_url="http://replay.invalid/v1",
            max_retries=0,
            http_client=httpx2.Client(transport=httpx2.MockTransport(self.handle)),
        )


class Clock:
    """CPU time of the calling thread and wall time of each unit of work in a block."""

    def __init__(self) -> None:
        self.cpu_ns: list[int] = []
        self.wall_ns: list[int] = []

    def time(self, work: Callable[[], object]) -> object:
        cpu, wall = time.thread_time_ns(), time.perf_counter_ns()
        result = work()
        self.cpu_ns.append(time.thread_time_ns() - cpu)
        self.wall_ns.append(time.perf_counter_ns() - wall)
        return result

    def median(self) -> Sample:
        """The block's median unit: steady against collector pauses and preemption."""
        return Sample(statistics.median(self.cpu_ns) / 1000, statistics.median(self.wall_ns) / 1000)


def call_block(client: Any, calls: int) -> Callable[[], Sample]:
    def create() -> object:
        return client.chat.completions.create(model=MODEL, messages=MESSAGES)

    def run() -> Sample:
        clock = Clock()
        for _ in range(calls):
            clock.time(create)
        return clock.median()

    return run


def chunk_block(client: Any, streams: int, chunks: int) -> Callable[[], tuple[Sample, int]]:
    """Iterate ``streams`` streamed replies, timing each chunk the caller receives (stream
    creation and the end of the stream are not timed); the median chunk and how many there were."""
    headers = {SCENARIO_HEADER: json.dumps({"chunks": chunks})}
    done = object()

    def run() -> tuple[Sample, int]:
        clock = Clock()
        for _ in range(streams):
            stream = client.chat.completions.create(
                model=MODEL, messages=MESSAGES, stream=True, extra_headers=headers
            )
            chunk_iterator = iter(stream)
            receive = functools.partial(next, chunk_iterator, done)
            while clock.time(receive) is not done:
                pass
            clock.cpu_ns.pop()  # the step that found the stream's end
            clock.wall_ns.pop()
        return clock.median(), len(clock.cpu_ns)

    return run


class Telemetry:
    """The providers handed to the instrumentors: spans to a discarding exporter, and (for the
    compared package's metrics and log events) a meter provider with an in-memory reader and a
    logger provider whose records are kept in memory."""

    def __init__(self, span_processor: SpanProcessor) -> None:
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(span_processor)
        self.metric_reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.metric_reader])
        self.logs = InMemoryLogRecordExporter()
        self.logger_provider = LoggerProvider()
        self.logger_provider.add_log_record_processor(SimpleLogRecordProcessor(self.logs))

    def metric_names(self) -> list[str]:
        data = self.metric_reader.get_metrics_data()
        names = {
            metric.name
            for resource in (data.resource_metrics if data else [])
            for scope in resource.scope_metrics
            for metric in scope.metrics
        }
        return sorted(names)

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()
        self.logger_provider.shutdown()


def variants(telemetry: Telemetry) -> list[Variant]:
    """The four ways of making the same calls, each switched off to begin with."""
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor as ComparedInstrumentor

    ours, other = OpenAIInstrumentor(), ComparedInstrumentor()
    tracing = {"tracer_provider": telemetry.tracer_provider}
    signals = {
        **tracing,
        "meter_provider": telemetry.meter_provider,
        "logger_provider": telemetry.logger_provider,
    }
    return [
        Variant("plain", lambda: None, lambda: None),
        Variant(OURS, lambda: ours.instrument(**tracing), ours.uninstrument),
        Variant(OTHER, lambda: other.instrument(**tracing), other.uninstrument),
        Variant(OTHER_METRICS, lambda: other.instrument(**signals), other.uninstrument),
    ]


Figures = dict[str, dict[str, list[Sample]]]  # kind ("call" | "chunk") -> variant -> rounds


def measure(
    args: argparse.Namespace, client: Any, runs: list[Variant]
) -> tuple[Figures, dict[str, int]]:
    """Samples per round for each variant, and the chunks the caller saw per block."""
    calls = call_block(client, args.calls)
    chunks = chunk_block(client, args.streams, args.chunks)
    figures: Figures = {"call": {v.name: [] for v in runs}, "chunk": {v.name: [] for v in runs}}
    seen: dict[str, int] = {}

    def block(variant: Variant) -> tuple[Sample, Sample, int]:
        gc.collect()
        variant.on()
        try:
            call_sample = calls()
            chunk_sample, received = chunks()
            return call_sample, chunk_sample, received
        finally:
            variant.off()

    for variant in runs:  # warm-up: connections, imports, caches
        block(variant)
    for round_number in range(args.rounds):
        shift = round_number % len(runs)
        for variant in runs[shift:] + runs[:shift]:
            call_sample, chunk_sample, received = block(variant)
            figures["call"][variant.name].append(call_sample)
            figures["chunk"][variant.name].append(chunk_sample)
            seen[variant.name] = received
    client.close()
    return figures, seen


# Instruction counts: each variant in its own process under callgrind, counting only inside
# ``functools.reduce`` (a C function callgrind can toggle on); a loaded machine does not change
# them.
TOGGLE = "functools_reduce"
Counts = dict[str, tuple[float, float]]  # variant -> (instructions per call, per chunk)


def count_in_child(args: argparse.Namespace) -> None:
    """Under callgrind: one variant's non-streamed calls, then its chunks, each counted once."""
    telemetry = Telemetry(BatchSpanProcessor(DiscardExporter(), schedule_delay_millis=3_600_000))
    variant = next(v for v in variants(telemetry) if v.name == args.count)
    client = Replay.load(args.replay).client()

    def create(**extra: Any) -> Any:
        return client.chat.completions.create(model=MODEL, messages=MESSAGES, **extra)

    variant.on()
    for _chunk in create(stream=True):  # warm-up: first-call caches and imports
        pass
    for _ in range(3):
        create()

    def calls(_first: object, _second: object) -> None:
        for _ in range(args.calls):
            create()

    gc.collect()
    functools.reduce(calls, [0, 0])
    streams = [create(stream=True) for _ in range(args.streams)]
    received = 0

    def chunks(_first: object, _second: object) -> None:
        nonlocal received
        for stream in streams:
            for _chunk in stream:
                received += 1

    gc.collect()
    functools.reduce(chunks, [0, 0])
    variant.off()
    client.close()
    print(json.dumps({"chunks": received}), flush=True)


def callgrind_total(path: Path) -> int:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
    raise SystemExit(f"no totals in {path}")


def count_instructions(args: argparse.Namespace, replay: Replay) -> Counts:
    """Instructions per call and per chunk for each variant, two callgrind runs at a time."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("--instructions needs valgrind (apt-get install valgrind)")
    names = ["plain", OURS, OTHER, OTHER_METRICS]
    with tempfile.TemporaryDirectory(prefix="spanledger-compare-") as folder:
        replies = Path(folder) / "replies.json"
        replay.save(replies)

        def run(name: str) -> tuple[float, float]:
            out = Path(folder) / f"{name}.callgrind"
            command = [
                valgrind,
                "--tool=callgrind",
                f"--toggle-collect={TOGGLE}",
                f"--dump-after={TOGGLE}",
                f"--callgrind-out-file={out}",
                sys.executable,
                str(Path(__file__).resolve()),
                *("--count", name, "--replay", str(replies)),
                *("--calls", str(args.count_calls), "--streams", "1"),
            ]
            done = subprocess.run(
                command,
                env={**os.environ, "PYTHONHASHSEED": "0"},  # the same dict and set layouts
                capture_output=True,
                text=True,
                timeout=1800,
                check=False,
            )
            if done.returncode != 0:
                raise SystemExit(f"callgrind run of {name} failed:\n{done.stderr[-2000:]}")
            received = json.loads(done.stdout.strip().splitlines()[-1])["chunks"]
            per_call = callgrind_total(Path(f"{out}.1")) / args.count_calls
            return per_call, callgrind_total(Path(f"{out}.2")) / received

        with ThreadPoolExecutor(max_workers=2) as pool:
            return dict(zip(names, pool.map(run, names), strict=True))


def summarise_counts(counts: Counts, plain_call_us: float, calls: int, chunks: int) -> list[str]:
    """Instructions per unit and added to plain; the added share in µs at the plain call's rate."""
    rate = counts["plain"][0] / plain_call_us  # instructions per µs of a plain call, this machine
    lines = [
        f"[instructions, callgrind: {calls} calls, 1 stream of {chunks} chunks]  "
        "per call, added vs plain (≈ µs)     per chunk, added vs plain (≈ µs)"
    ]
    for name, (per_call, per_chunk) in counts.items():
        cells = []
        for kind, value in (("call", per_call), ("chunk", per_chunk)):
            plain = counts["plain"][0 if kind == "call" else 1]
            added = value - plain
            extra = "" if name == "plain" else f"{added:+12,.0f} ({added / rate:+.1f})"
            cells.append(f"{value:12,.0f} {extra:26}")
        lines.append(f"  {name:18}{cells[0]} {cells[1]}".rstrip())
    ratios = []
    for index in (0, 1):
        ours = counts[OURS][index] - counts["plain"][index]
        other = counts[OTHER][index] - counts["plain"][index]
        ratios.append(f"{ours / other:.2f}" if other > 0 else f"n/a ({OTHER} added ≤ 0)")
    lines.append(f"  {OURS}/{OTHER} added: per call {ratios[0]}, per chunk {ratios[1]}")
    return lines


@dataclass
class Produced:
    """What one instrumentation recorded for one call."""

    name: str
    attributes: dict[str, Any]

    @property
    def tokens(self) -> str:
        found = [self.attributes.get(f"gen_ai.usage.{kind}_tokens") for kind in ("input", "output")]
        if any(value is None for value in found):
            return "none"
        return f"{found[0]} in / {found[1]} out"


PRODUCED_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("`create()`", {}),
    ("`create(stream=True)`", {"stream": True}),
    (
        "`create(stream=True, stream_options={include_usage})`",
        {"stream": True, "stream_options": {"include_usage": True}},
    ),
]


@dataclass
class Recorded:
    """The spans each variant made for the same calls; the compared package's other signals."""

    spans: dict[str, list[Produced]]
    metric_names: list[str]
    log_records: int


def produced(base_url: str, chunks: int) -> Recorded:
    """The spans each variant made for the same calls, the compared package's metric names
    and its log records, set up as in the timed runs; checks that both uninstrument fully."""
    exporter = InMemorySpanExporter()
    telemetry = Telemetry(SimpleSpanProcessor(exporter))
    client = Replay.record(base_url, chunks).client()
    spans: dict[str, list[Produced]] = {}
    for variant in variants(telemetry):
        variant.on()
        try:
            for _label, extra in PRODUCED_CALLS:
                reply = client.chat.completions.create(model=MODEL, messages=MESSAGES, **extra)
                if extra.get("stream"):
                    for _chunk in reply:
                        pass
        finally:
            variant.off()
        finished = exporter.get_finished_spans()
        exporter.clear()
        expected = 0 if variant.name == "plain" else len(PRODUCED_CALLS)
        if len(finished) != expected:
            raise SystemExit(f"{variant.name}: {len(finished)} spans for {expected} expected")
        spans[variant.name] = [Produced(s.name, dict(s.attributes or {})) for s in finished]
    client.chat.completions.create(model=MODEL, messages=MESSAGES)
    if exporter.get_finished_spans():
        raise SystemExit("a span was recorded after every instrumentor was uninstrumented")
    recorded = Recorded(spans, telemetry.metric_names(), len(telemetry.logs.get_finished_logs()))
    client.close()
    telemetry.shutdown()
    return recorded


def spread(values: Sequence[float]) -> str:
    return f"{statistics.median(values):+7.2f} ({min(values):+.2f} … {max(values):+.2f})"


def summarise(transport: str, figures: Figures, names: list[str]) -> list[str]:
    """Per clock: each variant's median, and what it added to plain in the same round."""
    lines = []
    for clock, label in (("cpu_us", "CPU"), ("wall_us", "wall")):
        lines.append(
            f"[{transport}, {label} µs]  per call: median, added vs plain (range)"
            "        per chunk: median, added vs plain (range)"
        )
        added: dict[str, dict[str, float]] = {"call": {}, "chunk": {}}
        for name in names:
            cells = []
            for kind, digits in (("call", 1), ("chunk", 2)):
                values = [getattr(sample, clock) for sample in figures[kind][name]]
                plain = [getattr(sample, clock) for sample in figures[kind]["plain"]]
                diff = [v - p for v, p in zip(values, plain, strict=True)]
                added[kind][name] = statistics.median(diff)
                extra = "" if name == "plain" else spread(diff)
                cells.append(f"{statistics.median(values):8.{digits}f} {extra:34}")
            lines.append(f"  {name:18}{cells[0]} {cells[1]}".rstrip())
        ratios = []
        for kind in ("call", "chunk"):
            ours, other = added[kind][OURS], added[kind][OTHER]
            ratios.append(f"{ours / other:.2f}" if other > 0 else f"n/a ({OTHER} added ≤ 0)")
        lines.append(f"  {OURS}/{OTHER} added: per call {ratios[0]}, per chunk {ratios[1]}")
    return lines


def produced_table(spans: dict[str, list[Produced]]) -> str:
    rows = [
        f"| same call | {OURS}: span, attributes, tokens | {OTHER}: span, attributes, tokens |",
        "| --- | --- | --- |",
    ]
    for index, (label, _extra) in enumerate(PRODUCED_CALLS):
        cells = []
        for name in (OURS, OTHER):
            span = spans[name][index]
            cells.append(f"`{span.name}`, {len(span.attributes)}, {span.tokens}")
        rows.append(f"| {label} | {cells[0]} | {cells[1]} |")
    return "\n".join(rows)


def only_in(spans: dict[str, list[Produced]], index: int) -> tuple[list[str], list[str]]:
    ours = set(spans[OURS][index].attributes)
    other = set(spans[OTHER][index].attributes)
    return sorted(ours - other), sorted(other - ours)


def report(
    args: argparse.Namespace,
    results: dict[str, tuple[Figures, dict[str, int]]],
    counts: Counts | None,
    recorded: Recorded,
) -> str:
    command = (
        f"python bench/instrumentation_compare.py --rounds {args.rounds} --calls {args.calls} "
        f"--streams {args.streams} --chunks {args.chunks}"
        + (f" --count-calls {args.count_calls}" if counts is not None else " --no-instructions")
    )
    spans = recorded.spans
    names = ["plain", OURS, OTHER, OTHER_METRICS]
    blocks = []
    for transport, (figures, seen) in results.items():
        blocks.extend(summarise(transport, figures, names))
        received = sorted(set(seen.values()))
        blocks.append(f"  chunks the caller saw per block: {', '.join(map(str, received))}")
    if counts is not None:
        plain = results["replay"][0]["call"]["plain"]
        plain_call_us = statistics.median(sample.cpu_us for sample in plain)
        blocks.extend(summarise_counts(counts, plain_call_us, args.count_calls, args.chunks))
    else:
        blocks.append("[instructions] not counted (--no-instructions, or no valgrind installed)")
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    ours_only, other_only = only_in(spans, 0)
    stream_ours, stream_other = only_in(spans, 1)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    versions = (
        f"spanledger {version('spanledger')}, {COMPARED_DISTRIBUTION} "
        f"{version(COMPARED_DISTRIBUTION)} (with opentelemetry-util-genai "
        f"{version('opentelemetry-util-genai')}), openai {openai.__version__}, "
        f"opentelemetry-sdk {version('opentelemetry-sdk')}"
    )
    method = (
        "The same `openai` SDK calls in one process, one block per variant per round, the order "
        "rotating from round to round: `plain` (not instrumented), `spanledger` "
        f"(`OpenAIInstrumentor`), `{OTHER}` (the OpenTelemetry contrib "
        f"`{COMPARED_DISTRIBUTION}`, spans only, as spanledger) and `{OTHER_METRICS}` (the "
        "same given a meter and a logger provider, as `opentelemetry-instrument` would, so it "
        "records its duration and token histograms). Each is instrumented before its block and "
        "uninstrumented after it; spans go to one TracerProvider with a BatchSpanProcessor and "
        "a discarding exporter. Per call: whole non-streamed `chat.completions.create`; per "
        "chunk: each chunk of streamed replies the caller receives, the caller asking for no "
        "usage chunk (spanledger asks for it and hides it: reading that chunk is in its "
        "instruction count, not in its median chunk). `replay`: the stand-in's recorded "
        "replies served in-process by "
        "`httpx2.MockTransport`; `standin`: over HTTP to the stand-in process. Timing: the "
        "median call or chunk of each block (CPU time of the calling thread, and wall time), "
        'then medians over rounds; "added" is the variant minus `plain` in the same round, '
        "with its range over rounds. On a shared machine these move by more than either "
        "instrumentation adds, so the instructions are also counted under callgrind, each "
        "variant in a process of its own making the same replayed calls (only the calls, or "
        "the iteration of one stream to its end, are counted): the load does not move that "
        "figure. The "
        "≈ µs beside an instruction count converts it at the rate of a plain `replay` call."
    )
    from opentelemetry.util.genai.utils import is_experimental_mode

    path = (
        "always takes its latest-conventions path (`TelemetryHandler`), whatever "
        "`OTEL_SEMCONV_STABILITY_OPT_IN` says"
        if is_experimental_mode()
        else "takes its semantic conventions 1.30 path"
    )
    setup = (
        "Neither captures message content. With this util-genai the compared package "
        f"{path}; its log events are off unless content capture "
        f"asks for them ({recorded.log_records} log records here); its metrics "
        f"({', '.join(recorded.metric_names)}) are recorded when it is given a meter provider. "
        "After uninstrumenting both, a call made no span."
    )
    if "server.address" not in spans[OTHER][0].attributes:
        setup += (
            f" With openai 3.x, `{OTHER}` records no `server.address` or `server.port`: it "
            "expects the client's base URL to be an `httpx.URL`, and it is an `httpx2.URL` "
            "(open-telemetry/opentelemetry-python-contrib#4953)."
        )
    setup += (
        " To import at all beside openai 3.x it needs `httpx` 1.x, which it does not declare "
        "(openai 3.x brings `httpx2` only), and an opentelemetry-util-genai before 1.2b0 (later "
        "ones no longer have `opentelemetry.util.genai.instruments`): the setup script "
        "installs both."
    )
    run = (
        f"Run {when} in `bench/.compare-venv` (`{SETUP_HINT}`): {versions}. Machine: "
        f"{os.cpu_count()} CPUs ({platform.machine()}), Python {platform.python_version()}; "
        f"load average after the run {load}."
    )
    differences = (
        f"Non-streamed call, attributes only `{OURS}` sets: {', '.join(ours_only) or '-'}; "
        f"only `{OTHER}`: {', '.join(other_only) or '-'}. Streamed call without a usage chunk "
        f"asked for, only `{OURS}`: {', '.join(stream_ours) or '-'}; only `{OTHER}`: "
        f"{', '.join(stream_other) or '-'}."
    )
    return "\n\n".join(
        [
            "## Instrumentation compared (`bench/instrumentation_compare.py`)",
            fill(method, width=95),
            fill(setup, width=95),
            fill(run, width=95),
            f"```\n$ {command}\n" + "\n".join(blocks) + "\n```",
            "What each recorded for the same calls (span name, attribute count, token usage):",
            produced_table(spans),
            fill(differences, width=95),
        ]
    )


def write_section(text: str) -> None:
    """Replace this benchmark's section of RESULTS.md, or put it after the overhead section."""
    block = f"{BEGIN}\n{text}\n{END}"
    current = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    if BEGIN in current and END in current:
        head, rest = current.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        updated = f"{head}{block}{tail}"
    elif AFTER in current:
        head, tail = current.split(AFTER, 1)
        updated = f"{head}{AFTER}\n\n{block}{tail}"
    else:
        updated = f"{current.rstrip()}\n\n{block}\n"
    RESULTS.write_text(updated, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=21, help="timed rounds [21]")
    parser.add_argument("--calls", type=int, default=60, help="non-streamed calls per block [60]")
    parser.add_argument("--streams", type=int, default=2, help="streams per block [2]")
    parser.add_argument("--chunks", type=int, default=400, help="chunks per stream [400]")
    parser.add_argument(
        "--instructions",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="count instructions under callgrind too [when valgrind is installed]",
    )
    parser.add_argument(
        "--count-calls", type=int, default=40, help="calls counted under callgrind [40]"
    )
    parser.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS.md")
    parser.add_argument(
        "--if-available",
        action="store_true",
        help=f"without {COMPARE_VENV.name}, say how to create it and exit 0",
    )
    parser.add_argument("--count", help=argparse.SUPPRESS)  # a callgrind child: this variant
    parser.add_argument("--replay", type=Path, help=argparse.SUPPRESS)  # its recorded replies
    args = parser.parse_args()
    ensure_compare_venv(args.if_available)
    for name in CONTENT_SETTINGS:
        os.environ.pop(name, None)
    if args.count:
        count_in_child(args)
        return
    if args.instructions is None:
        args.instructions = shutil.which("valgrind") is not None

    telemetry = Telemetry(BatchSpanProcessor(DiscardExporter()))
    runs = variants(telemetry)
    process, base_url = start_standin()
    try:
        replay = Replay.record(base_url, args.chunks)
        standin_client = openai.OpenAI(api_key="bench", base_url=base_url, max_retries=0)
        results = {
            "replay": measure(args, replay.client(), runs),
            "standin": measure(args, standin_client, runs),
        }
        recorded = produced(base_url, chunks=5)
    finally:
        process.terminate()
        process.wait(timeout=10)
    telemetry.shutdown()
    counts = count_instructions(args, replay) if args.instructions else None
    text = report(args, results, counts, recorded)
    print(text)
    if not args.no_write:
        write_section(text)


if __name__ == "__main__":
    main()
