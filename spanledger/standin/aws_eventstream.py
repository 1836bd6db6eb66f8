"""The AWS event-stream binary framing (``application/vnd.amazon.eventstream``).

Each message is::

    total length (4 bytes) | headers length (4) | prelude CRC32 (4)
    | headers | payload | message CRC32 (4)

all integers big-endian, the prelude CRC over the first 8 bytes and the message CRC over
everything before it. A header is its name's length (1 byte), the name, its type (1 byte; 7 is
a string) and, for a string, the value's length (2 bytes) and the value. Bedrock's streams send
events with ``:message-type: event``, ``:event-type`` naming the member of the stream's union and
``:content-type: application/json``, and end a failed stream with ``:message-type: exception``
and ``:exception-type``.
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

from spanledger.standin.replies import compact_json

CONTENT_TYPE = "application/vnd.amazon.eventstream"
_STRING = 7
_PRELUDE = struct.Struct(">II")
_CRC = struct.Struct(">I")


def _header(name: str, value: str) -> bytes:
    encoded_name, encoded_value = name.encode(), value.encode()
    return (
        bytes((len(encoded_name),))
        + encoded_name
        + bytes((_STRING,))
        + struct.pack(">H", len(encoded_value))
        + encoded_value
    )


def message(headers: dict[str, str], payload: bytes) -> bytes:
    """One framed message with string headers."""
    encoded_headers = b"".join(_header(name, value) for name, value in headers.items())
    total = _PRELUDE.size + _CRC.size + len(encoded_headers) + len(payload) + _CRC.size
    prelude = _PRELUDE.pack(total, len(encoded_headers))
    body = prelude + _CRC.pack(zlib.crc32(prelude)) + encoded_headers + payload
    return body + _CRC.pack(zlib.crc32(body))


def event(event_type: str, payload: Any) -> bytes:
    """An ``event`` message whose payload is ``payload`` as JSON."""
    headers = {
        ":event-type": event_type,
        ":content-type": "application/json",
        ":message-type": "event",
    }
    return message(headers, compact_json(payload).encode())


def exception(exception_type: str, text: str) -> bytes:
    """An ``exception`` message, as a stream that fails after it started ends."""
    headers = {
        ":exception-type": exception_type,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return message(headers, json.dumps({"message": text}).encode())
