"""Reading the ledger for ``spanledger report``: periods, grouped rows and their rendering
(table, CSV, JSON); budget status as the processor loads it. The verb is in ``cli.report``."""
