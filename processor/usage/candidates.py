"""Which spans may record an inference call, decided on their serialized bytes.

Parsing every span's attributes costs more than the rest of the pipeline's work on a span, so the
pipeline parses only the spans whose bytes contain the prefix of an attribute that can make a
span a call (``CALL_KEYS``: ``gen_ai.``, ``llm.``, ...). The prefixes are derived from the
dialect table, so a dialect that reads attributes under a new prefix is seen without any other
change.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable

from spanledger.processor.usage.extract import CALL_KEYS


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
    """A test of serialized span bytes: whether they contain the prefix of one of ``keys``.

    It can be wrong only one way: a span it passes may carry none of ``keys`` (it is then read
    and found not to be a call), but a span carrying one of them always passes.
    """
    search = re.compile(b"|".join(re.escape(marker) for marker in markers_for(keys))).search

    def is_candidate(data: bytes) -> bool:
        return search(data) is not None

    return is_candidate


def candidate_markers() -> tuple[bytes, ...]:
    """The byte markers ``is_candidate`` looks for, derived from the dialect table."""
    return _MARKERS


_MARKERS = markers_for(CALL_KEYS)
is_candidate: Callable[[bytes], bool] = candidate_check(CALL_KEYS)
"""Whether serialized span bytes may record an inference call of any known dialect."""
