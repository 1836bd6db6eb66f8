"""``spanledger migrate`` and ``spanledger prune``: ledger upkeep from the command line.

Both take the ledger from ``--config FILE`` (its ``ledger`` section) or ``--ledger PATH|URL``,
and work the same on an SQLite file and a PostgreSQL database.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TextIO

from spanledger.processor.sinks.ledger.backends import open_ledger
from spanledger.processor.sinks.ledger.base import LedgerError


def _parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--config", metavar="FILE", help="processor config naming the ledger")
    source.add_argument(
        "--ledger",
        metavar="PATH|URL",
        help="ledger file or postgresql:// URL (password from PGPASSWORD) [spanledger.db]",
    )
    return parser


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace | int:
    try:
        return parser.parse_args(list(argv))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2


def run_migrate(argv: Sequence[str], out: TextIO | None = None) -> int:
    """``spanledger migrate``: bring the ledger's schema to this version's (creating it when
    missing). Exit 0 when done, 2 when the ledger cannot be used (e.g. a newer schema)."""
    from spanledger.processor.cli.report import ledger_config

    out = out or sys.stdout
    parser = _parser(
        "spanledger migrate",
        "Create the ledger, or bring its schema up to this version of spanledger. "
        "`spanledger serve` does the same when it starts.",
    )
    options = _parse(parser, argv)
    if isinstance(options, int):
        return options
    try:
        config = ledger_config(options.config, options.ledger)
        with open_ledger(config, create=True) as ledger:
            before = getattr(ledger, "migrated_from", None)
            version = getattr(ledger, "schema_version", None)
            if before is not None and version is not None and before < version:
                print(f"ledger {ledger.location}: schema version {before} -> {version}", file=out)
            else:
                print(f"ledger {ledger.location}: schema is up to date", file=out)
    except (ValueError, LedgerError) as exc:
        print(f"spanledger migrate: {exc}", file=sys.stderr)
        return 2
    return 0


def run_prune(argv: Sequence[str], out: TextIO | None = None) -> int:
    """``spanledger prune --before WHEN``: delete the calls that started before WHEN."""
    from spanledger.processor.cli.report import ledger_config
    from spanledger.processor.report.periods import describe, parse_instant, to_unix_nano

    out = out or sys.stdout
    parser = _parser(
        "spanledger prune",
        "Delete the calls that started before a date from the ledger (SQLite or PostgreSQL). "
        "Reports over what remains stay exact.",
    )
    parser.add_argument(
        "--before",
        metavar="WHEN",
        required=True,
        help="2026-01-01 (midnight UTC), 2026-01-01T12:00Z, or an age such as 400d",
    )
    options = _parse(parser, argv)
    if isinstance(options, int):
        return options
    try:
        before = parse_instant(options.before, datetime.now(UTC))
        config = ledger_config(options.config, options.ledger)
        with open_ledger(config) as ledger:
            deleted = ledger.delete_before(to_unix_nano(before))
            print(
                f"ledger {ledger.location}: deleted {deleted:,} calls that started before "
                f"{describe(before)} UTC",
                file=out,
            )
    except (ValueError, LedgerError) as exc:
        print(f"spanledger prune: {exc}", file=sys.stderr)
        return 2
    return 0
