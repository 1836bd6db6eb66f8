"""Incremental decoding of a server-sent-events body, for a provider read from its bytes.

Bytes arrive in arbitrary chunks; :class:`SSEDecoder` keeps the partial line between chunks and
gives each complete event. Only the ``event`` and ``data`` fields matter here.

A stream spends most of its events on ones the instrumentation does not read (text deltas), so a
decoder told which event types are ``wanted`` passes over the others whole. While the stream
separates its lines with ``\\n`` alone (as the Messages API does), it looks through the complete
events of a chunk for a few short strings, one of which every line naming a wanted type contains
(for Anthropic's Messages API: ``message_`` and ``error``). Only an event holding one of them is
decoded; the events around it are passed over without a look at their lines. Anything else goes
through the line-by-line reading that the format defines.
"""

from __future__ import annotations

from collections.abc import Collection
from functools import lru_cache
from typing import NamedTuple

_CR = 0x0D
_BLANK_LINE = b"\n\n"


@lru_cache(maxsize=64)
def marker_strings(names: frozenset[str]) -> tuple[bytes, ...]:
    """Strings of which every one of ``names`` contains one: each name up to its first ``_``.

    Names that share such a start (``message_start``, ``message_delta``) share one string, so a
    chunk is searched a few times whatever the number of names.
    """
    markers = set()
    for name in names:
        encoded = name.encode()
        cut = encoded.find(b"_")
        markers.add(encoded if cut < 0 else encoded[: cut + 1])
    return tuple(sorted(markers))


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
        self._markers = None if wanted is None else marker_strings(frozenset(wanted))
        """One of them is in every line naming a wanted type (a find elsewhere costs only time)."""
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
        # Everything up to the last blank line is complete events; the rest waits for more.
        end = buffer.rfind(_BLANK_LINE)
        if end < 0:
            self._pending = buffer
            return []
        self._pending = buffer[end + 2 :]
        if self._markers is None:
            return self._blocks(buffer, 0, end)
        return self._marked_blocks(buffer, end)

    def _marked_blocks(self, buffer: bytes, end: int) -> list[ServerSentEvent]:
        """The wanted events among the complete ones in ``buffer[:end]``.

        Only the events holding a marker string are decoded. Between events the decoder keeps no
        state, so passing over the others changes nothing.
        """
        events: list[ServerSentEvent] = []
        start = 0
        while start < end:
            hit = end
            for marker in self._markers:  # type: ignore[union-attr]
                at = buffer.find(marker, start, hit)
                if at >= 0:
                    hit = at
            if hit == end:
                break
            # The event holding ``hit`` starts after the last blank line before it and ends at
            # the first one after it (``end`` at the latest).
            opening = buffer.rfind(_BLANK_LINE, start, hit)
            first = start if opening < 0 else opening + 2
            closing = buffer.find(_BLANK_LINE, hit, end + 2)
            events.extend(self._blocks(buffer, first, closing))
            start = closing + 2
        return events

    def _blocks(self, buffer: bytes, start: int, end: int) -> list[ServerSentEvent]:
        """The wanted events that the lines of ``buffer[start:end]`` and a blank line complete."""
        events: list[ServerSentEvent] = []
        for line in buffer[start:end].split(b"\n"):
            event = self._line(line)
            if event is not None and self._is_wanted(event):
                events.append(event)
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
