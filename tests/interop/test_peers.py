"""Real peer GenAI instrumentations from PyPI, alone and beside ours, through a real processor.

Each run is an app (tests/interop/peer_app.py) in the peer's venv, calling the LLM stand-in
with usage that includes cached tokens, streamed and not, every call in a trace of its own.
For each call the processor must count exactly one span; where a span carries the call's true
usage, the cost is genai-prices' ``calc_price`` of it; and for each run the trace totals, the
ledger's report, the Prometheus counters and the sum of ``gen_ai.usage.cost`` over the spans
agree. Our own span, when ours is installed, appears exactly once per call.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from genai_prices import Usage as PricesUsage
from genai_prices import calc_price

from spanledger import semconv
from spanledger.processor.usage import extract_usage, has_unusable_counts

from .conftest import Processor, Run, run_app, wait_for_traces

pytestmark = pytest.mark.slow

BOTH = ["openai", "openai_stream", "anthropic", "anthropic_stream"]
OPENAI = ["openai", "openai_stream"]
LITELLM = [
    "litellm_openai",
    "litellm_openai_stream",
    "litellm_anthropic",
    "litellm_anthropic_stream",
]

PEERS: dict[str, dict[str, Any]] = {
    "otel-genai": {"venv": "otel-genai", "calls": BOTH},
    "otel-contrib": {"venv": "otel-contrib", "calls": OPENAI},
    "traceloop": {"venv": "traceloop", "calls": BOTH},
    "openinference": {"venv": "openinference", "calls": [*BOTH, "openai_async_stream"]},
    "openinference-langchain": {
        "venv": "openinference",
        "calls": ["langchain", "langchain_stream"],
    },
    "litellm": {"venv": "litellm", "calls": LITELLM},
    "litellm-request-span": {
        "venv": "litellm",
        "calls": LITELLM,
        "env": {"USE_OTEL_LITELLM_REQUEST_SPAN": "true"},
        "peer": "litellm",
    },
    "openlit": {"venv": "openlit", "calls": BOTH},
}
"""Each peer: its venv (scripts/interop/<venv>.txt), the calls its app makes, extra settings."""

OUR_SCOPES = {
    "openai": "spanledger.instrumentation.openai",
    "anthropic": "spanledger.instrumentation.anthropic",
}
OURS_INSTRUMENTS = {"openlit": False}
"""Peers whose venv holds SDK versions our instrumentation does not support (it stays out)."""
OURS_SEE = {
    "openai",
    "openai_stream",
    "openai_async_stream",
    "anthropic",
    "anthropic_stream",
    "langchain",
    "langchain_stream",
    "litellm_openai",
    "litellm_openai_stream",
}
"""Calls made through the openai / anthropic SDKs, which our instrumentation sees (LiteLLM
calls Anthropic over its own HTTP client)."""
STREAMS = {"litellm_openai_stream", "litellm_anthropic_stream"}
LOST: dict[str, dict[str, set[str]]] = {
    # LiteLLM writes onto the caller's span, ended by then for a call not streamed (when its
    # logging thread comes late), and logs a streamed call outside the caller's context, into
    # a trace of its own; it calls Anthropic over its own HTTP client, which ours never sees.
    "litellm": {
        "alone": {"litellm_openai", "litellm_anthropic", *STREAMS},
        "peer_first": {"litellm_anthropic", "litellm_anthropic_stream"},
        "ours_first": {"litellm_anthropic", "litellm_anthropic_stream"},
    },
    "litellm-request-span": {
        "alone": STREAMS,
        "peer_first": {"litellm_anthropic_stream"},
        "ours_first": {"litellm_anthropic_stream"},
    },
}
"""Calls whose trace may hold no counted span, per peer and order, because the peer records
them elsewhere or not at all; see docs/compatibility.md. Every other call must be counted
exactly once in its trace."""


def run_peer(processor: Processor, standin, name: str, order: str) -> Run:
    spec = PEERS[name]
    run = run_app(
        processor,
        standin,
        venv=spec["venv"],
        peer=spec.get("peer", name),
        order=order,
        calls=spec["calls"],
        env=spec.get("env"),
    )
    run.peer = name
    wait_for_traces(processor, run)
    return run


def carries(attributes: dict[str, Any], name: str, true: dict[str, int]) -> bool:
    """Whether a span reports the call's whole true usage, cache breakdown included."""
    usage = extract_usage(attributes, name)
    if usage is None or (usage.problems and has_unusable_counts(usage)):
        return False
    return (
        usage.cache_reported
        and usage.input_tokens == true["input"]
        and usage.output_tokens == true["output"]
        and usage.cache_read_tokens == true["cache_read"]
        and usage.cache_write_tokens + usage.cache_write_1h_tokens == true["cache_write"]
    )


def true_price(call: dict[str, Any], start_ns: int) -> Decimal:
    true = call["usage"]
    return calc_price(
        PricesUsage(
            input_tokens=true["input"],
            cache_read_tokens=true["cache_read"],
            cache_write_tokens=true["cache_write"],
            output_tokens=true["output"],
        ),
        call["model"],
        provider_id=call["provider"],
        genai_request_timestamp=datetime.fromtimestamp(start_ns / 1e9, UTC),
    ).total_price


def check_run(processor: Processor, run: Run, *, ours: bool) -> dict[str, Any]:
    """Check every trace of ``run`` and the run's totals; what each call's counted span was."""
    seen: dict[str, Any] = {}
    errors: list[str] = []
    for call in run.calls:
        spans = processor.backend.trace(call["trace_id"])
        where = f"{call['call']} (trace {call['trace_id']}): {describe(spans)}"
        counted = [
            item
            for item in spans
            if item.attributes.get(semconv.COST_STATUS)
            in (semconv.STATUS_PRICED, semconv.STATUS_UNPRICED)
        ]
        (root,) = [item for item in spans if not item.span.parent_span_id]
        attributes = root.attributes
        summed = sum(item.attributes.get(semconv.GEN_AI_USAGE_COST, 0.0) for item in spans)
        if not math.isclose(summed, attributes.get(semconv.TRACE_COST, 0.0), abs_tol=1e-12):
            errors.append(f"{where}: gen_ai.usage.cost sums to {summed}")
        if ours and call["call"] in OURS_SEE:
            ours_spans = [s for s in spans if s.scope == OUR_SCOPES[call["provider"]]]
            if len(ours_spans) != 1:
                errors.append(f"{where}: {len(ours_spans)} spans of ours")
        if len(counted) != 1:
            seen[call["call"]] = None
            if len(counted) > 1 or call["call"] not in LOST.get(run.peer, {}).get(run.order, ()):
                errors.append(f"{where}: {len(counted)} counted spans")
            continue
        if attributes.get(semconv.TRACE_LLM_CALLS) != 1:
            errors.append(f"{where}: trace.llm_calls {attributes.get(semconv.TRACE_LLM_CALLS)}")
        winner = counted[0]
        seen[call["call"]] = (winner.scope, winner.attributes.get(semconv.COST_STATUS))
        if any(carries(item.attributes, item.span.name, call["usage"]) for item in spans):
            expected = true_price(call, winner.span.start_time_unix_nano)
            cost = winner.attributes.get(semconv.GEN_AI_USAGE_COST)
            if cost is None or Decimal(repr(cost)) != expected:
                errors.append(f"{where}: cost {cost} != calc_price {expected}\n{dump(spans)}")
    assert not errors, "\n".join(errors)
    # The run's totals, over every trace it made: a peer may record a call in a trace of its
    # own (LiteLLM's streamed calls).
    traces = processor.backend.traces_of(run.customer)
    total = 0.0
    expected_calls = 0
    for spans in traces.values():
        summed = sum(item.attributes.get(semconv.GEN_AI_USAGE_COST, 0.0) for item in spans)
        carriers = [item for item in spans if semconv.TRACE_LLM_CALLS in item.attributes]
        trace_cost = sum(item.attributes[semconv.TRACE_COST] for item in carriers)
        assert math.isclose(summed, trace_cost, abs_tol=1e-12), describe(spans)
        total += trace_cost
        expected_calls += sum(item.attributes[semconv.TRACE_LLM_CALLS] for item in carriers)

    # The sinks get a trace's calls as it is forwarded: wait for them, no longer.
    metrics: dict[str, float] = {}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        metrics = processor.prometheus(run.customer)
        if metrics.get("spanledger_llm_calls_total", 0) == expected_calls:
            break
        time.sleep(0.2)
    assert metrics.get("spanledger_llm_calls_total", 0) == expected_calls, metrics
    assert math.isclose(metrics.get("spanledger_cost_usd_total", 0.0), total, abs_tol=1e-12)
    row = processor.report(run.customer) or {"calls": 0, "cost_usd": 0}
    assert row["calls"] == expected_calls, row
    assert math.isclose(float(row["cost_usd"]), total, rel_tol=1e-9, abs_tol=1e-12), (row, total)
    return seen


def dump(spans: list) -> str:
    return "\n".join(f"{item.span.name} [{item.scope}] {item.attributes}" for item in spans)


def describe(spans: list) -> str:
    return "; ".join(
        f"{item.span.name!r} [{item.scope}] {item.attributes.get(semconv.COST_STATUS)}"
        f" {item.attributes.get(semconv.COST_NOT_COUNTED_REASON, '')}"
        for item in spans
    )


@pytest.mark.parametrize("order", ["alone", "peer_first", "ours_first"])
@pytest.mark.parametrize("name", list(PEERS))
def test_each_call_is_counted_once_and_priced_from_its_true_usage(processor, standin, name, order):
    run = run_peer(processor, standin, name, order)
    ours = order != "alone" and OURS_INSTRUMENTS.get(name, True)
    seen = check_run(processor, run, ours=ours)
    if ours:
        # Beside ours every call has its usage: none is left unpriced.
        statuses = [found[1] for found in seen.values() if found is not None]
        assert all(status == semconv.STATUS_PRICED for status in statuses), seen


@pytest.mark.parametrize(
    "first",
    [
        ["openinference-instrumentation-openai", "spanledger"],
        ["spanledger", "openinference-instrumentation-openai"],
    ],
    ids=["openinference-first", "ours-first"],
)
def test_under_opentelemetry_instrument_in_either_entry_point_order(processor, standin, first):
    """OpenInference patches openai.OpenAI.request: loaded first, it used to hide ours."""
    run = run_app(
        processor,
        standin,
        venv="openinference",
        peer="openinference",
        order="entry_points",
        calls=["openai", "openai_stream", "openai_async_stream", "anthropic"],
        entry_points=first,
    )
    wait_for_traces(processor, run)
    check_run(processor, run, ours=True)
