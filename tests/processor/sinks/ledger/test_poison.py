"""A call no database column can hold never blocks the calls written with it: values out of
range are refused before the database, values the database refuses set the row aside with one
log line and a counter, on SQLite and on PostgreSQL alike."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from spanledger.processor.sinks.ledger import Ledger, LedgerConfig, LedgerSink, open_ledger
from spanledger.processor.sinks.ledger.postgres import PostgresLedger

from .traffic import START, make_call

TAGS = ("customer", "feature", "team", "env")


def _stores(tmp_path: Path, url: str, password: str) -> list:
    return [
        Ledger(tmp_path / "ledger.db", create=True),
        PostgresLedger(url, password=password, create=True),
    ]


def test_out_of_range_values_are_skipped_before_the_database(
    tmp_path, postgres_url, postgres_server, caplog
) -> None:
    huge_time = make_call(0, 2**63, {"customer": "acme"})
    negative = make_call(1, START, {"customer": "acme"}, input_tokens=-5)
    good = [make_call(i, START + i, {"customer": "acme"}) for i in range(2, 12)]
    for store in _stores(tmp_path, postgres_url, postgres_server.password):
        with store, caplog.at_level(logging.ERROR):
            caplog.clear()
            assert store.write([huge_time, *good[:5], negative, *good[5:]]) == 10
            assert store.aggregate()[0].calls == 10
            skipped = [r.getMessage() for r in caplog.records if "skipping" in r.getMessage()]
            assert len(skipped) == 2
            assert f"span {huge_time.span_id}" in skipped[0]


def test_a_value_the_database_refuses_sets_only_that_row_aside(
    tmp_path, postgres_url, postgres_server, caplog
) -> None:
    # A lone surrogate cannot be encoded as UTF-8: neither database can take it.
    bad = make_call(0, START, {"customer": "acme"}, model="gpt-\ud800")
    nul = make_call(1, START, {"customer": "a\x00b"})  # PostgreSQL text holds no NUL: replaced
    good = [make_call(i, START + i, {"customer": "acme"}) for i in range(2, 30)]
    for store in _stores(tmp_path, postgres_url, postgres_server.password):
        with store, caplog.at_level(logging.ERROR):
            caplog.clear()
            assert store.write([*good[:10], bad, nul, *good[10:]]) == 29
            assert store.rejected_rows == 1
            (line,) = [r.getMessage() for r in caplog.records if "set aside" in r.getMessage()]
            assert f"span {bad.span_id}" in line
            customers = {g.key[0]: g.calls for g in store.aggregate(["customer"])}
            assert customers == {"acme": 28, "a\ufffdb": 1}


def test_the_sink_keeps_writing_after_a_refused_row(tmp_path, postgres_url, postgres_server):
    password_file = tmp_path / "password"
    password_file.write_text(postgres_server.password + "\n")
    bad = make_call(0, START, {"customer": "acme"}, model="gpt-\ud800")
    for config in (
        LedgerConfig(path=str(tmp_path / "sink.db")),
        LedgerConfig(url=postgres_url, password_file=str(password_file)),
    ):
        sink = LedgerSink(config, TAGS)
        sink.record([bad, make_call(1, START, {})])
        for batch in range(5):
            sink.record([make_call(10 + batch, START, {"customer": "acme"})])
        sink.shutdown(10)
        assert sink.rejected_rows == 1
        assert sink.pending_rows == 0
        with open_ledger(config) as ledger:
            assert ledger.aggregate()[0].calls == 6


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_cost_that_is_not_a_number_is_skipped(tmp_path, value, caplog) -> None:
    from decimal import Decimal

    call = make_call(0, START, {})
    call.cost.total = Decimal(value)
    with Ledger(tmp_path / "l.db", create=True) as ledger, caplog.at_level(logging.ERROR):
        assert ledger.write([call, make_call(1, START, {})]) == 1
    assert any("not a finite number" in r.getMessage() for r in caplog.records)
