"""The ``spanledger`` command: every verb in one place.

``main`` parses the command line and runs the verb; ``report``, ``price``, ``reconcile`` and
``ledger`` (migrate, prune) are the verbs that parse their own arguments.
"""

from spanledger.processor.cli.main import main

__all__ = ["main"]
