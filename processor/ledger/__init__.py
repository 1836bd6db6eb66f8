"""The ledger: one row per counted call, the source of ``spanledger report``.

An SQLite file on one machine (``ledger.path``, the default) or a PostgreSQL database shared by
every replica (``ledger.url``); both are read through the same ``LedgerStore`` interface.
"""

from spanledger.processor.ledger.backends import config_for, open_ledger
from spanledger.processor.ledger.base import GroupTotals, LedgerError, LedgerStore, SchemaError
from spanledger.processor.ledger.config import LedgerConfig, LedgerQueueConfig
from spanledger.processor.ledger.sink import LedgerSink
from spanledger.processor.ledger.store import Ledger

__all__ = [
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
