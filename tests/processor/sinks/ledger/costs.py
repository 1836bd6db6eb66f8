"""What the reliability kit's traffic costs, exactly: the ledger keeps exact decimals, so the
report must equal this sum to the last digit (not just to the cent)."""

from __future__ import annotations

from decimal import Decimal

from reliability_support import call_costs


def exact_cost(traces: range, calls: int) -> Decimal:
    """The decimal price of every call of ``traces`` (``calls`` chat calls each), summed."""
    return sum(call_costs(traces, calls), Decimal(0))
