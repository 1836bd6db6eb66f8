"""Runs the fan-out agent end to end and checks the tags of every LLM span.

Starts the LLM stand-in, a span collector and the review service, runs ``agent.py`` under
``opentelemetry-instrument``, then prints each customer's LLM spans by where they ran and which
tags they carry. Exits 1 if any LLM span misses or mixes up its customer or feature.

    python examples/agent_fanout/run.py
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from contextlib import AbstractContextManager
from pathlib import Path

from collector import Collector, Span

from spanledger.semconv import GEN_AI_OPERATION_NAME
from spanledger.standin import StandIn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _support import INSTRUMENT, instrumented_environment, instrumented_service

HERE = Path(__file__).parent
CUSTOMERS = ("acme", "globex")
EXPECTED_CALLS = {"research": 3, "drafting": 4, "indexing": 3, "review": 1}
"""LLM calls per customer run, by feature (see agent.py)."""


def environment(llm: StandIn, collector: Collector, service: str) -> dict[str, str]:
    return instrumented_environment(
        llm.openai_base_url,
        llm.anthropic_base_url,
        service,
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=collector.endpoint,
        OTEL_EXPERIMENTAL_RESOURCE_DETECTORS="otel,process",
    )


def review_service(env: dict[str, str]) -> AbstractContextManager[str]:
    return instrumented_service(HERE / "service.py", env, "review service")


def wait_for_llm_spans(collector: Collector, count: int, timeout: float = 30.0) -> list[Span]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        spans = [s for s in collector.spans if GEN_AI_OPERATION_NAME in s.attributes]
        if len(spans) >= count:
            return spans
        time.sleep(0.1)
    return [s for s in collector.spans if GEN_AI_OPERATION_NAME in s.attributes]


def check(spans: list[Span], roots: dict[str, str], llm: StandIn) -> list[str]:
    """Problems: an LLM span without its trace's customer, wrong counts, baggage sent to the LLM."""
    problems = [
        f"the LLM got baggage: {request.headers['baggage']}"
        for request in llm.requests
        if "baggage" in request.headers
    ]
    for customer in CUSTOMERS:
        mine = [s for s in spans if s.trace_id == roots.get(customer)]
        for span in mine:
            if (
                span.attributes.get("customer") != customer
                or span.attributes.get("env") != "example"
            ):
                problems.append(f"{span.service} {span.name}: tags {span.attributes}")
        by_feature = Counter(str(s.attributes.get("feature")) for s in mine)
        if by_feature != Counter(EXPECTED_CALLS):
            problems.append(f"{customer}: LLM calls by feature {dict(by_feature)}")
    return problems


def main() -> int:
    collector = Collector()
    try:
        with StandIn() as llm:
            with review_service(environment(llm, collector, "review-service")) as review_url:
                agent_env = {**environment(llm, collector, "agent"), "REVIEW_URL": review_url}
                subprocess.run(
                    [INSTRUMENT, sys.executable, str(HERE / "agent.py")], env=agent_env, check=True
                )
            spans = wait_for_llm_spans(collector, len(CUSTOMERS) * sum(EXPECTED_CALLS.values()))
            roots = {
                s.name.removeprefix("agent run "): s.trace_id
                for s in collector.spans
                if s.name.startswith("agent run ")
            }
            problems = check(spans, roots, llm)
    finally:
        collector.close()

    header = f"{'trace':<9} {'process':<26} {'span':<34} {'customer':<9} {'feature':<10} team"
    print(f"\n{header}")
    for span in sorted(spans, key=lambda s: (s.trace_id, s.service, s.pid, s.name)):
        tags = span.attributes
        where = f"{span.service} pid {span.pid}"
        print(
            f"{span.trace_id[:8]:<9} {where:<26} {span.name:<34} {tags.get('customer', '-'):<9} "
            f"{tags.get('feature', '-'):<10} {tags.get('team', '-')}"
        )
    for problem in problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    print(f"\n{len(spans)} LLM spans in {len(roots)} traces, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
