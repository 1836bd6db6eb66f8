"""Keep faults inside the instrumentation away from the user's program.

Everything the instrumentation does around an SDK call (reading requests, parsing usage, setting
attributes) runs under :func:`guarded`, a :func:`safe` function or an ``except Exception`` block
that calls :func:`log_fault`: a fault is logged with its traceback and swallowed, and the SDK
call itself proceeds untouched.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import ParamSpec, TypeVar

logger = logging.getLogger("spanledger.instrumentation")

P = ParamSpec("P")
R = TypeVar("R")


FAULT_MESSAGE = "spanledger instrumentation fault while %s; the call is unaffected"


def log_fault(what: str) -> None:
    """Log the exception being handled as a fault of the instrumentation while doing ``what``.

    For ``except Exception:`` blocks on paths run for every call, where :class:`guarded` would
    cost an object and two method calls even when nothing fails.
    """
    logger.error(FAULT_MESSAGE, what, exc_info=True)


class guarded:
    """Run a block of instrumentation code; log and swallow any ``Exception`` it raises."""

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: object, tb: object) -> bool:
        if exc_type is None or not issubclass(exc_type, Exception):
            return False
        logger.error(FAULT_MESSAGE, self.what, exc_info=(exc_type, exc, tb))
        return True


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
