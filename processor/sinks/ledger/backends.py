"""Opening the ledger a configuration names: the SQLite file or the PostgreSQL database."""

from __future__ import annotations

from spanledger.processor.sinks.ledger.base import LedgerError, LedgerStore
from spanledger.processor.sinks.ledger.config import LedgerConfig
from spanledger.processor.sinks.ledger.secrets import is_database_url
from spanledger.processor.sinks.ledger.store import Ledger


def open_ledger(
    config: LedgerConfig, *, create: bool = False, wait_for_server: bool = False
) -> LedgerStore:
    """The ledger of ``config``. ``create=True`` is the writer's mode: the SQLite file or the
    PostgreSQL schema is made or migrated when needed. ``wait_for_server``: a database that
    cannot be reached yet is connected to on first use instead of failing now. Raises
    ``LedgerError``, whose message holds no password."""
    if config.url:
        from spanledger.processor.sinks.ledger.postgres import PostgresLedger

        return PostgresLedger(
            config.url,
            password=config.password(),
            create=create,
            connect_timeout=config.connect_timeout,
            wait_for_server=wait_for_server,
        )
    if not config.path:
        raise LedgerError("the ledger is turned off (ledger.path is empty and no ledger.url)")
    return Ledger(config.path, create=create)


def config_for(location: str) -> LedgerConfig:
    """A ledger configuration for ``--ledger LOCATION``: a ``postgresql://`` URL or a file."""
    if is_database_url(location):
        return LedgerConfig(path=None, url=location)
    return LedgerConfig(path=location)
