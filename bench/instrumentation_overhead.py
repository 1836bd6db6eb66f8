"""Instrumentation overhead: the OpenAI SDK with and without ``OpenAIInstrumentor``, same run.

Directional only: compare runs on the same machine. The stand-in serves the OpenAI wire protocol
from a separate process, so its work is not counted. Each round times, in alternating order, a
block of uninstrumented and a block of instrumented work on one keep-alive client:

- per call: ``chat.completions.create`` (not streamed), whole call;
- per chunk: iterating streamed replies of many chunks (stream creation is not timed).

Two transports, same SDK calls:

- ``standin``: over HTTP to the stand-in process (end to end; noisy on a busy machine);
- ``replay``: the stand-in's recorded replies served in-process by an ``httpx2.MockTransport``,
  so no socket or other process is involved and the SDK's own work plus the instrumentation's
  is all that is timed.

Then the instrumentation's own code, isolated from the SDKs' work (``isolated`` for OpenAI,
``isolated anthropic`` for the Anthropic wrapper and its stream body watch), around wrapped
functions that return ready results. In the same rounds the OpenTelemetry SDK alone starts and
ends a span with the same attributes; the added time minus that span, round by round, is the
part of the overhead that is the instrumentation's rather than the OpenTelemetry SDK's.

Both CPU time of the calling thread (what the instrumentation adds to the application; steady
under load) and wall-clock time are measured. Reported: the medians over rounds of the
instrumented-minus-uninstrumented difference, with its range, and the ratio of the medians.
Spans go through a BatchSpanProcessor to an exporter that discards them.

    python bench/instrumentation_overhead.py              # writes bench/RESULTS.md
    python bench/instrumentation_overhead.py --rounds 9 --calls 400 --no-write
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import anthropic
import httpx2
import openai
from anthropic._models import FinalRequestOptions as AnthropicRequestOptions
from anthropic._models import construct_type as anthropic_construct
from anthropic.types import Message
from harness import count_in_reduce
from openai._models import FinalRequestOptions, construct_type
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, Tracer

from spanledger.instrumentation.anthropic import patch as anthropic_patch
from spanledger.instrumentation.genai import Call, call_wrapper, observe, start_call
from spanledger.instrumentation.openai import OpenAIInstrumentor
from spanledger.instrumentation.openai.patch import (
    describer,
    item_reader,
    parse_wrapper,
    settle,
)
from spanledger.standin import SCENARIO_HEADER

RESULTS = Path(__file__).with_name("RESULTS.md")
BEGIN, END = "<!-- instrumentation:begin -->", "<!-- instrumentation:end -->"
MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]
COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o-mini",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "Paris."}, "finish_reason": "stop"}
    ],
    "usage": {
        "prompt_tokens": 8,
        "completion_tokens": 2,
        "total_tokens": 10,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    },
}
CHUNK = {
    "id": "chatcmpl-1",
    "object": "chat.completion.chunk",
    "created": 1,
    "model": "gpt-4o-mini",
    "choices": [{"index": 0, "delta": {"content": "Pa"}, "finish_reason": None}],
    "usage": None,
}
ANTHROPIC_MODEL = "claude-haiku-4-5"
ANTHROPIC_BODY = {"model": ANTHROPIC_MODEL, "max_tokens": 64, "messages": MESSAGES}
ANTHROPIC_MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": ANTHROPIC_MODEL,
    "content": [{"type": "text", "text": "Paris."}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 8,
        "output_tokens": 2,
        "cache_read_input_tokens": 0,
        "cache_creation_input_tokens": 0,
    },
}
# Each call's span attributes (at start, at end), for the OpenTelemetry SDK's own cost of a span.
OPENAI_SPAN = (
    {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.request.stream": False,
        "server.address": "127.0.0.1",
        "server.port": 8000,
    },
    {
        "gen_ai.usage.input_tokens": 8,
        "gen_ai.usage.output_tokens": 2,
        "gen_ai.usage.cache_read.input_tokens": 0,
        "gen_ai.usage.reasoning.output_tokens": 0,
        "gen_ai.response.model": "gpt-4o-mini",
        "gen_ai.response.id": "chatcmpl-1",
        "gen_ai.response.finish_reasons": ("stop",),
    },
)
ANTHROPIC_SPAN = (
    {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": ANTHROPIC_MODEL,
        "gen_ai.request.stream": False,
        "server.address": "127.0.0.1",
        "server.port": 8000,
        "gen_ai.request.max_tokens": 64,
    },
    {
        "gen_ai.usage.input_tokens": 8,
        "gen_ai.usage.output_tokens": 2,
        "gen_ai.usage.cache_read.input_tokens": 0,
        "gen_ai.usage.cache_creation.input_tokens": 0,
        "gen_ai.response.model": ANTHROPIC_MODEL,
        "gen_ai.response.id": "msg_1",
        "gen_ai.response.finish_reasons": ("end_turn",),
    },
)
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


class Replay:
    """The stand-in's replies, recorded once, served in-process to the SDK."""

    def __init__(self, base_url: str, chunks: int) -> None:
        recorder = httpx2.Client(base_url=base_url)
        body = {"model": "gpt-4o-mini", "messages": MESSAGES}
        headers = {SCENARIO_HEADER: json.dumps({"chunks": chunks})}
        self.reply = recorder.post("/chat/completions", json=body).content
        streamed = {**body, "stream": True}
        self.stream = recorder.post("/chat/completions", json=streamed, headers=headers).content
        with_usage = {**streamed, "stream_options": {"include_usage": True}}
        self.stream_with_usage = recorder.post(
            "/chat/completions", json=with_usage, headers=headers
        ).content
        recorder.close()

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        if not body.get("stream"):
            return httpx2.Response(
                200, content=self.reply, headers={"content-type": "application/json"}
            )
        asked = (body.get("stream_options") or {}).get("include_usage")
        content = self.stream_with_usage if asked else self.stream
        return httpx2.Response(200, content=content, headers={"content-type": "text/event-stream"})

    def client(self) -> openai.OpenAI:
        transport = httpx2.MockTransport(self.handle)
        return openai.OpenAI(
            api_key="bench",
            base_url="http://replay.invalid/v1",
            max_retries=0,
            http_client=httpx2.Client(transport=transport),
        )


def measure(
    args: argparse.Namespace, client: openai.OpenAI, provider: TracerProvider
) -> dict[str, list[tuple[Sample, Sample]]]:
    """Per round: (uninstrumented, instrumented) samples for calls and for chunks."""
    instrumentor = OpenAIInstrumentor()
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
    return results


class RawResponse:
    """Stands for the SDK response object whose ``_parse`` builds the result."""

    http_response = SimpleNamespace(headers={})


Work = Callable[[], int]


def _sse(event: str, data: dict[str, object]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def anthropic_stream_chunks(events: int) -> list[bytes]:
    """The body of a streamed Message as the server sends it, one event per network chunk."""
    delta = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": "Pa"},
    }
    block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text"}}
    end = {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn"},
        "usage": {"output_tokens": 2},
    }
    return [
        _sse(
            "message_start",
            {"type": "message_start", "message": {**ANTHROPIC_MESSAGE, "content": []}},
        ),
        _sse("content_block_start", block),
        *(_sse("content_block_delta", delta) for _ in range(events - 5)),
        _sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _sse("message_delta", end),
        _sse("message_stop", {"type": "message_stop"}),
    ]


class ChunkBody(httpx2.SyncByteStream):
    """A response body that hands out prepared network chunks."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.chunks)


SHORT_STREAM = "short-stream"
"""The same streams cut to a quarter: the difference per chunk is the marginal cost of a chunk,
without the stream's own start and end (its span), which belong to the call."""


def short_stream(chunks: int) -> int:
    return max(1, chunks // 4)


def marginal(
    pairs: list[tuple[Sample, Sample]], short: list[tuple[Sample, Sample]], chunks: int
) -> str:
    """Per chunk added beyond the stream's own start and end, round by round."""
    fewer = short_stream(chunks)
    added = [
        ((long_i.cpu_us - long_p.cpu_us) * chunks - (short_i.cpu_us - short_p.cpu_us) * fewer)
        / (chunks - fewer)
        for (long_p, long_i), (short_p, short_i) in zip(pairs, short, strict=True)
    ]
    median = statistics.median(added)
    verdict = "met" if median <= CHUNK_TARGET_US else "NOT met"
    return (
        f"per chunk CPU : marginal (streams of {chunks} and {fewer} chunks) added "
        f"{median:+.2f} µs (range {min(added):+.2f} … {max(added):+.2f})  "
        f"target ≤ {CHUNK_TARGET_US:g} µs: {verdict}"
    )


def span_work(tracer: Tracer, attributes: tuple[dict, dict], spans: int) -> Work:
    """The OpenTelemetry SDK alone: start and end ``spans`` spans carrying ``attributes``."""
    start, usage = attributes

    def work() -> int:
        for _ in range(spans):
            span = tracer.start_span("chat", kind=SpanKind.CLIENT, attributes=start)
            span.set_attributes(usage)
            span.end()
        return spans

    return work


def nothing() -> int:
    return 1


def isolated_openai(tracer: Tracer, calls: int, chunks: int) -> dict[str, tuple[Work, Work]]:
    """(plain, instrumented) work for the OpenAI wrappers, per call and per chunk.

    Per call: the installed wrappers' code (``request`` around ``_parse``) with a wrapped
    function that hands back a ready ``ChatCompletion``. Per chunk: the stream observer and the
    chunk reader that observe a stream in production, over ready ``ChatCompletionChunk`` objects.
    """
    client = openai.OpenAI(api_key="bench", base_url="http://127.0.0.1:8000/v1")
    body = {"model": "gpt-4o-mini", "messages": MESSAGES}
    options = FinalRequestOptions.construct(method="post", url="/chat/completions", json_data=body)
    stream_options = FinalRequestOptions.construct(
        method="post", url="/chat/completions", json_data={**body, "stream": True}
    )
    completion = construct_type(type_=ChatCompletion, value=COMPLETION)
    chunk_objects = [construct_type(type_=ChatCompletionChunk, value=CHUNK) for _ in range(chunks)]
    raw = RawResponse()
    describe = describer(inject_stream_usage=True)
    request = call_wrapper(describe, settle)(tracer)

    def parse() -> object:
        return completion

    def sdk_call(*args: object, **kwargs: object) -> object:
        return parse()

    def instrumented_sdk_call(*args: object, **kwargs: object) -> object:
        return parse_wrapper(parse, raw, (), {})

    def plain_calls() -> int:
        for _ in range(calls):
            sdk_call(ChatCompletion, options, stream=False)
        return calls

    def instrumented_calls() -> int:
        for _ in range(calls):
            request(instrumented_sdk_call, client, (ChatCompletion, options), {"stream": False})
        return calls

    def stream_works(objects: list[ChatCompletionChunk]) -> tuple[Work, Work]:
        def plain_chunks() -> int:
            for _chunk in iter(objects):
                pass
            return len(objects)

        def instrumented_chunks() -> int:
            description = describe(client, (ChatCompletionChunk, stream_options), {"stream": True})
            call = Call(tracer.start_span("chat gpt-4o-mini"), description)
            description.details.usage_injected = True
            call.usage.content_chunks = 0  # as observing a stream in production starts it
            for _chunk in observe(iter(objects), call, item_reader(call)):
                pass
            return len(objects)

        return plain_chunks, instrumented_chunks

    return {
        "call": (plain_calls, instrumented_calls),
        "chunk": stream_works(chunk_objects),
        SHORT_STREAM: stream_works(chunk_objects[: short_stream(chunks)]),
        "span": (span_work(tracer, OPENAI_SPAN, calls), nothing),
    }


def isolated_anthropic(tracer: Tracer, calls: int, chunks: int) -> dict[str, tuple[Work, Work]]:
    """(plain, instrumented) work for the Anthropic wrapper, per call and per streamed event.

    Per call: the installed ``request`` wrapper around a function that hands back a ready
    ``Message``. Per event: reading a streamed body whose network chunks carry one server-sent
    event each, through the body watch that follows streams in production.
    """
    client = anthropic.Anthropic(api_key="bench", base_url="http://127.0.0.1:8000")
    options = AnthropicRequestOptions.construct(
        method="post", url="/v1/messages", json_data=ANTHROPIC_BODY
    )
    stream_options = AnthropicRequestOptions.construct(
        method="post", url="/v1/messages", json_data={**ANTHROPIC_BODY, "stream": True}
    )
    message = anthropic_construct(type_=Message, value=ANTHROPIC_MESSAGE)
    request = call_wrapper(anthropic_patch.describe, anthropic_patch.settle)(tracer)

    def sdk_call(*args: object, **kwargs: object) -> object:
        return message

    def plain_calls() -> int:
        for _ in range(calls):
            sdk_call(Message, options, stream=False)
        return calls

    def instrumented_calls() -> int:
        for _ in range(calls):
            request(sdk_call, client, (Message, options), {"stream": False})
        return calls

    def stream_works(events: int) -> tuple[Work, Work]:
        body_chunks = anthropic_stream_chunks(events)

        def plain_chunks() -> int:
            for _chunk in ChunkBody(body_chunks):
                pass
            return events

        def instrumented_chunks() -> int:
            response = httpx2.Response(
                200, headers={"content-type": "text/event-stream"}, stream=ChunkBody(body_chunks)
            )
            description = anthropic_patch.describe(client, (Message, stream_options), {})
            anthropic_patch.settle(start_call(tracer, description), response)
            for _chunk in response.stream:
                pass
            return events

        return plain_chunks, instrumented_chunks

    return {
        "call": (plain_calls, instrumented_calls),
        "chunk": stream_works(chunks),
        SHORT_STREAM: stream_works(short_stream(chunks)),
        "span": (span_work(tracer, ANTHROPIC_SPAN, calls), nothing),
    }


def isolated(
    provider: TracerProvider, calls: int, chunks: int, rounds: int
) -> dict[str, dict[str, list[tuple[Sample, Sample]]]]:
    """CPU µs of the instrumentation's own work, with the SDK's work taken out.

    Each round times, per SDK, the plain and the instrumented work per call and per chunk, and
    the OpenTelemetry SDK's own cost of one span with the same attributes ("span"), so that
    what the instrumentation adds beyond that span can be taken round by round.
    """
    tracer = provider.get_tracer("bench.isolated")
    works = {
        "isolated": isolated_openai(tracer, calls, chunks),
        "isolated anthropic": isolated_anthropic(tracer, calls, chunks),
    }
    for by_kind in works.values():
        for plain, instrumented in by_kind.values():
            plain()
            instrumented()
    results: dict[str, dict[str, list[tuple[Sample, Sample]]]] = {
        name: {kind: [] for kind in by_kind} for name, by_kind in works.items()
    }
    for _ in range(rounds):
        for name, by_kind in works.items():
            for kind, (plain, instrumented) in by_kind.items():
                # Each block starts from a collected heap, so that a collection of garbage left by
                # earlier blocks does not land in one block at random.
                gc.collect()
                plain_sample = timed(plain)
                gc.collect()
                results[name][kind].append((plain_sample, timed(instrumented)))
    return results


def beyond_span(pairs: list[tuple[Sample, Sample]], spans: list[tuple[Sample, Sample]]) -> str:
    """The SDK's own span, and what the instrumentation adds per call beyond it, by round."""
    span_us = [span.cpu_us for span, _ in spans]
    ours = [
        (instrumented.cpu_us - plain.cpu_us) - span
        for (plain, instrumented), span in zip(pairs, span_us, strict=True)
    ]
    return (
        f"per call  CPU : OpenTelemetry SDK span alone {statistics.median(span_us):.1f} µs "
        f"(range {min(span_us):.1f} … {max(span_us):.1f}); ours beyond it "
        f"{statistics.median(ours):+.2f} µs (range {min(ours):+.2f} … {max(ours):+.2f})"
    )


INSTRUCTIONS_CHILD = "--instructions-child"


def instructions_child(calls: int, chunks: int) -> None:
    """Under callgrind: run each isolated work once inside ``functools.reduce``, the window
    that callgrind counts, and print its name and units in the order of the counts."""
    provider = TracerProvider()
    # Spans wait in the queue: no export thread wakes to add its own instructions.
    provider.add_span_processor(
        BatchSpanProcessor(
            DiscardExporter(),
            max_queue_size=1 << 20,
            max_export_batch_size=1 << 20,
            schedule_delay_millis=3_600_000,
        )
    )
    tracer = provider.get_tracer("bench.instructions")
    works = {
        "openai": isolated_openai(tracer, calls, chunks),
        "anthropic": isolated_anthropic(tracer, calls, chunks),
    }
    for sdk, by_kind in works.items():
        for kind, pair in by_kind.items():
            for mode, work in zip(("plain", "instrumented"), pair, strict=True):
                work()
                gc.collect()
                units = functools.reduce(lambda _done, _next, work=work: work(), [0, 0])
                print(f"{sdk} {kind} {mode} {units}", flush=True)
    provider.shutdown()


def count_instructions(calls: int, chunks: int) -> dict[tuple[str, str, str], float] | None:
    """Instructions per unit of each isolated work, counted by callgrind; ``None`` without it.

    Unlike time, the count does not move with the load of the machine.
    """
    if shutil.which("valgrind") is None:
        return None
    counts, stdout = count_in_reduce(
        __file__,
        [INSTRUCTIONS_CHILD, "--calls", str(calls), "--chunks", str(chunks)],
        each_call=True,
    )
    names = [line.split() for line in stdout.splitlines() if line.strip()]
    if len(names) != len(counts):
        raise RuntimeError(f"{len(names)} works but {len(counts)} callgrind counts")
    return {
        (sdk, kind, mode): count / int(units)
        for (sdk, kind, mode, units), count in zip(names, counts, strict=True)
    }


def instruction_lines(counts: dict[tuple[str, str, str], float], chunks: int) -> list[str]:
    lines = ["[instructions] callgrind, isolated sections, instructions per unit"]
    fewer = short_stream(chunks)
    for sdk in ("openai", "anthropic"):
        call = counts[sdk, "call", "instrumented"] - counts[sdk, "call", "plain"]
        span = counts[sdk, "span", "plain"]
        chunk = counts[sdk, "chunk", "instrumented"] - counts[sdk, "chunk", "plain"]
        short = counts[sdk, SHORT_STREAM, "instrumented"] - counts[sdk, SHORT_STREAM, "plain"]
        beyond_stream = (chunk * chunks - short * fewer) / (chunks - fewer)
        lines.append(
            f"{sdk:9}: per call added {call:,.0f} (OpenTelemetry SDK span alone {span:,.0f}, "
            f"ours beyond it {call - span:,.0f}); per chunk added {chunk:,.0f}, of which "
            f"{beyond_stream:,.0f} marginal (the rest is the stream's own start and end)"
        )
    return lines


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
            met = statistics.median(added) <= target_us
            verdict = f"  target ≤ {target_us:g} µs: {'met' if met else 'NOT met'}"
        lines.append(
            f"per {name:5} {label}: plain {median_plain:8.1f} µs, instrumented "
            f"{median_instrumented:8.1f} µs, ratio {median_instrumented / median_plain:5.3f}, "
            f"added {statistics.median(added):+7.2f} µs "
            f"(range {min(added):+.2f} … {max(added):+.2f}){verdict}"
        )
    return "\n".join(lines)


def report(
    args: argparse.Namespace,
    results: dict[str, dict[str, list[tuple[Sample, Sample]]]],
    instructions: dict[tuple[str, str, str], float] | None,
    load_average: tuple[float, float, float],
) -> str:
    command = (
        f"python bench/instrumentation_overhead.py --rounds {args.rounds} --calls {args.calls} "
        f"--streams {args.streams} --chunks {args.chunks}"
        + (" --instructions" if instructions is not None else "")
    )
    blocks = []
    for transport, figures in results.items():
        blocks.append(f"[{transport}]")
        blocks.append(summarise("call", figures["call"], CALL_TARGET_US))
        if "span" in figures:
            blocks.append(beyond_span(figures["call"], figures["span"]))
        blocks.append(summarise("chunk", figures["chunk"], CHUNK_TARGET_US))
        if SHORT_STREAM in figures:
            blocks.append(marginal(figures["chunk"], figures[SHORT_STREAM], args.chunks))
    if instructions is not None:
        blocks.extend(instruction_lines(instructions, args.chunks))
    load = ", ".join(f"{value:.1f}" for value in load_average)
    return (
        "## Instrumentation overhead (`bench/instrumentation_overhead.py`)\n\n"
        "What is timed: the real `openai` SDK with and without `OpenAIInstrumentor`, alternating\n"
        "blocks in one run: whole non-streamed `chat.completions.create` calls, and iteration of\n"
        "streamed replies (per chunk). `standin`: over HTTP to the stand-in in its own process;\n"
        "`replay`: the stand-in's recorded replies served in-process by `httpx2.MockTransport`\n"
        "(no socket, so only the SDK's and the instrumentation's work). Medians over rounds;\n"
        '"added" is instrumented minus plain in the same round, with its range over rounds. CPU\n'
        "is the calling thread's CPU time, the figure that matters to the application and the one\n"
        "that stays steady on a loaded machine.\n\n"
        "`isolated`: the instrumentation's own code as production runs it, around a wrapped\n"
        "function that returns a ready result (OpenAI: the `request` and `_parse` wrappers, and\n"
        "the stream observer over ready chunks; `isolated anthropic`: the `request` wrapper, and\n"
        "the body watch over a streamed body of one server-sent event per network chunk). In\n"
        "the same rounds the OpenTelemetry SDK alone starts and ends a span with the same\n"
        'attributes; "ours beyond it" is the added time minus that span, round by round: the\n'
        "part of the overhead that is the instrumentation's rather than the SDK's.\n"
        "The isolated per-chunk figure spreads the stream's own start and end (its span) over\n"
        'its chunks; "marginal" times the same streams cut to a quarter as well, and takes\n'
        "the added cost per chunk between the two lengths: what one more chunk costs.\n"
        "`[instructions]` (with `--instructions`): the same isolated work counted in CPU\n"
        "instructions under callgrind, which the load of the machine does not move.\n\n"
        f"Machine: {os.cpu_count()} CPUs ({platform.machine()}), Python "
        f"{platform.python_version()}, openai {openai.__version__}, anthropic "
        f"{anthropic.__version__}; load average during the run "
        f"{load}.\n\n"
        f"```\n$ {command}\n" + "\n".join(blocks) + "\n```"
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
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="also count the isolated sections' instructions under valgrind (minutes)",
    )
    parser.add_argument(INSTRUCTIONS_CHILD, action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.instructions_child:
        instructions_child(args.calls, args.chunks)
        return

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DiscardExporter()))
    process, base_url = start_standin()
    try:
        replay = Replay(base_url, args.chunks)
        standin_client = openai.OpenAI(api_key="bench", base_url=base_url, max_retries=0)
        results: dict[str, dict[str, list[tuple[Sample, Sample]]]] = {
            "standin": measure(args, standin_client, provider),
            "replay": measure(args, replay.client(), provider),
        }
    finally:
        process.terminate()
        process.wait(timeout=10)
    results.update(isolated(provider, args.calls, args.chunks, args.rounds))
    provider.shutdown()
    load_average = os.getloadavg()  # of the timed run, before callgrind adds its own load
    instructions = count_instructions(args.calls, args.chunks) if args.instructions else None
    text = report(args, results, instructions, load_average)
    print(text)
    if not args.no_write:
        write_section(text)


if __name__ == "__main__":
    main()
