"""Watching the body of an ``httpx2`` response as the application reads it.

An SDK built on ``httpx2`` (openai, anthropic) returns streams and raw responses whose body is
read later, through whichever object the application holds (``Stream``, ``MessageStream``,
``APIResponse``). All of them read
``response.stream``, so wrapping that one object sees every byte and every way reading ends:
exhaustion, a failed read, ``close()`` (a ``break`` followed by close, a ``with`` block exit)
and garbage collection of a body nobody closed. The returned objects stay untouched.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Protocol

import httpx2


class BodyWatcher(Protocol):
    """Given the raw chunks and told about the end of reading. No method may raise.

    The body appends each chunk to ``unread`` and calls ``read_unread`` once ``unread`` holds
    ``chunks_per_read`` of them: a list append costs less per chunk than a call.
    """

    unread: list[bytes]
    chunks_per_read: int

    def read_unread(self) -> None:
        """Reads the chunks in ``unread`` and empties it."""
        ...

    def finish(self, *, exhausted: bool = False, error: BaseException | None = None) -> None:
        """Reading ended: ``exhausted`` when the body was read to its end, ``error`` when it failed.

        Called at least once and possibly several times; only the first call counts.
        """
        ...


class _WatchedSyncBody(httpx2.SyncByteStream):
    def __init__(self, body: httpx2.SyncByteStream, watcher: BodyWatcher) -> None:
        self._sync_body = body
        self._watcher = watcher

    @property
    def elapsed(self) -> timedelta | None:
        """The wrapped body's ``elapsed``, which ``httpx2.Response.elapsed`` reads."""
        return getattr(self._sync_body, "elapsed", None)

    def __iter__(self) -> Iterator[bytes]:
        watcher = self._watcher
        unread, read_unread, chunks_per_read = (
            watcher.unread,
            watcher.read_unread,
            watcher.chunks_per_read,
        )
        try:
            for chunk in self._sync_body:
                unread.append(chunk)
                if len(unread) >= chunks_per_read:
                    read_unread()
                yield chunk
        except Exception as error:
            self._watcher.finish(error=error)
            raise
        self._watcher.finish(exhausted=True)

    def close(self) -> None:
        try:
            self._sync_body.close()
        finally:
            self._watcher.finish()

    def __del__(self) -> None:
        self._watcher.finish()


class _WatchedAsyncBody(httpx2.AsyncByteStream):
    def __init__(self, body: httpx2.AsyncByteStream, watcher: BodyWatcher) -> None:
        self._async_body = body
        self._watcher = watcher

    @property
    def elapsed(self) -> timedelta | None:
        """The wrapped body's ``elapsed``, which ``httpx2.Response.elapsed`` reads."""
        return getattr(self._async_body, "elapsed", None)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        watcher = self._watcher
        unread, read_unread, chunks_per_read = (
            watcher.unread,
            watcher.read_unread,
            watcher.chunks_per_read,
        )
        try:
            async for chunk in self._async_body:
                unread.append(chunk)
                if len(unread) >= chunks_per_read:
                    read_unread()
                yield chunk
        except Exception as error:
            self._watcher.finish(error=error)
            raise
        self._watcher.finish(exhausted=True)

    async def aclose(self) -> None:
        try:
            await self._async_body.aclose()
        finally:
            self._watcher.finish()

    def __del__(self) -> None:
        self._watcher.finish()


class _WatchedDualBody(_WatchedSyncBody, _WatchedAsyncBody):
    """For a body that is sync and async at once, as ``httpx2.ByteStream`` is."""

    def __init__(self, body: httpx2.SyncByteStream, watcher: BodyWatcher) -> None:
        _WatchedSyncBody.__init__(self, body, watcher)
        _WatchedAsyncBody.__init__(self, body, watcher)  # type: ignore[arg-type]


def watch_body(response: httpx2.Response, watcher: BodyWatcher) -> None:
    """Routes the body of ``response``, not yet read, through ``watcher``.

    The wrapper has the same kind (sync, async or both) as the body, so that ``httpx2``'s
    own checks hold.
    """
    body = response.stream
    if isinstance(body, httpx2.SyncByteStream) and isinstance(body, httpx2.AsyncByteStream):
        response.stream = _WatchedDualBody(body, watcher)
    elif isinstance(body, httpx2.SyncByteStream):
        response.stream = _WatchedSyncBody(body, watcher)
    else:
        response.stream = _WatchedAsyncBody(body, watcher)
