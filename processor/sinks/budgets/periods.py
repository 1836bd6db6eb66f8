"""Budget windows in UTC: the calendar period containing an instant, a custom window, all time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
LIFETIME = "lifetime"
CUSTOM = "custom"


@dataclass(frozen=True, slots=True)
class Window:
    """``[start, end)`` in UTC; None is open. ``kind`` is a period name, custom or lifetime."""

    kind: str
    start: datetime | None
    end: datetime | None

    def contains(self, moment: datetime) -> bool:
        return (self.start is None or self.start <= moment) and (
            self.end is None or moment < self.end
        )

    def seconds_left(self, now: datetime) -> float | None:
        """Seconds until the window ends (None: it never does)."""
        return None if self.end is None else max(0.0, (self.end - now).total_seconds())


def calendar_window(period: str, moment: datetime) -> Window:
    """The daily, weekly (Monday first), monthly or yearly UTC window containing ``moment``."""
    moment = moment.astimezone(UTC)
    day = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    if period == "daily":
        return Window(period, day, day + timedelta(days=1))
    if period == "weekly":
        start = day - timedelta(days=day.weekday())
        return Window(period, start, start + timedelta(days=7))
    if period == "monthly":
        start = day.replace(day=1)
        following = (
            start.replace(year=start.year + 1, month=1)
            if start.month == 12
            else start.replace(month=start.month + 1)
        )
        return Window(period, start, following)
    if period == "yearly":
        start = day.replace(month=1, day=1)
        return Window(period, start, start.replace(year=start.year + 1))
    raise ValueError(f"unknown period {period!r}")


def from_unix_nano(value: int) -> datetime:
    """A UTC datetime from nanoseconds since the epoch (to the microsecond)."""
    return EPOCH + timedelta(microseconds=int(value) // 1000)


def to_unix_nano(moment: datetime) -> int:
    """Nanoseconds since the epoch, exactly."""
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000


def iso(moment: datetime | None) -> str | None:
    """``2026-11-01T00:00:00Z``, or None for an open end."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
