"""OTLP/JSON: the protobuf JSON mapping with the deviations the OTLP specification makes.

Trace and span ids (of spans, links, log records and exemplars) are hex strings
(case-insensitive) instead of base64; enums are integers; 64-bit integers are written as decimal
strings and read from strings or numbers; unknown fields are ignored. Keys are written in
lowerCamelCase; the original field names are also accepted when reading, as the protobuf JSON
mapping does.

Requests are decoded by walking the message descriptors once per field and building the
protobuf message in one constructor call, which is far faster than the protobuf library's
generic JSON parser; errors name the place in the document (``resourceSpans[0].scopeSpans[1]
.spans[3].traceId: ...``).
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
from collections.abc import Callable
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

M = TypeVar("M", bound=Message)

_ID_BYTES = {"trace_id": 16, "span_id": 8, "parent_span_id": 8}
"""Byte fields written as hex in every OTLP message, with their length."""
_MAX_DEPTH = 100
"""Message nesting accepted, as for binary protobuf."""


class OtlpJsonError(ValueError):
    """The body is not a valid OTLP/JSON message; the text says where and why."""

    def __init__(self, message: str, path: tuple[str, ...] = ()) -> None:
        self.reason = message
        self.path = path
        where = ".".join(path).replace(".[", "[")
        super().__init__(f"{where}: {message}" if where else message)

    def within(self, step: str) -> OtlpJsonError:
        """The same error, one level further out in the document."""
        return OtlpJsonError(self.reason, (step, *self.path))


def decode_request(
    body: bytes | str,
    request_type: type[M] = ExportTraceServiceRequest,  # type: ignore[assignment]
) -> M:
    """Parse an OTLP/JSON export request; raise ``OtlpJsonError`` if invalid.

    ``request_type`` is ``ExportTraceServiceRequest`` unless given (the metrics or logs request).
    """
    document = _load(body)
    descriptor = request_type.DESCRIPTOR
    if not isinstance(document, dict):
        raise OtlpJsonError(f"expected a JSON object with {descriptor.fields[0].json_name!r}")
    try:
        return request_type(**_message_fields(document, descriptor, 0))
    except RecursionError:
        raise OtlpJsonError("message is nested too deeply") from None
    except (TypeError, ValueError) as exc:
        if isinstance(exc, OtlpJsonError):
            raise
        raise OtlpJsonError(f"invalid value: {exc}") from None


def encode_request(request: Message) -> bytes:
    """Serialize an export request (traces, metrics or logs) as OTLP/JSON (UTF-8)."""
    document = _to_dict(request)
    _ids_to_hex(document)
    return _dump(document)


def decode_message(body: bytes | str, message_type: type[M]) -> M:
    """Parse OTLP/JSON into a message without span ids (responses, ``google.rpc.Status``)."""
    document = _load(body)
    if not isinstance(document, dict):
        raise OtlpJsonError(f"expected a JSON object for {message_type.DESCRIPTOR.name}")
    try:
        return json_format.ParseDict(document, message_type(), ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise OtlpJsonError(str(exc)) from None
    except RecursionError:
        raise OtlpJsonError("message is nested too deeply") from None


def encode_message(message: Message) -> bytes:
    """Serialize a message without span ids (responses, ``google.rpc.Status``) as OTLP/JSON."""
    return _dump(_to_dict(message))


def encode_response(response: ExportTraceServiceResponse) -> bytes:
    """Serialize an ``ExportTraceServiceResponse`` as OTLP/JSON."""
    return encode_message(response)


# -- reading ------------------------------------------------------------------------------------


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


_Convert = Callable[[Any, int], Any]


def _message_fields(value: Any, descriptor: Descriptor, depth: int) -> dict[str, Any]:
    """Keyword arguments for ``descriptor``'s message class from a JSON object."""
    if not isinstance(value, dict):
        raise OtlpJsonError(f"expected an object, got {_kind(value)}")
    if depth > _MAX_DEPTH:
        raise OtlpJsonError("message is nested too deeply")
    plan = _PLANS.get(descriptor.full_name) or _plan(descriptor)
    fields: dict[str, Any] = {}
    for key, item in value.items():
        entry = plan.get(key)
        if entry is None or item is None:
            continue  # unknown fields are ignored; null means the default
        name, convert, repeated = entry
        if not repeated:
            try:
                fields[name] = convert(item, depth + 1)
            except OtlpJsonError as exc:
                raise exc.within(key) from None
            continue
        if not isinstance(item, list):
            raise OtlpJsonError(f"expected a list, got {_kind(item)}", (key,))
        converted = []
        for index, element in enumerate(item):
            try:
                converted.append(convert(element, depth + 1))
            except OtlpJsonError as exc:
                raise exc.within(f"[{index}]").within(key) from None
        fields[name] = converted
    return fields


_PLANS: dict[str, dict[str, tuple[str, _Convert, bool]]] = {}
"""Per message type (by full name): JSON key -> (field name, converter, repeated)."""


def _plan(descriptor: Descriptor) -> dict[str, tuple[str, _Convert, bool]]:
    """Work out how to read each accepted JSON key of ``descriptor``'s message, once."""
    plan = {}
    for field in descriptor.fields:
        entry = (field.name, _converter(field), field.is_repeated)
        plan[field.json_name] = entry
        plan[field.name] = entry
    _PLANS[descriptor.full_name] = plan
    return plan


def _converter(field: FieldDescriptor) -> _Convert:
    kind = field.type
    if kind == FieldDescriptor.TYPE_MESSAGE:
        message_type = field.message_type
        if message_type.full_name == AnyValue.DESCRIPTOR.full_name:
            return _any_value
        return lambda value, depth: _message_fields(value, message_type, depth)
    if kind == FieldDescriptor.TYPE_BYTES:
        if field.name in _ID_BYTES:
            return functools.partial(_hex_id, size=_ID_BYTES[field.name])
        return _base64
    if kind == FieldDescriptor.TYPE_ENUM:
        # A plain dict: looking a name up in protobuf's own map with a string it cannot encode
        # (a lone surrogate) leaves an exception pending in its C code.
        names = {name: value.number for name, value in field.enum_type.values_by_name.items()}
        return functools.partial(_enum, names=names)
    if kind == FieldDescriptor.TYPE_STRING:
        return _string
    if kind == FieldDescriptor.TYPE_BOOL:
        return _bool
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return _float
    return functools.partial(_integer, bounds=_INTEGER_BOUNDS[kind])


_INT32 = (-(2**31), 2**31 - 1)
_UINT32 = (0, 2**32 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_UINT64 = (0, 2**64 - 1)
_INTEGER_BOUNDS = {
    FieldDescriptor.TYPE_INT32: _INT32,
    FieldDescriptor.TYPE_SINT32: _INT32,
    FieldDescriptor.TYPE_SFIXED32: _INT32,
    FieldDescriptor.TYPE_UINT32: _UINT32,
    FieldDescriptor.TYPE_FIXED32: _UINT32,
    FieldDescriptor.TYPE_INT64: _INT64,
    FieldDescriptor.TYPE_SINT64: _INT64,
    FieldDescriptor.TYPE_SFIXED64: _INT64,
    FieldDescriptor.TYPE_UINT64: _UINT64,
    FieldDescriptor.TYPE_FIXED64: _UINT64,
}


_ANY_SCALARS = {"stringValue": "string_value", "boolValue": "bool_value"}


def _any_value(value: Any, depth: int) -> dict[str, Any]:
    """An attribute value; the common single scalar shapes take a short path."""
    if isinstance(value, dict) and len(value) == 1:
        ((key, item),) = value.items()
        name = _ANY_SCALARS.get(key)
        if name is not None and type(item) is (str if name == "string_value" else bool):
            return {name: item}
        if key in ("intValue", "int_value"):
            try:
                return {"int_value": _integer(item, depth, _INT64)}
            except OtlpJsonError as exc:
                raise exc.within(key) from None
    return _message_fields(value, AnyValue.DESCRIPTOR, depth)


def _integer(value: Any, _depth: int, bounds: tuple[int, int]) -> int:
    if isinstance(value, bool):
        raise OtlpJsonError(f"expected an integer, got {_kind(value)}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    else:
        try:
            number = int(value) if isinstance(value, str) else None
        except ValueError:
            number = None
        if number is None:
            raise OtlpJsonError(f"expected an integer, got {_show(value)}")
    if not bounds[0] <= number <= bounds[1]:
        raise OtlpJsonError(f"{number} is out of range [{bounds[0]}, {bounds[1]}]")
    return number


_SPECIAL_FLOATS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _float(value: Any, _depth: int) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        if value in _SPECIAL_FLOATS:
            return _SPECIAL_FLOATS[value]
        try:
            return float(value)
        except ValueError:
            pass
    raise OtlpJsonError(f"expected a number, got {_show(value)}")


def _string(value: Any, _depth: int) -> str:
    if isinstance(value, str):
        return value
    raise OtlpJsonError(f"expected a string, got {_kind(value)}")


def _bool(value: Any, _depth: int) -> bool:
    if isinstance(value, bool):
        return value
    raise OtlpJsonError(f"expected true or false, got {_show(value)}")


def _enum(value: Any, _depth: int, names: dict[str, int]) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        if not _INT32[0] <= value <= _INT32[1]:
            raise OtlpJsonError(f"{value} is out of range for an enum")
        return value
    if isinstance(value, str) and value in names:
        return names[value]  # tolerated, though OTLP asks for integers
    raise OtlpJsonError(f"expected an enum integer, got {_show(value)}")


def _hex_id(value: Any, _depth: int, size: int) -> bytes:
    if not isinstance(value, str):
        raise OtlpJsonError(f"expected a hex string, got {_kind(value)}")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise OtlpJsonError(f"{value[:40]!r} is not a hex string") from None
    if raw and len(raw) != size:
        raise OtlpJsonError(f"expected {size * 2} hex digits, got {len(value)}: {value[:40]!r}")
    return raw


def _base64(value: Any, _depth: int) -> bytes:
    if not isinstance(value, str):
        raise OtlpJsonError(f"expected a base64 string, got {_kind(value)}")
    text = value.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except binascii.Error:
        raise OtlpJsonError(f"{value[:40]!r} is not base64") from None


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "a number"
    )


def _show(value: object) -> str:
    if isinstance(value, dict | list):
        return _kind(value)
    return repr(value)[:40]


# -- writing ------------------------------------------------------------------------------------


def _to_dict(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, use_integers_for_enums=True)


_ID_KEYS = ("traceId", "spanId", "parentSpanId")


def _ids_to_hex(value: Any) -> None:
    """Rewrite the base64 ids of every span, link, log record and exemplar below ``value``."""
    if isinstance(value, list):
        for item in value:
            _ids_to_hex(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key in _ID_KEYS and isinstance(item, str):
                value[key] = binascii.a2b_base64(item).hex()
            elif isinstance(item, dict | list):
                _ids_to_hex(item)


def _dump(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
