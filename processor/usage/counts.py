"""Read token counts and costs from span attribute values of any type.

OTLP/protobuf gives ints and doubles; OTLP/JSON gives int64 values as strings. Anything that is
not a whole, non-negative, plausible number is refused with a reason, never guessed.
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation

MAX_TOKENS = 1_000_000_000
"""More tokens than this in one call is not a real count."""

MAX_REPORTED_COST = Decimal(1_000_000)
"""More USD than this for one call is not a real cost."""


class Unusable(ValueError):
    """An attribute value that cannot be used; the message says why."""


def token_count(value: object) -> int:
    """The token count in ``value``; raise ``Unusable`` for anything that is not one."""
    if isinstance(value, bool):
        raise Unusable(f"{value!r} is not a number")
    if isinstance(value, int):
        count = value
    elif isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise Unusable(f"{value!r} is not a whole number")
        count = int(value)
    elif isinstance(value, str):
        count = _count_from_text(value)
    else:
        raise Unusable(f"a {type(value).__name__} is not a number")
    if count < 0:
        raise Unusable(f"{count} is negative")
    if count > MAX_TOKENS:
        raise Unusable(f"{count} is more than {MAX_TOKENS:,} tokens")
    return count


def _count_from_text(text: str) -> int:
    stripped = text.strip()
    try:
        return int(stripped)
    except ValueError:
        pass
    try:
        number = float(stripped)
    except ValueError:
        raise Unusable(f"{text!r} is not a number") from None
    if not math.isfinite(number) or not number.is_integer():
        raise Unusable(f"{text!r} is not a whole number")
    return int(number)


def usd_amount(value: object) -> Decimal:
    """The USD amount in ``value`` as an exact Decimal; raise ``Unusable`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise Unusable(f"{value!r} is not a number")
    try:
        amount = Decimal(value.strip() if isinstance(value, str) else repr(value))
    except InvalidOperation:
        raise Unusable(f"{value!r} is not a number") from None
    if not amount.is_finite():
        raise Unusable(f"{value!r} is not a finite number")
    if amount < 0:
        raise Unusable(f"{value!r} is negative")
    if amount > MAX_REPORTED_COST:
        raise Unusable(f"{value!r} is more than {MAX_REPORTED_COST} USD for one call")
    return amount
