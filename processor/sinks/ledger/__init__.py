"""The ledger: one row per counted call, the source of ``spanledger report``.

An SQLite file on one machine (``ledger.path``, the default) or a PostgreSQL database shared by
every replica (``ledger.url``); both are read through the same ``LedgerStore`` interface.
"""

from spanledger.processor.sinks.ledger.backends import config_for, open_ledger
from spanledger.processor.sinks.ledger.base import (
    TAG_PREFIX,
    GroupTotals,
    LedgerError,
    LedgerStore,
    SchemaError,
)
from spanledger.processor.sinks.ledger.config import LedgerConfig, LedgerQueueConfig
from spanledger.processor.sinks.ledger.sink import LedgerSink
from spanledger.processor.sinks.ledger.store import Ledger

__all__ = [
    "TAG_PREFIX",
    "GroupTotals",
    "Ledger",
    "LedgerConfig",
    "LedgerError",
    "LedgerQueueConfig",
    "LedgerSink",
    "LedgerStore",
    "SchemaError",
    "config_for",
    "open_ledger",
]
