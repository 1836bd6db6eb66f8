"""Settings from environment variables, read on every call and parsed only when they change.

The instrumentation honours changes to its environment variables at any time (a test or an
application may set them after start-up), so it reads them on each call. Reading through
``os.environ`` encodes the name and decodes the value on every read; :class:`EnvSetting` instead
looks the variable up in the mapping's own storage and compares what it finds with what it saw
last time. ``os.environ`` stores a new value object whenever a variable is set, and the setting
keeps a reference to the object it parsed, so the same object means the same value.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from operator import is_
from typing import Generic, TypeVar

T = TypeVar("T")

_STORAGE = getattr(os.environ, "_data", None)
_ENCODE_KEY = getattr(os.environ, "encodekey", None)
_UNSEEN = object()


def _storage_keys(names: tuple[str, ...]) -> tuple[object, ...] | None:
    """The keys of ``names`` in ``os.environ``'s storage; ``None`` where it has none to use."""
    if not isinstance(_STORAGE, dict) or _ENCODE_KEY is None:
        return None
    try:
        return tuple(_ENCODE_KEY(name) for name in names)
    except Exception:
        return None


class EnvSetting(Generic[T]):
    """The value of ``parse(os.environ)``, computed again only when one of ``names`` changes.

    ``parse`` must depend on no other variable than ``names``. Reads from several threads are
    safe: the value and what it was parsed from are replaced together.
    """

    __slots__ = ("_keys", "_parse", "_seen", "names")

    def __init__(self, parse: Callable[[Mapping[str, str]], T], *names: str) -> None:
        if not names:
            raise ValueError("an environment setting needs at least one variable name")
        self.names = names
        self._parse = parse
        self._keys = _storage_keys(names)
        self._seen: tuple[object, T | None] = (_UNSEEN, None)

    def get(self) -> T:
        """The parsed value for the environment as it is now."""
        keys = self._keys
        if keys is None:
            return self._parse(os.environ)
        assert _STORAGE is not None
        if len(keys) == 1:
            raw: object = _STORAGE.get(keys[0])
            seen_raw, value = self._seen
            if raw is seen_raw:
                return value  # type: ignore[return-value]
        else:
            raw = tuple(map(_STORAGE.get, keys))
            seen_raw, value = self._seen
            if seen_raw is not _UNSEEN and all(map(is_, raw, seen_raw)):  # type: ignore[call-overload]
                return value  # type: ignore[return-value]
        value = self._parse(os.environ)
        self._seen = (raw, value)
        return value
