"""Scale-out: two processor replicas fed trace-id-partitioned traffic give the same per-trace
totals as one replica given all of it, and, writing to one shared PostgreSQL ledger, the same
``spanledger report`` for every grouping.

The partition mirrors the Collector's ``load_balancing`` exporter with ``routing_key: traceID``
(collector-config/gateway/): every span of a trace goes to the same replica, chosen from the
trace id alone. The traffic is real SDK spans (OpenAI and Anthropic clients against the
stand-in), sent over OTLP/gRPC in interleaved batches, as a gateway would forward them.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan

from spanledger import semconv
from spanledger.processor.cli.report import run_report
from spanledger.processor.model import CountedCall
from spanledger.processor.sinks.ledger import LedgerConfig
from spanledger.standin import StandIn

from .processors import Replica, replica_config, running
from .traffic import otlp_request, run_agents

RUNS = 24
BATCH_SPANS = 7
TOTALS = (
    semconv.TRACE_COST,
    semconv.TRACE_LLM_CALLS,
    semconv.TRACE_INPUT_TOKENS,
    semconv.TRACE_OUTPUT_TOKENS,
    semconv.TRACE_UNPRICED_CALLS,
)
DIMENSIONS = (("customer",), ("feature",), ("customer", "feature"), ("team",))


@pytest.fixture(scope="module")
def spans(standin: StandIn) -> list[ReadableSpan]:
    standin.clear()
    return run_agents(standin, RUNS)


def replica_of(trace_id: int, replicas: int) -> int:
    """The replica a trace belongs to: a hash of the trace id alone, like trace-id routing."""
    digest = hashlib.sha256(trace_id.to_bytes(16, "big")).digest()
    return int.from_bytes(digest[:8], "big") % replicas


def batches(spans: Sequence[ReadableSpan]) -> list[ExportTraceServiceRequest]:
    """Requests of a few spans each, in end order, so traces straddle requests."""
    return [
        otlp_request(spans[start : start + BATCH_SPANS])
        for start in range(0, len(spans), BATCH_SPANS)
    ]


def trace_totals(replicas: Iterable[Replica]) -> dict[bytes, tuple[object, ...]]:
    """Each trace's root totals, as forwarded; a trace totalled twice would fail here."""
    found: dict[bytes, tuple[object, ...]] = {}
    for replica in replicas:
        forwarded = {item.span.span_id: item for item in replica.forwarded.forwarded()}
        for item in forwarded.values():
            attributes, trace_id = item.attributes, item.span.trace_id
            if semconv.TRACE_COST in attributes:
                assert trace_id not in found, f"trace {trace_id.hex()} has two roots"
                found[trace_id] = tuple(attributes[key] for key in TOTALS)
    return found


def tag_sums(calls: Iterable[CountedCall], keys: Sequence[str]) -> dict[tuple[str, ...], Decimal]:
    sums: dict[tuple[str, ...], Decimal] = defaultdict(Decimal)
    for call in calls:
        sums[tuple(call.tags[key] for key in keys)] += call.cost.total
    return dict(sums)


def all_calls(replicas: Iterable[Replica]) -> list[CountedCall]:
    return [call for replica in replicas for call in replica.recorded.calls]


def report(url: str, keys: Sequence[str]) -> list[dict[str, object]]:
    """``spanledger report --ledger URL --by KEY... --format json``, money as exact decimals."""
    out = io.StringIO()
    by = [arg for key in keys for arg in ("--by", key)]
    assert run_report(["--ledger", url, *by, "--format", "json"], out=out) == 0
    return json.loads(out.getvalue(), parse_float=Decimal)


def shared_ledger(url: str, password_file: Path) -> LedgerConfig:
    return LedgerConfig(url=url, password_file=str(password_file))


def test_trace_id_routing_matches_one_replica(
    spans: list[ReadableSpan], tmp_path: Path, postgres_server, monkeypatch
) -> None:
    password_file = tmp_path / "pg-password"
    password_file.write_text(postgres_server.password)
    alone = postgres_server.create_database("scale_out_single")
    shared = postgres_server.create_database("scale_out_shared")
    single = Replica(replica_config(shared_ledger(alone, password_file)))
    pair = [Replica(replica_config(shared_ledger(shared, password_file))) for _ in (1, 2)]
    shares: list[list[ReadableSpan]] = [[], []]
    for span in spans:
        shares[replica_of(span.context.trace_id, 2)].append(span)
    assert all(len({s.context.trace_id for s in share}) >= 4 for share in shares), (
        "both replicas must get a fair share of the traces"
    )

    with running([single, *pair]):
        single.send(batches(spans))
        for replica, share in zip(pair, shares, strict=True):
            replica.send(batches(share))

    expected_traces = {span.context.trace_id.to_bytes(16, "big") for span in spans}
    one = trace_totals([single])
    assert set(one) == expected_traces
    assert trace_totals(pair) == one
    for replica, share in zip(pair, shares, strict=True):
        mine = {span.context.trace_id.to_bytes(16, "big") for span in share}
        assert set(trace_totals([replica])) == mine, "a replica totalled a trace it never got"

    single_calls = all_calls([single])
    pair_calls = all_calls(pair)
    assert len(single_calls) == sum(
        1 for s in spans if (s.attributes or {}).get(semconv.GEN_AI_OPERATION_NAME) == "chat"
    )
    assert all(call.cost.status == "priced" for call in single_calls)
    assert sorted((c.trace_id, c.span_id) for c in pair_calls) == sorted(
        (c.trace_id, c.span_id) for c in single_calls
    )
    monkeypatch.setenv("PGPASSWORD", postgres_server.password)
    for keys in ((), *DIMENSIONS, ("provider", "model", "day")):
        assert report(shared, keys) == report(alone, keys), keys
        if keys in DIMENSIONS:
            assert tag_sums(pair_calls, keys) == tag_sums(single_calls, keys), keys
    (total,) = report(shared, ())
    assert total["calls"] == len(single_calls)
    assert total["cost_usd"] == sum((c.cost.total for c in single_calls), Decimal(0))
    assert sum(tag_sums(single_calls, ("customer",)).values()) > 0
    assert ("(none)",) in tag_sums(single_calls, ("customer",)), "untagged spend has a bucket"


def test_span_routing_without_trace_affinity_breaks_trace_totals(
    spans: list[ReadableSpan], tmp_path: Path
) -> None:
    """The control: spreading spans round-robin, not by trace, loses whole-trace totals."""
    single = Replica(replica_config(tmp_path / "single.db"))
    pair = [Replica(replica_config(tmp_path / f"replica-{n}.db")) for n in (1, 2)]
    with running([single, *pair]):
        single.send(batches(spans))
        for index, replica in enumerate(pair):
            replica.send(batches(spans[index::2]))

    one = trace_totals([single])
    split: dict[bytes, list[tuple[object, ...]]] = defaultdict(list)
    for replica in pair:
        for trace_id, totals in trace_totals([replica]).items():
            split[trace_id].append(totals)
    broken = [trace_id for trace_id, totals in one.items() if split[trace_id] != [totals]]
    assert len(broken) >= len(one) // 2, "most multi-call traces should be cut in two"
    # Each call is still counted exactly once, so per-tag sums survive; trace totals do not.
    for keys in DIMENSIONS:
        assert tag_sums(all_calls(pair), keys) == tag_sums(all_calls([single]), keys)
