"""Cost tags: ``spanledger.tags(customer="acme")`` scopes and ``spanledger.current_tags()``.

Tags are W3C baggage entries. A scope merges its entries into the baggage of the current context
(inner scopes override outer keys; ``None`` removes a key) and always restores the previous
context on the way out, exceptions included. Baggage follows the work across threads, executors,
asyncio tasks, processes (``spanledger.carry``) and HTTP hops, and ``TagSpanProcessor`` copies
the keys named in ``SPANLEDGER_TAG_KEYS`` onto every span started inside it.

The W3C limits are kept at the scope: at most 64 entries, 4096 bytes per encoded entry and 8192
bytes in all. An entry that would break them is left out, with a warning naming it; the rest of
the scope applies.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote_plus

from opentelemetry import baggage
from opentelemetry import context as otel_context
from opentelemetry.context import Context

from spanledger.instrumentation.baggage.config import TAG_KEYS_ENV, active_config, is_valid_key

__all__ = ["MAX_BAGGAGE_BYTES", "MAX_BAGGAGE_ENTRIES", "TagScope", "current_tags", "tags"]

_logger = logging.getLogger(__name__)

MAX_BAGGAGE_ENTRIES = 64
"""W3C baggage: the number of list-members every receiver must accept."""
MAX_BAGGAGE_BYTES = 8192
"""W3C baggage: the size of the header every receiver must accept."""
MAX_ENTRY_BYTES = 4096
"""W3C baggage: the size of one encoded ``key=value`` list-member every receiver must accept."""

TagValue = str | int | float | bool | None
F = TypeVar("F", bound=Callable[..., Any])

_warned_keys: set[str] = set()


def tags(**entries: TagValue) -> TagScope:
    """A scope that merges ``entries`` into the baggage: a context manager and a decorator.

    ``with spanledger.tags(customer="acme", feature="search"): ...`` or ``@spanledger.tags(...)``
    on a function, coroutine function, generator or async generator function; a decorated
    generator is inside the scope while it runs, not while it is suspended. Values are strings
    (numbers and booleans are converted); ``None`` removes the key inside the scope.

    Raises ``ValueError`` for a key that is not a W3C baggage key and ``TypeError`` for a value
    of another type, at the call that names them.
    """
    return TagScope(entries)


def current_tags(context: Context | None = None) -> dict[str, str]:
    """The baggage entries in effect, as a new ``dict`` of strings."""
    return {key: str(value) for key, value in baggage.get_all(context).items()}


class TagScope:
    """The scope returned by ``tags()``; entering it attaches the merged baggage."""

    def __init__(self, entries: Mapping[str, TagValue]) -> None:
        self.entries: dict[str, str | None] = {
            key: _checked_value(key, value) for key, value in entries.items()
        }
        _warn_uncopied_keys(self.entries)
        self._tokens: list[object] = []

    def __enter__(self) -> dict[str, str]:
        context = merged_context(self.entries)
        self._tokens.append(otel_context.attach(context))
        return current_tags(context)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        otel_context.detach(self._tokens.pop())

    async def __aenter__(self) -> dict[str, str]:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, traceback)

    def __call__(self, fn: F) -> F:
        entries = self.entries
        if inspect.isasyncgenfunction(fn):

            @functools.wraps(fn)
            def async_gen_wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
                return _scoped_async_generator(fn(*args, **kwargs), entries)

            return async_gen_wrapper  # type: ignore[return-value]
        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def gen_wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
                return _scoped_generator(fn(*args, **kwargs), entries)

            return gen_wrapper  # type: ignore[return-value]
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with TagScope(entries):
                    return await fn(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with TagScope(entries):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"spanledger.tags({', '.join(f'{k}={v!r}' for k, v in self.entries.items())})"


def merged_context(entries: Mapping[str, str | None], context: Context | None = None) -> Context:
    """``context`` (default: current) with ``entries`` merged into its baggage, in W3C limits."""
    merged = dict(baggage.get_all(context))
    rejected: list[str] = []
    for key, value in entries.items():
        if value is None:
            merged.pop(key, None)
            continue
        candidate = {**merged, key: value}
        if _encoded_size(key, value) > MAX_ENTRY_BYTES or not _within_limits(candidate):
            rejected.append(key)
            continue
        merged = candidate
    if rejected:
        _logger.warning(
            "spanledger.tags: left out %s: the baggage would exceed the W3C limits "
            "(%d entries, %d bytes per entry, %d bytes in all); the other tags apply",
            ", ".join(rejected),
            MAX_BAGGAGE_ENTRIES,
            MAX_ENTRY_BYTES,
            MAX_BAGGAGE_BYTES,
        )
    context = baggage.clear(context)
    for key, value in merged.items():
        context = baggage.set_baggage(key, value, context)
    return context


def _encoded_size(key: str, value: object) -> int:
    return len(quote_plus(str(key))) + 1 + len(quote_plus(str(value)))


def _within_limits(entries: Mapping[str, object]) -> bool:
    if len(entries) > MAX_BAGGAGE_ENTRIES:
        return False
    total = sum(_encoded_size(key, value) for key, value in entries.items())
    return total + max(len(entries) - 1, 0) <= MAX_BAGGAGE_BYTES


def _checked_value(key: str, value: TagValue) -> str | None:
    if not is_valid_key(key):
        raise ValueError(
            f"spanledger.tags: {key!r} is not a valid W3C baggage key "
            "(letters, digits and !#$%&'*+-.^_`|~ only)"
        )
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value)
    raise TypeError(
        f"spanledger.tags: the value of {key!r} must be a string, number, boolean or None, "
        f"not {type(value).__name__}"
    )


def _warn_uncopied_keys(entries: Mapping[str, str | None]) -> None:
    copied = active_config().tag_keys
    for key in entries:
        if key not in copied and key not in _warned_keys:
            _warned_keys.add(key)
            _logger.warning(
                "spanledger.tags: %r is not in %s (%s); it travels as baggage but is not "
                "copied onto spans",
                key,
                TAG_KEYS_ENV,
                ",".join(copied),
            )


def _scoped_generator(
    generator: Generator[Any, Any, Any], entries: Mapping[str, str | None]
) -> Generator[Any, Any, Any]:
    """Drives ``generator`` one step at a time, each step inside the tag scope."""
    to_send: Any = None
    to_throw: BaseException | None = None
    while True:
        with TagScope(entries):
            try:
                item = generator.send(to_send) if to_throw is None else generator.throw(to_throw)
            except StopIteration as stop:
                return stop.value
        to_throw = None
        try:
            to_send = yield item
        except GeneratorExit:
            with TagScope(entries):
                generator.close()
            raise
        except BaseException as exc:
            to_send, to_throw = None, exc


async def _scoped_async_generator(
    generator: AsyncGenerator[Any, Any], entries: Mapping[str, str | None]
) -> AsyncGenerator[Any, Any]:
    """Drives ``generator`` one step at a time, each step inside the tag scope."""
    to_send: Any = None
    to_throw: BaseException | None = None
    while True:
        with TagScope(entries):
            try:
                if to_throw is not None:
                    item = await generator.athrow(to_throw)
                else:
                    item = await generator.asend(to_send)
            except StopAsyncIteration:
                return
        to_throw = None
        try:
            to_send = yield item
        except GeneratorExit:
            with TagScope(entries):
                await generator.aclose()
            raise
        except BaseException as exc:
            to_send, to_throw = None, exc
