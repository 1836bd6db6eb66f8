"""Which spans may record an inference call, decided on their serialized bytes.

Parsing every span's attributes costs more than the rest of the pipeline's work on a span, so the
pipeline parses only the spans whose bytes hold an attribute key under the prefix of a key that
can make a span a call (``CALL_KEYS``: ``gen_ai.``, ``llm.``, ...). The prefixes are derived
from the dialect table, so a dialect that reads attributes under a new prefix is seen without
any other change.

The test is one regular-expression search per span for a protobuf string field 1 (``KeyValue``'s
``key``: the byte 0x0A, then its length) that starts with one of the prefixes. Anchored on the
field's start, it scans the bytes once, whatever the number of prefixes, and a span name or an
attribute value that mentions ``gen_ai.`` does not count (a string value that starts with a
prefix does: ``AnyValue.string_value`` is a field 1 too, and reading such a span is harmless).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable

from spanledger.processor.usage.extract import CALL_KEYS

_KEY_FIELD = re.escape(b"\x0a")
"""The tag of a length-delimited field 1, as ``KeyValue.key`` is encoded."""
_ONE_BYTE_LENGTH = 127


def attribute_prefix(key: str) -> str:
    """The namespace of an attribute key, dot included: ``gen_ai.`` for ``gen_ai.usage.x``."""
    head, dot, _ = key.partition(".")
    return head + dot


def markers_for(keys: Iterable[str]) -> tuple[bytes, ...]:
    """The distinct prefixes of ``keys`` as bytes, the most shared first."""
    counts = Counter(attribute_prefix(key) for key in keys)
    ordered = sorted(counts, key=lambda prefix: (-counts[prefix], prefix))
    return tuple(prefix.encode() for prefix in ordered)


def candidate_check(keys: Iterable[str]) -> Callable[[bytes], bool]:
    """A test of serialized span bytes: whether a key field in them starts with the prefix of
    one of ``keys``.

    It can be wrong only one way: a span it passes may carry none of ``keys`` (it is then read
    and found not to be a call), but a span carrying one of them always passes.
    """
    keys = list(keys)
    prefixes = b"|".join(re.escape(marker) for marker in markers_for(keys))
    # The key's length is a varint: one byte below 128, else (for these keys) two.
    long_keys = any(len(key.encode()) > _ONE_BYTE_LENGTH for key in keys)
    length = rb"[\x80-\xff]?[\x00-\x7f]" if long_keys else rb"[\x00-\x7f]"
    search = re.compile(_KEY_FIELD + length + b"(?:" + prefixes + b")").search

    def is_candidate(data: bytes) -> bool:
        return search(data) is not None

    return is_candidate


def candidate_markers() -> tuple[bytes, ...]:
    """The byte markers ``is_candidate`` looks for, derived from the dialect table."""
    return _MARKERS


_MARKERS = markers_for(CALL_KEYS)
is_candidate: Callable[[bytes], bool] = candidate_check(CALL_KEYS)
"""Whether serialized span bytes may record an inference call of any known dialect."""
