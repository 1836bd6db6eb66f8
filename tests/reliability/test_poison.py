"""Poison never spreads: a value no sink can hold is corrected or its call set aside where it
enters, and every call after it is counted in the ledger, the metrics and the budgets."""

from __future__ import annotations

import json
import logging
import time
import urllib.request
from decimal import Decimal
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from reliability_support import build_request, expected_cost, post
from support.sinks import OtlpHttpBackend

from spanledger.processor.cli import main
from spanledger.processor.config import Config
from spanledger.processor.exporters import OtlpHttpExporterConfig
from spanledger.processor.model import Cost
from spanledger.processor.pipeline.call_check import MAX_TIME_UNIX_NANO
from spanledger.processor.pipeline.core import Pipeline
from spanledger.processor.pipeline.fanout import FanOut
from spanledger.processor.pricing import PriceBook, PricingConfig
from spanledger.processor.receivers import HttpReceiverConfig
from spanledger.processor.rollup import RollupConfig
from spanledger.processor.service import Service
from spanledger.processor.sinks.budgets import BudgetsConfig, BudgetSink, SpendLimit
from spanledger.processor.sinks.ledger import LedgerConfig
from spanledger.processor.sinks.metrics import MetricsConfig
from spanledger.semconv import DEFAULT_TAG_KEYS


def _starting_at(request: ExportTraceServiceRequest, time_unix_nano: int) -> bytes:
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                span.start_time_unix_nano = time_unix_nano
                span.end_time_unix_nano = time_unix_nano
    return request.SerializeToString()


def test_a_start_time_past_2_63_neither_stops_the_ledger_nor_loses_the_calls_after_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backend = OtlpHttpBackend()
    backend.start()
    ledger = tmp_path / "ledger.db"
    config = Config(
        grpc=None,
        http=HttpReceiverConfig("127.0.0.1:0"),
        exporters=[OtlpHttpExporterConfig(backend.endpoint)],
        rollup=RollupConfig(trace_idle=0.05, root_grace=0.05),
        ledger=LedgerConfig(path=str(ledger)),
        metrics=MetricsConfig(prometheus_endpoint="127.0.0.1:0"),
        budgets=BudgetsConfig(limits=[SpendLimit(name="all", lifetime_usd=1000)]),
    )
    service = Service(config)
    service.start()
    assert service.http is not None and service.pipeline and service.metrics and service.budgets
    url = f"http://127.0.0.1:{service.http.port}/v1/traces"
    try:
        poison = _starting_at(build_request(range(0, 1), calls=2), 2**64 - 1)
        assert post(url, poison)[0] == 200  # valid protobuf: accepted, as before
        seen = time.time_ns()
        for first in range(1, 41, 10):
            assert (
                post(url, build_request(range(first, first + 10), calls=3).SerializeToString())[0]
                == 200
            )
        assert backend.wait_for_distinct(3 + 40 * 4, timeout=15)  # every span forwarded
        deadline = time.monotonic() + 10
        while service.pipeline.stats["llm_calls"] < 2 + 120 and time.monotonic() < deadline:
            time.sleep(0.05)
        stats = service.pipeline.stats
        assert stats["call_times_replaced"] == 2 and stats["calls_set_aside"] == 0
        (lifetime,) = service.budgets.status()["budgets"]
        scrape = urllib.request.urlopen(
            f"http://127.0.0.1:{service.metrics.prometheus_port}/metrics", timeout=5
        ).read()
    finally:
        service.stop()
        backend.stop()

    assert main(["report", "--ledger", str(ledger), "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["calls"] == 122  # the two poisoned calls and the 120 after them
    total = expected_cost(range(1, 41), calls=3) + expected_cost(range(0, 1), calls=2)
    assert Decimal(str(row["cost_usd"])) == pytest.approx(total, abs=Decimal("1e-9"))
    assert lifetime["window"] == "lifetime"
    assert Decimal(lifetime["spend_usd"]) == pytest.approx(total, abs=Decimal("1e-9"))
    assert b"spanledger_llm_calls_total" in scrape
    calls_line = [
        line for line in scrape.decode().splitlines() if line.startswith("spanledger_llm_calls_")
    ]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in calls_line) == 122
    # The poisoned calls are kept at the time they were seen, which the ledger can store.
    assert main(["report", "--ledger", str(ledger), "--by", "day", "--format", "json"]) == 0
    days = {r["day"] for r in json.loads(capsys.readouterr().out)}
    assert time.strftime("%Y-%m-%d", time.gmtime(seen / 1e9)) in days
    assert seen <= MAX_TIME_UNIX_NANO


class PoisonedBook:
    """The real price book, except that one model's calls come out with a NaN cost."""

    def __init__(self) -> None:
        self.book = PriceBook(PricingConfig())

    def price(self, usage, start_time_unix_nano: int) -> Cost:  # type: ignore[no-untyped-def]
        cost = self.book.price(usage, start_time_unix_nano)
        if usage.input_tokens == 100 + (3 * 7 + 1 * 13) % 900:  # trace 3's first call
            cost.total = Decimal("NaN")
        return cost


class Recorder:
    def __init__(self) -> None:
        self.calls: list = []
        self.requests: list = []

    def record(self, calls) -> None:  # type: ignore[no-untyped-def]
        self.calls += calls

    def export(self, request) -> None:  # type: ignore[no-untyped-def]
        self.requests.append(request)

    def shutdown(self, timeout: float) -> None:
        pass


@pytest.mark.broken_pricing
def test_a_call_no_sink_can_count_is_set_aside_alone_with_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = Recorder()
    pipeline = Pipeline(
        RollupConfig(trace_idle=0, root_grace=0),
        DEFAULT_TAG_KEYS,
        PoisonedBook(),  # type: ignore[arg-type]
        FanOut([recorder], [recorder]),
    )
    pipeline.consume(build_request(range(0, 6), calls=2))
    with caplog.at_level(logging.ERROR):
        started = time.monotonic()
        pipeline.shutdown(5.0)
        assert time.monotonic() - started < 2.0  # shutdown never waits on it
    assert pipeline.stats["calls_set_aside"] == 1
    assert len(recorder.calls) == 6 * 2 - 1
    forwarded = sum(
        len(ss.spans) for r in recorder.requests for rs in r.resource_spans for ss in rs.scope_spans
    )
    assert forwarded == 6 * 3  # its span is forwarded all the same
    (line,) = [r.getMessage() for r in caplog.records if "set aside" in r.getMessage()]
    assert "0000000000030002" in line and "cost total is NaN" in line


def test_a_call_the_budget_store_fails_on_does_not_stop_the_others() -> None:
    class FlakyStore:
        shared = False

        def __init__(self) -> None:
            self.totals: dict[str, Decimal] = {}

        def add(self, key: str, amount: Decimal, expire_at: float | None) -> Decimal:
            if amount > Decimal("0.00005"):
                raise OSError("the store refused this one")
            self.totals[key] = self.totals.get(key, Decimal(0)) + amount
            return self.totals[key]

        def get(self, key: str) -> Decimal:
            return self.totals.get(key, Decimal(0))

    sink = BudgetSink(BudgetsConfig(limits=[SpendLimit(name="all", lifetime_usd=10)]), ["customer"])
    store = FlakyStore()
    sink.book.store = store  # type: ignore[assignment]
    recorder = Recorder()
    pipeline = Pipeline(
        RollupConfig(trace_idle=0, root_grace=0),
        ["customer"],
        PriceBook(PricingConfig()),
        FanOut([], [sink, recorder]),
    )
    try:
        pipeline.consume(build_request(range(0, 20), calls=2))
        pipeline.flush_all()
        costs = [call.cost.total for call in recorder.calls]
        refused = sum(1 for cost in costs if cost > Decimal("0.00005"))
        assert 0 < refused < len(costs)
        assert sink.failed_calls == refused
        assert sum(store.totals.values()) == sum(c for c in costs if c <= Decimal("0.00005"))
    finally:
        pipeline.shutdown(1.0)
        pipeline.output.shutdown(1.0)
