"""Incremental decoding of a server-sent-events body, as the Messages API streams it.

Bytes arrive in arbitrary chunks; :class:`SSEDecoder` keeps the partial line between chunks and
yields each complete event. Only the ``event`` and ``data`` fields matter here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class ServerSentEvent:
    """One dispatched event: its type (``None`` when the stream named none) and its data lines."""

    event: str | None
    data: str


class SSEDecoder:
    """Turns chunks of an ``text/event-stream`` body into :class:`ServerSentEvent` items."""

    def __init__(self) -> None:
        self._pending = b""
        self._event: str | None = None
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> Iterator[ServerSentEvent]:
        """Decodes ``chunk`` and yields every event that it completes."""
        buffer = self._pending + chunk
        start = 0
        length = len(buffer)
        while start < length:
            newline = buffer.find(b"\n", start)
            carriage = buffer.find(b"\r", start, newline if newline >= 0 else length)
            if carriage >= 0:
                # A lone CR ends a line too; a CR at the end of the chunk may be half of a CRLF.
                if carriage == length - 1:
                    break
                end, after = carriage, carriage + (2 if buffer[carriage + 1] == 0x0A else 1)
            elif newline >= 0:
                end, after = newline, newline + 1
            else:
                break
            event = self._line(buffer[start:end])
            if event is not None:
                yield event
            start = after
        self._pending = buffer[start:]

    def close(self) -> Iterator[ServerSentEvent]:
        """Yields the event that an unterminated last line completes, if any."""
        pending, self._pending = self._pending, b""
        if pending.rstrip(b"\r"):
            event = self._line(pending.rstrip(b"\r"))
            if event is not None:
                yield event
        if self._data:
            yield self._dispatch()

    def _line(self, raw: bytes) -> ServerSentEvent | None:
        if not raw:
            if self._data:
                return self._dispatch()
            self._event = None
            return None
        line = raw.decode("utf-8", errors="replace")
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        return None

    def _dispatch(self) -> ServerSentEvent:
        event = ServerSentEvent(self._event, "\n".join(self._data))
        self._event, self._data = None, []
        return event
