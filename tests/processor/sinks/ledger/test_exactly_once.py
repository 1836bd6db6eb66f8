"""A call written twice counts once: by one writer again (a replay after a crash) or by two
writers at the same time (two replicas after a misrouted trace), with either write method, and
the daily rollup agrees with the calls it sums."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from spanledger.processor.sinks.ledger import Ledger
from spanledger.processor.sinks.ledger.postgres import PostgresLedger

from .test_backends_agree import snapshot
from .traffic import DAY_NS, START, calls


@pytest.mark.parametrize("method", ["copy", "values"])
def test_rewriting_the_same_calls_adds_nothing(postgres_url, postgres_server, method) -> None:
    traffic = calls(1200)
    with PostgresLedger(postgres_url, password=postgres_server.password, create=True) as ledger:
        ledger.write_method = method
        assert ledger.write(traffic) == 1200
        before = snapshot(ledger, ["day", "customer"])
        assert ledger.write(traffic[100:400] + traffic[:50]) == 0
        assert ledger.write(traffic[:10] + traffic[:10]) == 0  # twice in one batch too
        assert snapshot(ledger, ["day", "customer"]) == before
        (total,) = ledger.aggregate()
        assert total.calls == 1200


def test_two_writers_racing_over_overlapping_calls_count_each_once(
    postgres_url, postgres_server, tmp_path: Path
) -> None:
    traffic = calls(4000, days=5)
    shares = [traffic[:2500], traffic[1500:]]  # 1000 calls go to both writers
    PostgresLedger(postgres_url, password=postgres_server.password, create=True).close()
    writers = [
        PostgresLedger(postgres_url, password=postgres_server.password, create=True) for _ in shares
    ]
    new = [0, 0]
    errors: list[BaseException] = []

    def write(index: int) -> None:
        try:
            share = shares[index]
            # Small batches in opposite orders make the writers meet on the same rows.
            order = range(0, len(share), 100)
            for start in order if index == 0 else reversed(order):
                new[index] += writers[index].write(share[start : start + 100])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    assert sum(new) == 4000

    with Ledger(tmp_path / "one.db", create=True) as single:
        single.write(traffic)
        for by in ([], ["day"], ["customer", "model"]):
            assert snapshot(writers[0], by) == snapshot(single, by)
            # Partial days read the calls, whole days the rollup: both must agree.
            edge = {"since_unix_nano": START + DAY_NS // 2, "until_unix_nano": START + 4 * DAY_NS}
            assert snapshot(writers[1], by, **edge) == snapshot(single, by, **edge)
    for writer in writers:
        writer.close()
