"""The per-label cardinality cap: the first N distinct values of a label are kept, later ones
become ``(other)`` so that every call still lands in exactly one bucket per label."""

from __future__ import annotations

import threading

from spanledger.semconv import OVERFLOW, UNTAGGED


class CardinalityCap:
    """Remembers up to ``limit`` distinct values per label key and folds the rest into ``(other)``.

    ``(none)`` and ``(other)`` themselves are always kept and never count towards the limit.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"cardinality limit must be at least 1, got {limit}")
        self.limit = limit
        self._seen: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def bucket(self, key: str, value: str) -> tuple[str, bool]:
        """The value to record for ``key`` and whether it was folded into ``(other)``."""
        if value in (UNTAGGED, OVERFLOW):
            return value, False
        with self._lock:
            seen = self._seen.setdefault(key, set())
            if value in seen:
                return value, False
            if len(seen) < self.limit:
                seen.add(value)
                return value, False
        return OVERFLOW, True

    def distinct(self, key: str) -> int:
        """How many distinct values ``key`` keeps (at most ``limit``)."""
        with self._lock:
            return len(self._seen.get(key, ()))
