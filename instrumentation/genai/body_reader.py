"""Reading an inference reply out of a response body while the application reads the body itself.

For an SDK patched at its HTTP ``request`` (the openai and anthropic SDKs, whose base-client
``request`` is the one patch point that no other instrumentor can shadow, see ``patching``), the
reply is not always parsed by the SDK: ``with_streaming_response`` hands the caller the body,
which they may read as lines or bytes. The only place where every reading of the body passes is
the body itself (see ``body.py``), so the reply is read from its bytes there.

:class:`BodyReader` gets the raw bytes of one response, undoes a gzip/deflate content encoding,
and follows the server-sent events of a stream (with :class:`~.sse.SSEDecoder`), the AWS event
stream of a stream sent through Bedrock (with :class:`~.aws_eventstream.AwsEventDecoder`), or
the JSON of a whole reply. The provider's :class:`StreamEvents` takes the events it wants; when
reading ends, the reader reports a :class:`BodyOutcome` exactly once. Nothing in the body is
needed before its end, so chunks are read a few at a time.
"""

from __future__ import annotations

import json
import logging
import threading
import zlib
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Protocol

from .aws_eventstream import MEDIA_TYPE as AWS_EVENT_STREAM
from .aws_eventstream import AwsEventDecoder
from .sse import SSEDecoder

log = logging.getLogger(__name__)

MAX_JSON_BODY_BYTES = 32 * 1024 * 1024
"""A JSON body longer than this is passed on without being kept for its usage."""

CHUNKS_PER_READ = 32
"""Raw chunks are kept and read this many at a time (and at the end): one search through their
joined bytes costs less than one per chunk, and nothing is needed from them before the end."""


class StreamEvents(Protocol):
    """The provider's side of reading a streamed body: which events it wants, and taking them."""

    wanted_events: Collection[str] | None
    """The server-sent event types to decode (the others are passed over); ``None``: all."""
    content_marker: bytes | None
    """Bytes that start the line naming a content event (a text delta) in a server-sent event
    stream, counted in the raw bytes rather than decoded; ``None`` counts nothing."""

    def add_sse(self, event_type: str | None, data: str) -> None:
        """Takes one wanted server-sent event: its type and its undecoded data."""

    def add_frame(self, event_type: str | None, event: Any) -> None:
        """Takes one event of an AWS event stream: ``error`` or ``None``, and its decoded JSON."""

    def count_content(self, count: int) -> None:
        """Adds ``count`` content events seen in the raw bytes."""


@dataclass(frozen=True, slots=True)
class BodyOutcome:
    """How reading a response body ended."""

    streamed: bool
    """Whether the body was an event stream."""
    completed: bool
    """Whether the body was read to its end without an error."""
    error: BaseException | None = None
    """The error that broke off reading, if any."""
    whole: Any = None
    """The decoded JSON of a body that was not a stream, read to its end; else ``None``."""


def _decompressor(content_encoding: str) -> Callable[[bytes], bytes] | None:
    """A function undoing ``content_encoding``, or ``None`` for one this module cannot undo."""
    if not content_encoding:
        return bytes
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    if not codings:
        return bytes
    if len(codings) == 1 and codings[0] in ("gzip", "x-gzip", "deflate"):
        # 32 + MAX_WBITS accepts a gzip or a zlib header.
        return zlib.decompressobj(zlib.MAX_WBITS | 32).decompress
    return None


class BodyReader:
    """Follows one response body and calls ``on_end`` once with its :class:`BodyOutcome`.

    It is the ``BodyWatcher`` that :func:`~.body.watch_body` feeds.
    """

    def __init__(
        self,
        *,
        content_type: str,
        content_encoding: str,
        events: StreamEvents,
        on_end: Callable[[BodyOutcome], None],
    ) -> None:
        media_type = content_type.split(";", 1)[0].strip().lower()
        self._frames: AwsEventDecoder | None = None
        self._broken = False
        if media_type == AWS_EVENT_STREAM:
            try:
                self._frames = AwsEventDecoder()
            except ImportError:
                log.debug("botocore is needed to follow an AWS event stream")
                self._broken = True
        self.streamed = media_type in ("text/event-stream", AWS_EVENT_STREAM)
        self._json = media_type == "application/json"
        self._decompress = _decompressor(content_encoding)
        if self._decompress is None and (self.streamed or self._json):
            log.debug("Cannot follow a body with content encoding %r", content_encoding)
        self._on_end = on_end
        self._events = events
        self._sse = SSEDecoder(wanted=events.wanted_events)
        self._marker = events.content_marker
        self._marker_tail = b""
        self._json_parts: list[bytes] | None = [] if self._json else None
        self._json_size = 0
        self._lock = threading.Lock()
        self._ended = False
        self.unread: list[bytes] = []
        """Raw chunks not read yet: they are read :data:`CHUNKS_PER_READ` at a time."""
        self.chunks_per_read = CHUNKS_PER_READ

    def feed(self, chunk: bytes) -> None:
        """Takes a raw chunk of the body. Never raises."""
        self.unread.append(chunk)
        if len(self.unread) >= self.chunks_per_read:
            self.read_unread()

    def read_unread(self) -> None:
        """Reads the chunks in :attr:`unread` as one piece, and empties it. Never raises."""
        self._read_unread(ending=False)

    def _read_unread(self, *, ending: bool) -> None:
        unread = self.unread
        if not unread:
            return
        joined = unread[0] if len(unread) == 1 else b"".join(unread)
        unread.clear()
        if self._broken or self._decompress is None or (self._ended and not ending):
            return
        try:
            data = joined if self._decompress is bytes else self._decompress(joined)
            if self._frames is not None:
                for kind, event in self._frames.feed(data):
                    self._events.add_frame(kind, event)
            elif self.streamed:
                if self._marker is not None:
                    self._count_content(data, self._marker)
                for event in self._sse.feed(data):
                    self._events.add_sse(event.event, event.data)
            elif self._json_parts is not None:
                self._json_size += len(data)
                if self._json_size > MAX_JSON_BODY_BYTES:
                    log.debug("Not keeping a JSON body longer than %d bytes", MAX_JSON_BODY_BYTES)
                    self._json_parts = None
                else:
                    self._json_parts.append(data)
        except Exception:
            self._broken = True
            log.exception("spanledger could not follow a response body; the call is unaffected")

    def _count_content(self, data: bytes, marker: bytes) -> None:
        """Count content events in the bytes (the decoder passes over them unread); a line split
        between two reads is found in the end of the one joined to the next."""
        window = self._marker_tail + data if self._marker_tail else data
        self._events.count_content(window.count(marker))
        self._marker_tail = window[1 - len(marker) :]

    def finish(self, *, exhausted: bool = False, error: BaseException | None = None) -> None:
        """Ends the watch; only the first call reports. Never raises."""
        with self._lock:
            if self._ended:
                return
            self._ended = True
        try:
            outcome = self._outcome(exhausted, error)
        except Exception:
            log.exception("spanledger could not read the reply in a response body")
            outcome = BodyOutcome(self.streamed, False, error)
        try:
            self._on_end(outcome)
        except Exception:
            log.exception("spanledger could not record the end of a response")

    def _outcome(self, exhausted: bool, error: BaseException | None) -> BodyOutcome:
        self._read_unread(ending=True)
        completed = exhausted and error is None
        if self.streamed:
            if not self._broken and self._decompress is not None and self._frames is None:
                for event in self._sse.close():
                    self._events.add_sse(event.event, event.data)
            return BodyOutcome(True, completed, error)
        whole = None
        if completed and self._json_parts is not None and not self._broken:
            try:
                whole = json.loads(b"".join(self._json_parts))
            except ValueError:
                log.debug("A JSON response body is not valid JSON")
        return BodyOutcome(False, completed, error, whole)


def read_whole_body(content_type: str, content: bytes, events: StreamEvents) -> BodyOutcome:
    """The outcome of a body that was read in full already; ``content`` is decoded."""
    outcomes: list[BodyOutcome] = []
    reader = BodyReader(
        content_type=content_type, content_encoding="", events=events, on_end=outcomes.append
    )
    reader.feed(content)
    reader.finish(exhausted=True)
    return outcomes[0]
