"""``spanledger reconcile``: the provider's bill against the ledger, and the settlement that makes
every grouping of the tags add up to the invoice. See docs/reconcile.md."""

from spanledger.processor.reconcile.command import run_reconcile

__all__ = ["run_reconcile"]
