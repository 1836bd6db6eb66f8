"""End a streamed call's span exactly once, however the stream ends.

:class:`StreamSpan` owns the span of one streamed call and the usage seen so far. It ends the span
once, on the first of:

- exhaustion (``spanledger.stream.completed=true``),
- an error raised while reading (status ERROR, ``error.type``, ``completed=false``),
- ``close()`` / leaving ``with`` / ``async with`` before the end (``completed=false``),
- garbage collection of an abandoned stream (``completed=false``), via :meth:`watch`;
- the connection being closed outside a read, via :meth:`transport_closed` (for SDK helpers that
  close the HTTP response rather than the stream object).

Partial usage seen before an early end is kept, with the output chunks that arrived
(``spanledger.stream.chunks``) and, when no output count came, those chunks as an estimate
(``spanledger.usage.estimate.output_tokens``), never as ``gen_ai.usage.output_tokens``. A
non-streamed call can use the same object to get the same exactly-once end:
``finish(completed=None)`` writes no ``spanledger.stream.*``.

:func:`observe` and :func:`observe_async` (and :func:`observe_current`, for a generator that
sends its request when first read, and its async twin :func:`observe_async_current`) wrap an
iterator so that it feeds each item to a
callback and ends the span on exhaustion, error and ``close()``; a callback returning
:data:`HIDE` keeps an item from the caller.
:class:`StreamProxy` and :class:`AsyncStreamProxy` wrap a whole stream object (isinstance checks
on the proxy still hold) for SDKs whose stream classes cannot be adjusted in place.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

import wrapt
from opentelemetry.context import attach, detach
from opentelemetry.trace import Span, set_span_in_context

from spanledger import semconv

from .guard import guarded, log_fault, logger
from .span import InferenceUsage, end_with_error

T = TypeVar("T")

HIDE = object()
"""Returned by an item callback to keep that item from the caller."""

ItemCallback = Callable[[Any], Any]


class StreamSpan:
    """The span of one call, its usage so far, and the exactly-once end."""

    __slots__ = ("__weakref__", "_ended", "_finalizer", "_lock", "reading", "span", "usage")

    def __init__(self, span: Span, usage: InferenceUsage | None = None) -> None:
        self.span = span
        self.usage = usage if usage is not None else InferenceUsage()
        self.reading = False
        """True while :func:`observe` waits on the underlying iterator."""
        self._ended = False
        self._lock = threading.Lock()
        self._finalizer: weakref.finalize | None = None

    @property
    def ended(self) -> bool:
        return self._ended

    def watch(self, stream: object, completed: bool | None = False) -> None:
        """End the span when ``stream`` is garbage collected unfinished.

        Watching another object replaces the previous watch (e.g. a raw response handing over to
        the stream parsed from it). ``completed`` is what the span then records; ``None`` writes no
        ``spanledger.stream.completed`` (for a non-streamed call).
        """
        with guarded("watching a stream for garbage collection"):
            if self._ended:
                return
            if self._finalizer is not None:
                self._finalizer.detach()
            self._finalizer = weakref.finalize(stream, self.finish, completed=completed)

    def transport_closed(self) -> None:
        """Note that the connection was closed: unless an :func:`observe` read is in progress
        (the stream closing itself at its end or on an error, which :func:`observe` reports),
        the caller closed it early, so the span ends with ``completed=false``."""
        if not self.reading:
            self.finish(completed=False)

    def _claim(self) -> bool:
        with self._lock:
            if self._ended:
                return False
            self._ended = True
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        return True

    def finish(self, completed: bool | None) -> None:
        """End the span with the usage seen; a no-op after the first end.

        ``completed`` becomes ``spanledger.stream.completed``; ``None`` leaves it unset, for a
        call that was not streamed.
        """
        if not self._claim():
            return
        span = self.span
        try:
            if span.is_recording():
                attributes = self.usage.attributes()
                if completed is not None:
                    attributes[semconv.STREAM_COMPLETED] = completed
                    if not completed:
                        attributes.update(self.usage.cut_short_attributes())
                if attributes:
                    span.set_attributes(attributes)
        except Exception:
            log_fault("ending a stream span")
        span.end()

    def fail(self, error: BaseException, streamed: bool = True) -> None:
        """End the span as failed, keeping the usage seen; a no-op after the first end."""
        if not self._claim():
            return
        with guarded("ending a failed stream span"):
            if streamed and self.span.is_recording():
                self.span.set_attribute(semconv.STREAM_COMPLETED, False)
                self.span.set_attributes(self.usage.cut_short_attributes())
        end_with_error(self.span, error, self.usage)


class _Ending:
    """Ends ``state``'s span however an observed iteration ends: done, closed early, or failed."""

    def __init__(self, state: StreamSpan) -> None:
        self._state = state

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, _: Any
    ) -> bool:
        if kind is None:
            self._state.finish(completed=True)
        elif issubclass(kind, GeneratorExit):
            self._state.finish(completed=False)
        else:
            assert error is not None
            self._state.fail(error)
        return False


_ITEM_FAULT = "spanledger instrumentation fault reading a stream item"


def observe(iterator: Iterator[T], state: StreamSpan, on_item: ItemCallback) -> Iterator[T]:
    """Yield from ``iterator``, feeding ``on_item`` and ending ``state`` however iteration ends.

    A fault in ``on_item`` is logged and the item is passed on as it is.
    """
    with _Ending(state):
        # ``reading`` is true exactly while the loop waits on ``iterator``.
        state.reading = True
        for item in iterator:
            state.reading = False
            try:
                shown = on_item(item) is not HIDE
            except Exception:
                logger.exception(_ITEM_FAULT)
                shown = True
            if shown:
                yield item
            state.reading = True
        state.reading = False


def observe_current(iterator: Iterator[T], state: StreamSpan, on_item: ItemCallback) -> Iterator[T]:
    """:func:`observe` for an iterator that sends its request when first read (a generator):
    the span is current while the iterator runs, so HTTP client spans nest under it."""
    context = set_span_in_context(state.span)
    with _Ending(state):
        while True:
            state.reading = True
            token = attach(context)
            try:
                item = next(iterator)
            except StopIteration:
                break
            finally:
                detach(token)
                state.reading = False
            if _shown(on_item, item):
                yield item


def _shown(on_item: ItemCallback, item: Any) -> bool:
    """Whether ``on_item`` lets ``item`` through; a fault in it is logged and lets it through."""
    try:
        return on_item(item) is not HIDE
    except Exception:
        logger.exception(_ITEM_FAULT)
        return True


async def observe_async(
    iterator: AsyncIterator[T], state: StreamSpan, on_item: ItemCallback
) -> AsyncIterator[T]:
    """Async twin of :func:`observe`."""
    with _Ending(state):
        state.reading = True
        async for item in iterator:
            state.reading = False
            try:
                shown = on_item(item) is not HIDE
            except Exception:
                logger.exception(_ITEM_FAULT)
                shown = True
            if shown:
                yield item
            state.reading = True
        state.reading = False


async def observe_async_current(
    iterator: AsyncIterator[T], state: StreamSpan, on_item: ItemCallback
) -> AsyncIterator[T]:
    """:func:`observe_async` for an async generator that sends its request when first read: the
    span is current while the iterator runs, so HTTP client spans nest under it."""
    context = set_span_in_context(state.span)
    with _Ending(state):
        while True:
            state.reading = True
            token = attach(context)
            try:
                item = await anext(iterator)
            except StopAsyncIteration:
                break
            finally:
                detach(token)
                state.reading = False
            if _shown(on_item, item):
                yield item


class StreamProxy(wrapt.ObjectProxy):
    """Wrap a sync stream object: iteration is observed, ``close``/``with`` end the span.

    Each item goes to ``on_item`` when given, else to :meth:`on_item`, which subclasses override,
    to read usage from it (return :data:`HIDE` to keep an item from the caller). The wrapped
    object's other attributes pass through.
    """

    def __init__(
        self, wrapped: Any, state: StreamSpan, on_item: ItemCallback | None = None
    ) -> None:
        super().__init__(wrapped)
        self._self_state = state
        self._self_iterator = observe(iter(wrapped), state, on_item or self.on_item)
        state.watch(self)

    def on_item(self, item: Any) -> Any:
        """Read one item; return :data:`HIDE` to drop it. The default keeps everything."""
        return item

    def __iter__(self) -> Iterator[Any]:
        return self._self_iterator

    def __next__(self) -> Any:
        return next(self._self_iterator)

    def __enter__(self) -> StreamProxy:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(*exc_info)
        finally:
            self._self_state.finish(completed=False)

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_state.finish(completed=False)


class AsyncStreamProxy(wrapt.ObjectProxy):
    """Async twin of :class:`StreamProxy`."""

    def __init__(
        self, wrapped: Any, state: StreamSpan, on_item: ItemCallback | None = None
    ) -> None:
        super().__init__(wrapped)
        self._self_state = state
        self._self_iterator = observe_async(aiter(wrapped), state, on_item or self.on_item)
        state.watch(self)

    def on_item(self, item: Any) -> Any:
        """Read one item; return :data:`HIDE` to drop it. The default keeps everything."""
        return item

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._self_iterator

    async def __anext__(self) -> Any:
        return await anext(self._self_iterator)

    async def __aenter__(self) -> AsyncStreamProxy:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(*exc_info)
        finally:
            self._self_state.finish(completed=False)

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            self._self_state.finish(completed=False)
