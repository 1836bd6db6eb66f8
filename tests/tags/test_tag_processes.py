"""Tags and trace cross into child processes started with the spawn method, and commands.

Each child exports its spans over OTLP/HTTP to a receiver in the test; the LLM spans must carry
the parent's tags and belong to the parent's trace.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import tag_worker
from support.processes import run_instrumented
from support.sinks import OtlpHttpBackend, ReceivedSpan
from tag_pipeline import Pipeline

import spanledger
from spanledger.semconv import DEFAULT_TAG_KEYS, GEN_AI_OPERATION_NAME

HERE = Path(__file__).parent


def llm_spans(spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
    return [s for s in spans if GEN_AI_OPERATION_NAME in s.attributes]


def tags_of(span: ReceivedSpan) -> dict[str, Any]:
    return {k: span.attributes[k] for k in DEFAULT_TAG_KEYS if k in span.attributes}


@pytest.mark.slow
def test_process_pool_with_spawn(pipeline: Pipeline, otlp_sink: OtlpHttpBackend, llm: Any) -> None:
    tracer = pipeline.provider.get_tracer("agent")
    spawn = multiprocessing.get_context("spawn")
    with (
        spanledger.tags(customer="acme", feature="batch"),
        tracer.start_as_current_span("agent") as root,
        ProcessPoolExecutor(
            max_workers=2,
            mp_context=spawn,
            initializer=tag_worker.configure,
            initargs=(otlp_sink.endpoint,),
        ) as pool,
    ):
        futures = [
            pool.submit(spanledger.carry(tag_worker.ask), llm.openai_base_url, f"doc {i}", f"t{i}")
            for i in range(3)
        ]
        seen = [future.result(timeout=60) for future in futures]

    trace_id = format(root.get_span_context().trace_id, "032x")
    assert sorted(s["tags"]["team"] for s in seen) == ["t0", "t1", "t2"]
    assert {s["trace_id"] for s in seen} == {trace_id}
    spans = llm_spans(otlp_sink.wait_for(lambda spans: len(llm_spans(spans)) >= 3))
    assert len(spans) == 3
    assert {s.trace_id for s in spans} == {trace_id}
    assert sorted((tags_of(s) for s in spans), key=lambda t: t["team"]) == [
        {"customer": "acme", "feature": "batch", "team": f"t{i}"} for i in range(3)
    ]


@pytest.mark.slow
def test_multiprocessing_process_with_spawn(
    pipeline: Pipeline, otlp_sink: OtlpHttpBackend, llm: Any
) -> None:
    tracer = pipeline.provider.get_tracer("agent")
    spawn = multiprocessing.get_context("spawn")
    results = spawn.Queue()
    with (
        spanledger.tags(customer="globex", env="prod"),
        tracer.start_as_current_span("agent") as root,
    ):
        child = spawn.Process(
            target=spanledger.carry(tag_worker.run_process),
            args=(otlp_sink.endpoint, llm.openai_base_url, results),
        )
        child.start()
    seen = results.get(timeout=60)
    child.join(timeout=30)
    assert child.exitcode == 0

    trace_id = format(root.get_span_context().trace_id, "032x")
    assert seen == {"tags": {"customer": "globex", "env": "prod"}, "trace_id": trace_id}
    (span,) = llm_spans(otlp_sink.wait_for(lambda spans: len(llm_spans(spans)) >= 1))
    assert span.trace_id == trace_id
    assert span.service == "tag-worker"
    assert tags_of(span) == {"customer": "globex", "env": "prod"}


@pytest.mark.slow
def test_command_under_opentelemetry_instrument(
    pipeline: Pipeline, otlp_sink: OtlpHttpBackend, llm: Any
) -> None:
    tracer = pipeline.provider.get_tracer("agent")
    otel_env = {
        "OTEL_SERVICE_NAME": "tag-command",
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": otlp_sink.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "50",
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    with (
        spanledger.tags(customer="initech", feature="cron"),
        tracer.start_as_current_span("agent") as root,
    ):
        env = spanledger.context_env({**os.environ, **otel_env})
        output = run_instrumented(HERE / "tag_worker.py", llm.openai_base_url, env=env)
    assert output.strip() == "{'customer': 'initech', 'feature': 'cron'}"
    (span,) = llm_spans(otlp_sink.wait_for(lambda spans: len(llm_spans(spans)) >= 1))
    assert span.trace_id == format(root.get_span_context().trace_id, "032x")
    assert span.service == "tag-command"
    assert tags_of(span) == {"customer": "initech", "feature": "cron"}


def test_context_env_replaces_stale_variables(pipeline: Pipeline) -> None:
    stale = {"TRACEPARENT": "00-" + "1" * 32 + "-" + "2" * 16 + "-01", "BAGGAGE": "customer=old"}
    assert "TRACEPARENT" not in spanledger.context_env(stale)
    assert "BAGGAGE" not in spanledger.context_env(stale)
    with spanledger.tags(customer="new"):
        assert spanledger.context_env(stale)["BAGGAGE"] == "customer=new"
