"""Reading the Message out of a response body while the application reads the body itself.

:class:`MessageBodyWatcher` gets the raw bytes of a ``/v1/messages`` response (see ``body.py``),
undoes a gzip/deflate content encoding, and follows the server-sent events of a stream, the AWS
event stream of a stream from ``AnthropicBedrock``, or the JSON of a whole Message. When reading
ends it reports a :class:`BodyOutcome` exactly once. Nothing in the body is needed before its
end, so chunks are read a few at a time.
"""

from __future__ import annotations

import json
import logging
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from .eventstream import MEDIA_TYPE as BEDROCK_STREAM
from .eventstream import BedrockEventDecoder
from .sse import SSEDecoder
from .usage import MessageFacts, StreamAccumulator, facts_from_message

log = logging.getLogger(__name__)

MAX_JSON_BODY_BYTES = 32 * 1024 * 1024
"""A JSON body longer than this is passed on without being kept for its usage."""

CONTENT_DELTA = b"event: content_block_delta"
"""The line naming a content delta event, as the Messages API writes it."""

CHUNKS_PER_READ = 32
"""Raw chunks are kept and read this many at a time (and at the end): one search through their
joined bytes costs less than one per chunk, and nothing is needed from them before the end."""


@dataclass(frozen=True)
class BodyOutcome:
    """How reading a Messages response body ended, and what it told."""

    facts: MessageFacts | None
    streamed: bool
    """Whether the body was a stream of server-sent events."""
    completed: bool
    """Whether the whole Message arrived: ``message_stop`` for a stream, the end of a JSON body."""
    error: BaseException | None = None
    """The error that broke off reading, if any."""
    error_type: str | None = None
    """The type of an ``error`` event that the stream carried, if any."""


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


class MessageBodyWatcher:
    """Follows one response body and calls ``on_end`` once with its :class:`BodyOutcome`."""

    def __init__(
        self,
        *,
        content_type: str,
        content_encoding: str,
        on_end: Callable[[BodyOutcome], None],
        keep_text: bool = False,
    ) -> None:
        media_type = content_type.split(";", 1)[0].strip().lower()
        self._frames: BedrockEventDecoder | None = None
        self._broken = False
        if media_type == BEDROCK_STREAM:
            try:
                self._frames = BedrockEventDecoder()
            except ImportError:
                log.debug("botocore is needed to follow a Bedrock event stream")
                self._broken = True
        self._streamed = media_type in ("text/event-stream", BEDROCK_STREAM)
        self._json = media_type == "application/json"
        self._decompress = _decompressor(content_encoding)
        if self._decompress is None and (self._streamed or self._json):
            log.debug("Cannot follow a body with content encoding %r", content_encoding)
        self._on_end = on_end
        self._keep_text = keep_text
        self._stream = StreamAccumulator(keep_text=keep_text)
        self._sse = SSEDecoder(wanted=self._stream.wanted_events)
        self._json_parts: list[bytes] | None = [] if self._json else None
        self._json_size = 0
        self._delta_tail = b""
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
                    if kind == "content_block_delta":
                        self._stream.facts.content_chunks += 1  # type: ignore[operator]
                    self._stream.add(kind, event)
            elif self._streamed:
                self._count_deltas(data)
                for event in self._sse.feed(data):
                    self._stream.add_sse(event.event, event.data)
            elif self._json_parts is not None:
                self._json_size += len(data)
                if self._json_size > MAX_JSON_BODY_BYTES:
                    log.debug("Not keeping a JSON body longer than %d bytes", MAX_JSON_BODY_BYTES)
                    self._json_parts = None
                else:
                    self._json_parts.append(data)
        except Exception:
            self._broken = True
            log.exception(
                "spanledger could not follow an Anthropic response body; the call is unaffected"
            )

    def _count_deltas(self, data: bytes) -> None:
        """Count content deltas in the bytes (the decoder passes over them unread); a line split
        between two reads is found in the end of the one joined to the next."""
        window = self._delta_tail + data if self._delta_tail else data
        self._stream.facts.content_chunks += window.count(CONTENT_DELTA)  # type: ignore[operator]
        self._delta_tail = window[1 - len(CONTENT_DELTA) :]

    def finish(self, *, exhausted: bool = False, error: BaseException | None = None) -> None:
        """Ends the watch; only the first call reports. Never raises."""
        with self._lock:
            if self._ended:
                return
            self._ended = True
        try:
            outcome = self._outcome(exhausted, error)
        except Exception:
            log.exception("spanledger could not read the Message of an Anthropic response body")
            outcome = BodyOutcome(None, self._streamed, completed=False, error=error)
        try:
            self._on_end(outcome)
        except Exception:
            log.exception("spanledger could not record the end of an Anthropic response")

    def _outcome(self, exhausted: bool, error: BaseException | None) -> BodyOutcome:
        self._read_unread(ending=True)
        if self._streamed:
            if not self._broken and self._decompress is not None and self._frames is None:
                for event in self._sse.close():
                    self._stream.add_sse(event.event, event.data)
            self._stream.flush_text()
            seen = self._stream.saw_message_start or self._stream.completed
            return BodyOutcome(
                self._stream.facts if seen else None,
                streamed=True,
                completed=self._stream.completed,
                error=error,
                error_type=self._stream.error_type,
            )
        facts = None
        if exhausted and error is None and self._json_parts is not None and not self._broken:
            try:
                facts = facts_from_message(
                    json.loads(b"".join(self._json_parts)), keep_text=self._keep_text
                )
            except ValueError:
                log.debug("A Messages response body is not valid JSON")
        return BodyOutcome(
            facts, streamed=False, completed=exhausted and error is None, error=error
        )


def read_whole_body(content_type: str, content: bytes, *, keep_text: bool = False) -> BodyOutcome:
    """The outcome of a body that was read in full already; ``content`` is decoded."""
    outcomes: list[BodyOutcome] = []
    watcher = MessageBodyWatcher(
        content_type=content_type, content_encoding="", on_end=outcomes.append, keep_text=keep_text
    )
    watcher.feed(content)
    watcher.finish(exhausted=True)
    return outcomes[0]
