"""Where counted calls go besides the exporters: per-tag metrics, the ledger and budgets."""
