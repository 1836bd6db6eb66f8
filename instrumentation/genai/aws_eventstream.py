"""A stream sent through AWS Bedrock: AWS event-stream frames instead of server-sent events.

Bedrock's ``invoke-with-response-stream`` answers ``application/vnd.amazon.eventstream``: binary
frames whose ``chunk`` events carry ``{"bytes": <base64 JSON>}``, each JSON document one event of
the model's own stream (for Anthropic's models, ``message_start``, ``message_delta``...), and
whose ``exception`` frames end a failed stream. The frames are split by botocore's parser (an SDK
that talks to Bedrock, such as anthropic's ``bedrock`` extra, brings botocore).
"""

from __future__ import annotations

import base64
import json
from typing import Any

MEDIA_TYPE = "application/vnd.amazon.eventstream"


class AwsEventDecoder:
    """Turns the bytes of an event stream into ``(event type, decoded event)`` pairs."""

    def __init__(self) -> None:
        from botocore.eventstream import EventStreamBuffer

        self._buffer = EventStreamBuffer()

    def feed(self, data: bytes) -> list[tuple[str | None, Any]]:
        """The events that ``data`` completes, in order."""
        self._buffer.add_data(data)
        events: list[tuple[str | None, Any]] = []
        for message in self._buffer:
            headers = message.headers
            kind = headers.get(":message-type")
            if kind == "event" and headers.get(":event-type") == "chunk":
                encoded = json.loads(message.payload).get("bytes")
                if isinstance(encoded, str):
                    event = json.loads(base64.b64decode(encoded))
                    if isinstance(event, dict):
                        events.append((None, event))
            elif kind in ("exception", "error"):
                name = headers.get(":exception-type") or headers.get(":error-code") or "error"
                events.append(("error", {"error": {"type": name}}))
        return events
