"""Reading ``--since``/``--until`` values: dates, date-times and ages such as ``30d``, in UTC."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_AGE = re.compile(r"^(\d+)\s*(m|h|d|w)$")
_AGE_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_instant(text: str, now: datetime | None = None) -> datetime:
    """``2026-11-01`` (midnight UTC), ``2026-11-01T12:30[Z|+02:00]``, ``now``, or an age such as
    ``30d``, ``12h``, ``2w``, ``45m`` (that long before now). Times without an offset are UTC."""
    value = text.strip()
    now = now or datetime.now(UTC)
    if value == "now":
        return now
    age = _AGE.match(value)
    if age:
        return now - timedelta(**{_AGE_UNITS[age.group(2)]: int(age.group(1))})
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a date (2026-11-01), a date-time (2026-11-01T12:30Z) "
            "or an age (30d, 12h, 2w, 45m)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def to_unix_nano(moment: datetime) -> int:
    """Nanoseconds since the Unix epoch, exactly (no float rounding)."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000


def describe(moment: datetime) -> str:
    """A short UTC rendering for headers: ``2026-11-01 00:00``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
