"""Checked reads of the fields of a bill record, with errors that say where and what."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from spanledger.processor.reconcile.bill import BillError


def mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise BillError(f"{where}: expected a JSON object, got {_kind(value)}")
    return value


def items(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise BillError(f"{where}: expected a JSON array, got {_kind(value)}")
    return value


def count(record: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> int | None:
    """A token or request count: a whole number >= 0 (``None`` when absent and not required)."""
    value = record.get(key)
    if value is None and not required:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, Decimal) and value == value.to_integral_value():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        missing = "is missing" if value is None else f"is {value!r}"
        raise BillError(f"{where}: {key} {missing}; expected a whole number >= 0")
    return value


def text(record: Mapping[str, Any], key: str, where: str) -> str | None:
    value = record.get(key)
    if value is None or isinstance(value, str):
        return value or None
    raise BillError(f"{where}: {key} must be text or null, got {value!r}")


def amount(value: object, where: str) -> Decimal:
    """An exact decimal amount from a JSON number (read as ``Decimal``) or decimal text."""
    if isinstance(value, bool) or value is None:
        raise BillError(f"{where}: expected an amount, got {value!r}")
    if isinstance(value, float):
        value = repr(value)
    try:
        result = Decimal(str(value).strip())
    except InvalidOperation:
        raise BillError(f"{where}: {value!r} is not an amount") from None
    if not result.is_finite():
        raise BillError(f"{where}: {value!r} is not an amount")
    return result


def usd(currency: object, where: str) -> None:
    """Only USD bills are read: spanledger's costs are USD."""
    if not isinstance(currency, str) or currency.strip().upper() != "USD":
        raise BillError(
            f"{where}: currency {currency!r} is not USD; spanledger compares USD amounts only"
        )


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "an array", str: "text"}.get(type(value), repr(value))
