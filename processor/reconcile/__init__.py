"""The provider's bill against the ledger: fetching and reading the bill, matching, settlement
that makes every grouping of the tags add up to the invoice, drift alerts. The verb is in
``cli.reconcile``; see docs/reconcile.md."""
