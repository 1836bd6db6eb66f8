"""Incremental decoding of a server-sent-events body, as the Messages API streams it.

Bytes arrive in arbitrary chunks; :class:`SSEDecoder` keeps the partial line between chunks and
gives each complete event. Only the ``event`` and ``data`` fields matter here.

A stream spends most of its events on ones the instrumentation does not read (text deltas), so a
decoder told which event types are ``wanted`` passes over the others whole: while the stream
separates its lines with ``\\n`` alone (as the Messages API does), the complete events of a
chunk in which no ``event:`` line names a wanted type are passed over in one search; otherwise
each event is found by its closing blank line and, when it opens with an ``event:`` line naming
an unwanted type, dropped without its lines being decoded. Anything else goes through the
line-by-line reading that the format defines.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import NamedTuple

_CR = 0x0D
_EVENT_FIELD = b"event: "
_EVENT_NAME = b"event:"


class ServerSentEvent(NamedTuple):
    """One dispatched event: its type (``None`` when the stream named none) and its data lines."""

    event: str | None
    data: str


class SSEDecoder:
    """Turns chunks of an ``text/event-stream`` body into :class:`ServerSentEvent` items.

    ``wanted``: the event types to give; ``None`` gives every event.
    """

    def __init__(self, wanted: Collection[str] | None = None) -> None:
        self._wanted = wanted
        self._wanted_names = None if wanted is None else frozenset(name.encode() for name in wanted)
        self._naming_wanted = (
            None
            if wanted is None
            else re.compile(
                rb"event: ?(?:" + b"|".join(re.escape(name.encode()) for name in wanted) + rb")"
            )
        )
        """Finds an ``event:`` field that may name a wanted type (a false find costs only time)."""
        self._pending = b""
        self._event: str | None = None
        self._data: list[str] = []
        self._by_line = False
        """Set once a ``\r`` is seen: from then on every line is read one by one."""

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Decodes ``chunk``; the events that it completes."""
        buffer = self._pending + chunk if self._pending else chunk
        if self._by_line or _CR in chunk:
            self._by_line = True
            self._pending = b""
            return self._lines(buffer)
        naming_wanted = self._naming_wanted
        if naming_wanted is not None:
            # Everything up to the last blank line is complete events; when none of them names
            # a wanted type, none is given, and the decoder keeps no state between events.
            end = buffer.rfind(b"\n\n")
            if end < 0 or naming_wanted.search(buffer, 0, end) is None:
                self._pending = buffer if end < 0 else buffer[end + 2 :]
                return []
        events: list[ServerSentEvent] = []
        wanted_names = self._wanted_names
        # Every block but the last holds the lines of one event, which a blank line closed.
        blocks = buffer.split(b"\n\n")
        self._pending = blocks.pop()
        for block in blocks:
            if wanted_names is not None and block[: len(_EVENT_FIELD)] == _EVENT_FIELD:
                name, _, rest = block[len(_EVENT_FIELD) :].partition(b"\n")
                if name not in wanted_names and _EVENT_NAME not in rest:
                    continue
            for line in block.split(b"\n"):
                self._line(line)
            event = self._line(b"")
            if event is not None and self._is_wanted(event):
                events.append(event)
        return events

    def close(self) -> list[ServerSentEvent]:
        """The events that the rest of the body completes, an unterminated one included."""
        pending, self._pending = self._pending, b""
        events = self._lines(pending)
        rest, self._pending = self._pending.rstrip(b"\r"), b""
        if rest:
            event = self._line(rest)
            if event is not None and self._is_wanted(event):
                events.append(event)
        if self._data:
            event = self._dispatch()
            if self._is_wanted(event):
                events.append(event)
        return events

    def _is_wanted(self, event: ServerSentEvent) -> bool:
        return self._wanted is None or event.event in self._wanted

    def _lines(self, buffer: bytes) -> list[ServerSentEvent]:
        """Reads ``buffer`` line by line; keeps an unterminated last line for the next chunk."""
        events: list[ServerSentEvent] = []
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
            if event is not None and self._is_wanted(event):
                events.append(event)
            start = after
        self._pending = buffer[start:]
        return events

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
