"""The pipeline: spans in, annotated traces out.

``core`` files spans under their trace and flushes traces to be priced and rolled up;
``call_check`` keeps values no sink can hold out of the ledger, metrics and budgets.
"""

from spanledger.processor.pipeline.core import Pipeline

__all__ = ["Pipeline"]
