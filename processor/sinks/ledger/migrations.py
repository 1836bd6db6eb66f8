"""Ledger schema versions: the steps that bring a database to the version this code reads.

The version is stored in the ledger itself (``meta``/``spanledger_meta``, key
``schema_version``). A writer brings an older database up to date when it starts (or
``spanledger migrate`` does it ahead of time); every process refuses a database whose version is
newer than it knows, with one line saying to upgrade spanledger.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    """One step: the statements that take a database from ``version - 1`` to ``version``."""

    version: int
    description: str
    statements: tuple[str, ...]


def schema_problem(location: str, found: str | None, expected: int) -> str:
    """The one line that says why a ledger at schema ``found`` cannot be used by this code."""
    if found is None:
        return f"ledger {location} has no schema version: it is not a spanledger ledger"
    try:
        number = int(found)
    except ValueError:
        return f"ledger {location} has schema version {found!r}, not one spanledger wrote"
    if number > expected:
        return (
            f"ledger {location} has schema version {number}, newer than this spanledger "
            f"knows ({expected}): upgrade spanledger"
        )
    return (
        f"ledger {location} has schema version {number}, older than this spanledger's "
        f"({expected}): run `spanledger migrate`"
    )


def pending(migrations: tuple[Migration, ...], found: int) -> list[Migration]:
    """The steps after version ``found``, in order; checks the list has no gap."""
    for index, step in enumerate(migrations, start=1):
        if step.version != index:
            raise ValueError(f"migration {step.version} is out of order (expected {index})")
    return [step for step in migrations if step.version > found]
