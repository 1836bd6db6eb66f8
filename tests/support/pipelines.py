"""Pipeline test helpers: the tag keys the tests configure, a clock moved by hand, a moment
of known prices."""

from __future__ import annotations

from datetime import UTC, datetime

SEPTEMBER_2025 = int(datetime(2025, 9, 1, 12, tzinfo=UTC).timestamp()) * 1_000_000_000
"""A start time at which the published prices quoted in the tests were in force."""

TAG_KEYS = ("customer", "feature", "team", "env")


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
