"""Schema versions: the writer (or ``spanledger migrate``) creates and upgrades the ledger, and a
processor older than its ledger refuses it with one line, on PostgreSQL and SQLite."""

from __future__ import annotations

import io
import sqlite3
import subprocess
import threading

import psycopg
import pytest

from spanledger.processor.cli.ledger import run_migrate
from spanledger.processor.sinks.ledger import Ledger, LedgerError, SchemaError
from spanledger.processor.sinks.ledger.migrations import Migration
from spanledger.processor.sinks.ledger.postgres import MIGRATIONS, PostgresLedger

from .configs import SPANLEDGER, password_file, write_config
from .traffic import calls

NEXT = Migration(
    len(MIGRATIONS) + 1,
    "a column a later version adds",
    ("ALTER TABLE spanledger_calls ADD note text",),
)
CURRENT = len(MIGRATIONS)
"""The PostgreSQL schema version of this code (the SQLite file's is 1)."""


def test_migrate_creates_then_finds_the_schema_up_to_date(tmp_path, postgres_url, postgres_server):
    config = write_config(
        tmp_path, {"url": postgres_url, "password_file": password_file(tmp_path, postgres_server)}
    )
    for expected in (f"schema version 0 -> {CURRENT}", "schema is up to date"):
        out = io.StringIO()
        assert run_migrate(["--config", str(config)], out=out) == 0
        assert expected in out.getvalue()
        assert postgres_url in out.getvalue()
    out = io.StringIO()
    assert run_migrate(["--ledger", str(tmp_path / "new.db")], out=out) == 0
    assert "schema version 0 -> 1" in out.getvalue()


def test_a_later_step_upgrades_and_older_code_then_refuses(postgres_url, postgres_server) -> None:
    password = postgres_server.password
    with PostgresLedger(postgres_url, password=password, create=True) as ledger:
        ledger.write(calls(50))
    with PostgresLedger(
        postgres_url, password=password, create=True, migrations=(*MIGRATIONS, NEXT)
    ) as newer:
        assert newer.migrated_from == CURRENT
        assert newer.aggregate()[0].calls == 50  # the rows survive the step
        assert newer.write(calls(10, first=50)) == 10
    for create in (False, True):
        with pytest.raises(SchemaError) as refused:
            PostgresLedger(postgres_url, password=password, create=create)
        message = str(refused.value)
        assert "\n" not in message
        newer_than = f"schema version {CURRENT + 1}, newer than this spanledger knows ({CURRENT})"
        assert f"{newer_than}: upgrade" in message


def test_replicas_starting_together_migrate_once(postgres_url, postgres_server) -> None:
    opened: list[PostgresLedger] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            opened.append(
                PostgresLedger(postgres_url, password=postgres_server.password, create=True)
            )
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert sorted(ledger.migrated_from for ledger in opened) == [0, CURRENT, CURRENT, CURRENT]
    for ledger in opened:
        ledger.close()


@pytest.mark.slow
def test_serve_and_report_refuse_a_newer_schema_with_one_line(
    tmp_path, postgres_url, postgres_server
) -> None:
    PostgresLedger(
        postgres_url, password=postgres_server.password, create=True, migrations=(*MIGRATIONS, NEXT)
    ).close()
    sqlite_file = tmp_path / "newer.db"
    Ledger(sqlite_file, create=True).close()
    with sqlite3.connect(sqlite_file) as db:
        db.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    secret_file = password_file(tmp_path, postgres_server)
    for ledger, newer_than in (
        (
            {"url": postgres_url, "password_file": secret_file},
            f"schema version {CURRENT + 1}, newer than this spanledger knows ({CURRENT})",
        ),
        ({"path": "newer.db"}, "schema version 2, newer than this spanledger knows (1)"),
    ):
        config = write_config(tmp_path, ledger)
        for command in (
            ["serve", "--config", str(config), "--log-level", "WARNING"],
            ["report", "--config", str(config)],
        ):
            result = subprocess.run(
                [*SPANLEDGER, *command], capture_output=True, text=True, timeout=60, check=False
            )
            assert result.returncode == 2, result.stderr
            (line,) = result.stderr.strip().splitlines()
            assert newer_than in line
            assert postgres_server.password not in line


def test_a_database_spanledger_never_wrote_to_is_a_clear_error(postgres_url, postgres_server):
    with psycopg.connect(postgres_url, password=postgres_server.password, autocommit=True) as db:
        db.execute("CREATE TABLE something (x int)")
    with pytest.raises(LedgerError, match="has no schema version: it is not a spanledger ledger"):
        PostgresLedger(postgres_url, password=postgres_server.password)
