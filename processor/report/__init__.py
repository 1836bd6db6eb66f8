"""``spanledger report``: cost per tag, provider, model and period, read from the ledger."""

from spanledger.processor.report.command import run_report

__all__ = ["run_report"]
