"""Ledger benchmark: rows/s into PostgreSQL and SQLite in one run, and reports over many rows.

Directional only: compare runs on the same machine. Both stores run on this machine, PostgreSQL
from Debian's packages (scripts/postgres/install.sh) in a throw-away cluster with its default
durability (fsync and synchronous commit on, as in production; a test server turns them off).

Writes: the same counted calls (200 customers, 3 features each, 4 models, a marked-up cost) are
turned into rows once, then written in batches as the processor writes them, round after round
with the stores and methods alternating, each round into an empty ledger: SQLite (one
``executemany`` transaction per batch), PostgreSQL with ``COPY`` into a temporary table then one
``INSERT … SELECT … ON CONFLICT DO NOTHING`` adding the new rows to the daily rollup, and
PostgreSQL with multi-row ``INSERT … VALUES`` doing the same. A last figure sends the calls
through ``LedgerSink`` with its queue and writer thread (what ``spanledger serve`` does) and
times until the last one is in the database. Every figure is rows per wall-clock second,
median with the range over rounds, set against the processor's LLM-call rate at 100% GenAI
spans (``PROCESSOR_CALL_RATE``, from bench/RESULTS.md).

Reports: ``--report-rows`` calls (10 million by default) are generated inside PostgreSQL with
``generate_series`` over the 90 days before now, the daily rollup is built from them, and
``spanledger report`` is timed as a user runs it (a new process each time), next to the same
grouping read from the calls alone, without the rollup.

    python bench/ledger_write.py                     # writes a section of bench/RESULTS.md
    python bench/ledger_write.py --rows 20000 --rounds 1 --report-rows 50000 --no-write
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "scripts" / "postgres"))

import pgserver  # noqa: E402

from spanledger.processor.model import Cost, CountedCall, Usage  # noqa: E402
from spanledger.processor.sinks.ledger import (  # noqa: E402
    Ledger,
    LedgerConfig,
    LedgerQueueConfig,
    LedgerSink,
)
from spanledger.processor.sinks.ledger.postgres import PostgresLedger  # noqa: E402
from spanledger.processor.sinks.ledger.rows import Row, call_rows  # noqa: E402

RESULTS = HERE / "RESULTS.md"
BEGIN, END = "<!-- ledger:begin -->", "<!-- ledger:end -->"
PROCESSOR_CALL_RATE = 11_269
"""LLM calls/s the processor counts with 100% GenAI spans (bench/RESULTS.md, issue 8 table)."""
DAY_NS = 86_400 * 10**9
MODELS = (
    ("openai", "gpt-4o-mini", Decimal("0.00000015"), Decimal("0.0000006")),
    ("openai", "gpt-4o", Decimal("0.0000025"), Decimal("0.00001")),
    ("anthropic", "claude-sonnet-4-5", Decimal("0.000003"), Decimal("0.000015")),
    ("anthropic", "claude-haiku-4-5", Decimal("0.000001"), Decimal("0.000005")),
)
SPANLEDGER = (sys.executable, "-m", "spanledger.processor.cli")


def counted_calls(count: int, seed: int = 11) -> list[CountedCall]:
    """Calls as the processor counts them, over the last 2 days."""
    rng = random.Random(seed)
    now = time.time_ns()
    calls = []
    for index in range(count):
        customer = rng.randrange(200)
        provider, model, per_in, per_out = MODELS[index % len(MODELS)]
        input_tokens, output_tokens = rng.randrange(50, 5000), rng.randrange(5, 800)
        total = per_in * input_tokens + per_out * output_tokens
        calls.append(
            CountedCall(
                trace_id=f"{rng.getrandbits(128):032x}",
                span_id=f"{rng.getrandbits(64):016x}",
                start_time_unix_nano=now - rng.randrange(2 * DAY_NS),
                tags={
                    "customer": f"customer-{customer}",
                    "feature": f"feature-{(customer * 3 + index % 3) % 8}",
                    "team": f"team-{customer % 4}",
                    "env": "prod" if customer % 5 else "staging",
                },
                usage=Usage(
                    operation="chat",
                    provider=provider,
                    request_model=model,
                    response_model=model,
                    input_tokens=input_tokens,
                    output_tokens=output_tokens,
                    cache_read_tokens=input_tokens // 4,
                ),
                cost=Cost(
                    "priced",
                    "price_table",
                    total,
                    billable=total * Decimal("1.2"),
                    pricing_model=f"{provider}/{model}",
                ),
            )
        )
    return calls


def _batches(rows: list[Row], size: int) -> list[list[Row]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def _timed(write: Callable[[list[Row]], object], batches: list[list[Row]]) -> float:
    started = time.perf_counter()
    for batch in batches:
        write(batch)
    return sum(len(b) for b in batches) / (time.perf_counter() - started)


def measure_writes(
    server: pgserver.PostgresServer, rows: list[Row], calls: list[CountedCall], args
) -> dict[str, list[float]]:
    """rows/s per way of writing, one figure per round."""
    figures: dict[str, list[float]] = {}
    batches = _batches(rows, args.batch)
    with tempfile.TemporaryDirectory(prefix="spanledger-bench-") as scratch:
        for round_number in range(args.rounds):
            path = Path(scratch) / f"ledger-{round_number}.db"
            with Ledger(path, create=True) as sqlite:
                figures.setdefault("sqlite", []).append(_timed(sqlite.write_rows, batches))
            for method in ("copy", "values"):
                url = server.create_database(f"w_{method}_{round_number}")
                with PostgresLedger(url, password=server.password, create=True) as postgres:
                    postgres.write_method = method  # type: ignore[assignment]
                    figures.setdefault(f"postgres {method}", []).append(
                        _timed(postgres.write_rows, batches)
                    )
            url = server.create_database(f"w_sink_{round_number}")
            figures.setdefault("postgres sink", []).append(
                _through_sink(url, server, calls, args.batch, Path(scratch))
            )
    return figures


def _through_sink(url: str, server, calls: list[CountedCall], batch: int, scratch: Path) -> float:
    """rows/s from ``record`` to the last row in the database, through queue and writer."""
    secret = scratch / "password"
    secret.write_text(server.password)
    config = LedgerConfig(
        url=url, password_file=str(secret), queue=LedgerQueueConfig(memory_rows=len(calls))
    )
    sink = LedgerSink(config, ("customer", "feature", "team", "env"))
    started = time.perf_counter()
    for start in range(0, len(calls), batch):
        sink.record(calls[start : start + batch])
    while sink.pending_rows:
        time.sleep(0.001)
    elapsed = time.perf_counter() - started
    sink.shutdown(10)
    return len(calls) / elapsed


_LOAD = """
INSERT INTO spanledger_calls
SELECT md5(i::text), lpad(to_hex(i), 16, '0'),
    %(now)s - (i::bigint * 104729 * 1000003 %% %(span)s),
    jsonb_build_object(
        'customer', 'customer-' || (i %% 200),
        'feature', 'feature-' || (((i %% 200) * 3 + (i / 200) %% 3) %% 8),
        'team', 'team-' || (i %% 200 %% 4),
        'env', CASE WHEN i %% 200 %% 5 = 0 THEN 'staging' ELSE 'prod' END),
    m.provider, m.model, 'chat',
    50 + i %% 4950, 5 + i %% 795, (50 + i %% 4950) / 4, 0, 0,
    'priced', 'price_table',
    (50 + i %% 4950) * m.per_in + (5 + i %% 795) * m.per_out, NULL, m.provider || '/' || m.model
FROM generate_series(%(low)s::bigint, %(high)s::bigint) AS i
JOIN (VALUES {models}) AS m (n, provider, model, per_in, per_out) ON m.n = i %% 4
"""


def load_rows(url: str, password: str, count: int) -> float:
    """Generate ``count`` calls over the last 90 days inside PostgreSQL, build the rollup."""
    import psycopg

    models = ", ".join(
        f"({n}, '{p}', '{m}', {i}::numeric, {o}::numeric)" for n, (p, m, i, o) in enumerate(MODELS)
    )
    started = time.perf_counter()
    PostgresLedger(url, password=password, create=True).close()
    with psycopg.connect(url, password=password, autocommit=True) as db:
        step = 1_000_000
        for low in range(1, count + 1, step):
            high = min(low + step - 1, count)
            db.execute(
                _LOAD.format(models=models),
                {"now": time.time_ns(), "span": 90 * DAY_NS, "low": low, "high": high},
            )
        db.execute("ANALYZE spanledger_calls")
    with PostgresLedger(url, password=password) as ledger:
        ledger.rebuild_rollup()
    with psycopg.connect(url, password=password, autocommit=True) as db:
        db.execute("ANALYZE spanledger_calls_daily")
    return time.perf_counter() - started


REPORTS = (
    ["--by", "customer"],
    ["--by", "feature", "--by", "model", "--since", "30d"],
    ["--by", "day", "--since", "7d", "--where", "env=prod"],
    ["--by", "team", "--by", "month", "--billable"],
)


def time_reports(url: str, password: str) -> list[tuple[str, float, float, int]]:
    """(arguments, seconds in a new process, seconds in this one, rows) of each report."""
    from spanledger.processor.cli.report import run_report

    timed = []
    env = {**os.environ, "PGPASSWORD": password}
    os.environ["PGPASSWORD"] = password
    try:
        for args in REPORTS:
            command = ["report", "--ledger", url, *args, "--format", "csv"]
            started = time.perf_counter()
            result = subprocess.run(
                [*SPANLEDGER, *command], capture_output=True, text=True, check=True, env=env
            )
            process_seconds = time.perf_counter() - started
            started = time.perf_counter()
            assert run_report(command[1:], out=io.StringIO()) == 0
            in_process = time.perf_counter() - started
            timed.append(
                (" ".join(args), process_seconds, in_process, result.stdout.count("\n") - 1)
            )
    finally:
        del os.environ["PGPASSWORD"]
    return timed


def time_without_rollup(url: str, password: str) -> float:
    """Seconds for the first report's grouping read from the calls alone."""
    import psycopg

    with psycopg.connect(url, password=password) as db:
        started = time.perf_counter()
        db.execute(
            "SELECT COALESCE(tags ->> 'customer', '(none)'), sum(cost_usd), count(*), "
            "sum(input_tokens), sum(output_tokens) FROM spanledger_calls GROUP BY 1"
        ).fetchall()
        return time.perf_counter() - started


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"


def report_text(figures, reports, args, *, load_seconds, raw_seconds, rollup_rows, sizes) -> str:
    sqlite = statistics.median(figures["sqlite"])
    lines = [
        f"writes: {args.rows:,} rows in batches of {args.batch:,}, {args.rounds} rounds; "
        f"rows/s wall, median (range)",
    ]
    for name, values in figures.items():
        ratio = statistics.median(values) / sqlite
        keeps_up = statistics.median(values) / PROCESSOR_CALL_RATE
        lines.append(
            f"  {name:<16} {_median(values):>28} rows/s   {ratio:5.2f} x SQLite   "
            f"{keeps_up:5.1f} x the processor's {PROCESSOR_CALL_RATE:,} calls/s"
        )
    lines += [
        "",
        f"reports over {args.report_rows:,} calls in PostgreSQL (loaded and rolled up in "
        f"{load_seconds:.0f} s; {rollup_rows:,} rollup rows); `spanledger report` wall time, "
        "a new process (interpreter start included), then the same in this process:",
    ]
    for command, seconds, in_process, printed in reports:
        lines.append(
            f"  {seconds:6.2f} s  {in_process:6.3f} s  {printed:>5} rows  "
            f"spanledger report {command}"
        )
    lines.append(
        f"           {raw_seconds:6.3f} s         the first grouping read from the calls alone "
        "(no rollup)"
    )
    calls_bytes, rollup_bytes = sizes
    lines.append(
        f"space: calls {calls_bytes / 2**20:,.0f} MiB with their indexes "
        f"({calls_bytes / max(args.report_rows, 1):,.0f} B per call), "
        f"rollup {rollup_bytes / 2**20:,.1f} MiB"
    )
    load = os.getloadavg()
    lines.append(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return "\n".join(lines)


def write_section(text: str, command: str) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    section = (
        f"{BEGIN}\n## Ledger writes and reports (`bench/ledger_write.py`)\n\n"
        f"PostgreSQL {pgserver_version()} with its default durability and SQLite "
        f"{_sqlite_version()} on this machine; Python {platform.python_version()}. See the "
        f"module docstring for what each figure times.\n\n"
        f"```\n$ {command}    # {stamp}\n{text}\n```\n{END}"
    )
    current = RESULTS.read_text(encoding="utf-8")
    if BEGIN in current and END in current:
        head, rest = current.split(BEGIN, 1)
        current = head + section + rest.split(END, 1)[1]
    else:
        current = current.rstrip("\n") + "\n\n" + section + "\n"
    RESULTS.write_text(current, encoding="utf-8")


def pgserver_version() -> str:
    out = subprocess.run(
        [str(pgserver.binaries() / "postgres"), "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip().rsplit(" ", 1)[-1].strip(")") or "?"


def _sqlite_version() -> str:
    import sqlite3

    return sqlite3.sqlite_version


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000, help="rows written per store")
    parser.add_argument("--batch", type=int, default=5_000, help="rows per write")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--report-rows", type=int, default=10_000_000)
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args(argv)
    calls = counted_calls(args.rows)
    rows = call_rows(calls)
    server = pgserver.temporary_server("spanledger-pg-bench-", fast=False)
    try:
        figures = measure_writes(server, rows, calls, args)
        url = server.create_database("reports")
        load_seconds = load_rows(url, server.password, args.report_rows)
        reports = time_reports(url, server.password)
        raw_seconds = time_without_rollup(url, server.password)
        import psycopg

        with psycopg.connect(url, password=server.password) as db:
            rollup_rows = db.execute("SELECT count(*) FROM spanledger_calls_daily").fetchone()[0]
            sizes = db.execute(
                "SELECT pg_total_relation_size('spanledger_calls'), "
                "pg_total_relation_size('spanledger_calls_daily')"
            ).fetchone()
    finally:
        server.remove()
    text = report_text(
        figures,
        reports,
        args,
        load_seconds=load_seconds,
        raw_seconds=raw_seconds,
        rollup_rows=rollup_rows,
        sizes=sizes,
    )
    print(text)
    if not args.no_write:
        command = "python bench/ledger_write.py " + " ".join(argv or sys.argv[1:])
        write_section(text, command.strip())


if __name__ == "__main__":
    main()
