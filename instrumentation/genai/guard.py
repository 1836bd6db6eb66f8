"""Keep faults inside the instrumentation away from the user's program.

Everything the instrumentation does around an SDK call (reading requests, parsing usage, setting
attributes) runs under :func:`guarded` or a :func:`safe` function: a fault is logged once per call
site with its traceback and swallowed, and the SDK call itself proceeds untouched.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

logger = logging.getLogger("spanledger.instrumentation")

P = ParamSpec("P")
R = TypeVar("R")


@contextmanager
def guarded(what: str) -> Iterator[None]:
    """Run a block of instrumentation code; log and swallow any ``Exception`` it raises."""
    try:
        yield
    except Exception:
        logger.exception("spanledger instrumentation fault while %s; the call is unaffected", what)


def safe(default: R | None = None) -> Callable[[Callable[P, R]], Callable[P, R | None]]:
    """Decorate an instrumentation helper so that a fault is logged and ``default`` returned."""

    def decorate(func: Callable[P, R]) -> Callable[P, R | None]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | None:
            try:
                return func(*args, **kwargs)
            except Exception:
                logger.exception(
                    "spanledger instrumentation fault in %s; the call is unaffected",
                    func.__qualname__,
                )
                return default

        return wrapper

    return decorate
