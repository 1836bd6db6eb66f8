"""The local ledger: one row per counted call in SQLite, the source of ``spanledger report``."""

from spanledger.processor.ledger.sink import LedgerConfig, LedgerSink
from spanledger.processor.ledger.store import GroupTotals, Ledger, LedgerError

__all__ = ["GroupTotals", "Ledger", "LedgerConfig", "LedgerError", "LedgerSink"]
