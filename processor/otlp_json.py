"""OTLP/JSON: the protobuf JSON mapping with the deviations the OTLP specification makes.

Trace and span ids are hex strings (case-insensitive) instead of base64; enums are integers;
64-bit integers are written as decimal strings and read from strings or numbers; unknown fields
are ignored. Keys are written in lowerCamelCase; the original field names are also accepted
when reading, as the protobuf JSON mapping does.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

M = TypeVar("M", bound=Message)

_TRACE_ID_BYTES = 16
_SPAN_ID_BYTES = 8
# (camelCase key, original key, expected byte length) of every id carried by a span or a link.
_SPAN_IDS = (
    ("traceId", "trace_id", _TRACE_ID_BYTES),
    ("spanId", "span_id", _SPAN_ID_BYTES),
    ("parentSpanId", "parent_span_id", _SPAN_ID_BYTES),
)
_LINK_IDS = _SPAN_IDS[:2]


class OtlpJsonError(ValueError):
    """The body is not a valid OTLP/JSON message; the text says where and why."""


def decode_request(body: bytes | str) -> ExportTraceServiceRequest:
    """Parse an OTLP/JSON ``ExportTraceServiceRequest``; raise ``OtlpJsonError`` if invalid."""
    document = _load(body)
    if not isinstance(document, dict):
        raise OtlpJsonError("expected a JSON object with 'resourceSpans'")
    _ids_to_base64(document)
    return _parse(document, ExportTraceServiceRequest())


def encode_request(request: ExportTraceServiceRequest) -> bytes:
    """Serialize an ``ExportTraceServiceRequest`` as OTLP/JSON (UTF-8)."""
    document = _to_dict(request)
    _walk_spans(document, _base64_to_hex)
    return _dump(document)


def decode_message(body: bytes | str, message_type: type[M]) -> M:
    """Parse OTLP/JSON into a message without span ids (responses, ``google.rpc.Status``)."""
    document = _load(body)
    if not isinstance(document, dict):
        raise OtlpJsonError(f"expected a JSON object for {message_type.DESCRIPTOR.name}")
    return _parse(document, message_type())


def encode_message(message: Message) -> bytes:
    """Serialize a message without span ids (responses, ``google.rpc.Status``) as OTLP/JSON."""
    return _dump(_to_dict(message))


def encode_response(response: ExportTraceServiceResponse) -> bytes:
    """Serialize an ``ExportTraceServiceResponse`` as OTLP/JSON."""
    return encode_message(response)


def _load(body: bytes | str) -> Any:
    try:
        text = body.decode("utf-8-sig") if isinstance(body, bytes | bytearray) else body
        return json.loads(text)
    except UnicodeDecodeError as exc:
        raise OtlpJsonError(f"body is not UTF-8: {exc.reason} at byte {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise OtlpJsonError(
            f"body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise OtlpJsonError("body is nested too deeply") from None


def _parse(document: dict[str, Any], message: M) -> M:
    try:
        return json_format.ParseDict(document, message, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise OtlpJsonError(str(exc)) from None
    except RecursionError:
        raise OtlpJsonError("message is nested too deeply") from None


def _to_dict(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, use_integers_for_enums=True)


def _dump(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _ids_to_base64(document: dict[str, Any]) -> None:
    """Rewrite hex ids to the base64 the protobuf JSON parser expects, checking each one."""
    _walk_spans(document, _hex_to_base64)


def _walk_spans(
    document: dict[str, Any], convert: Callable[[dict[str, Any], str, str, int, str], None]
) -> None:
    for r, resource_spans in _items(document, "resourceSpans", "resource_spans", ""):
        where_r = f"resourceSpans[{r}]"
        for s, scope_spans in _items(resource_spans, "scopeSpans", "scope_spans", where_r):
            where_s = f"{where_r}.scopeSpans[{s}]"
            for i, span in _items(scope_spans, "spans", "spans", where_s):
                where_span = f"{where_s}.spans[{i}]"
                for camel, original, size in _SPAN_IDS:
                    convert(span, camel, original, size, where_span)
                for j, link in _items(span, "links", "links", where_span):
                    for camel, original, size in _LINK_IDS:
                        convert(link, camel, original, size, f"{where_span}.links[{j}]")


def _items(parent: Any, camel: str, original: str, where: str) -> list[tuple[int, dict[str, Any]]]:
    """The objects of list field ``camel`` (or ``original``) of ``parent``; shapes are checked."""
    if not isinstance(parent, dict):
        raise OtlpJsonError(f"{where}: expected an object, got {_kind(parent)}")
    value = parent.get(camel, parent.get(original))
    if value is None:
        return []
    place = f"{where}.{camel}" if where else camel
    if not isinstance(value, list):
        raise OtlpJsonError(f"{place}: expected a list, got {_kind(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise OtlpJsonError(f"{place}[{index}]: expected an object, got {_kind(item)}")
    return list(enumerate(value))


def _hex_to_base64(
    holder: dict[str, Any], camel: str, original: str, size: int, where: str
) -> None:
    for key in (camel, original):
        value = holder.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise OtlpJsonError(f"{where}.{camel}: expected a hex string, got {_kind(value)}")
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raise OtlpJsonError(f"{where}.{camel}: {value[:40]!r} is not a hex string") from None
        if raw and len(raw) != size:
            raise OtlpJsonError(
                f"{where}.{camel}: expected {size * 2} hex digits, got {len(value)}: {value[:40]!r}"
            )
        holder[key] = base64.b64encode(raw).decode("ascii")


def _base64_to_hex(
    holder: dict[str, Any], camel: str, original: str, size: int, where: str
) -> None:
    value = holder.get(camel)
    if value is not None:
        holder[camel] = binascii.a2b_base64(value).hex()


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "a number"
    )
