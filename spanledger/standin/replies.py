"""What a route hands back to the server: a JSON body or a stream of server-sent events."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class JsonReply:
    """A complete JSON response."""

    body: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> bytes:
        return compact_json(self.body).encode()


@dataclass
class StreamReply:
    """A streamed response (``text/event-stream`` unless ``content_type`` says otherwise); each
    item of ``events`` is one encoded event.

    ``error_event(sent, message)`` encodes the provider's in-stream error, sent in place of
    the rest of the stream when a scenario asks for ``stream_error_after``.
    """

    events: Iterable[bytes]
    error_event: Callable[[int, str | None], bytes]
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "text/event-stream; charset=utf-8"


def compact_json(value: Any) -> str:
    """``value`` as JSON without spaces, as the APIs send it."""
    return json.dumps(value, separators=(",", ":"))


def sse(data: Any, event: str | None = None) -> bytes:
    """One server-sent event: an optional ``event:`` line and one ``data:`` line of JSON."""
    payload = data if isinstance(data, str) else compact_json(data)
    if event is None:
        return f"data: {payload}\n\n".encode()
    return f"event: {event}\ndata: {payload}\n\n".encode()


@dataclass
class Call:
    """One API request as the routes see it: the decoded body and its sequence number."""

    body: dict[str, Any]
    number: int
    created: int

    def id(self, prefix: str) -> str:
        """A response id unique within this stand-in, e.g. ``chatcmpl-standin000000000007``."""
        return f"{prefix}standin{self.number:012d}"
