"""Structured output: a JSON value that satisfies a (simple) JSON schema.

Enough for the SDKs' ``.parse`` helpers with Pydantic models: objects with every property,
``$ref``/``$defs``, ``anyOf``/``oneOf``/``allOf``, ``enum``/``const``, arrays with one item
(or ``minItems``), strings, numbers, integers, booleans and null, within numeric bounds.
"""

from __future__ import annotations

import json
from typing import Any

_MAX_DEPTH = 12


def example_json(schema: dict[str, Any]) -> str:
    """Compact JSON text of a value valid for ``schema``."""
    return json.dumps(example_value(schema), separators=(",", ":"))


def example_value(schema: Any, root: dict[str, Any] | None = None, depth: int = 0) -> Any:
    """A deterministic value that validates against ``schema`` (``root`` resolves ``$ref``)."""
    if not isinstance(schema, dict):
        return None
    root = schema if root is None else root
    if depth > _MAX_DEPTH:
        return None
    if "$ref" in schema:
        return example_value(_resolve(root, schema["$ref"]), root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    for key in ("anyOf", "oneOf"):
        options = [o for o in schema.get(key, []) if isinstance(o, dict)]
        if options:
            preferred = [o for o in options if o.get("type") != "null"] or options
            return example_value(preferred[0], root, depth + 1)
    if schema.get("allOf"):
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            resolved = _resolve(root, part["$ref"]) if "$ref" in part else part
            merged.update(resolved)
        return example_value(merged, root, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "string"
    return _BY_TYPE.get(kind, _string)(schema, root, depth)


def _object(schema: dict[str, Any], root: dict[str, Any], depth: int) -> dict[str, Any]:
    properties = schema.get("properties") or {}
    return {
        name: example_value(sub, root, depth + 1)
        for name, sub in properties.items()
        if isinstance(name, str)
    }


def _array(schema: dict[str, Any], root: dict[str, Any], depth: int) -> list[Any]:
    count = max(1, int(schema.get("minItems", 1)))
    if "maxItems" in schema:
        count = min(count, int(schema["maxItems"]))
    item = example_value(schema.get("items", {"type": "string"}), root, depth + 1)
    return [item] * count


def _string(schema: dict[str, Any], root: dict[str, Any], depth: int) -> str:
    value = {"date-time": "2026-01-01T00:00:00Z", "date": "2026-01-01", "email": "a@b.example"}
    text = value.get(schema.get("format", ""), "example")
    minimum = int(schema.get("minLength", 0))
    if len(text) < minimum:
        text = text + "x" * (minimum - len(text))
    if "maxLength" in schema:
        text = text[: int(schema["maxLength"])]
    return text


def _number(schema: dict[str, Any], root: dict[str, Any], depth: int) -> float:
    return float(_bounded(schema, 1))


def _integer(schema: dict[str, Any], root: dict[str, Any], depth: int) -> int:
    return int(_bounded(schema, 1))


def _bounded(schema: dict[str, Any], preferred: float) -> float:
    value = preferred
    if "minimum" in schema:
        value = max(value, schema["minimum"])
    if "exclusiveMinimum" in schema:
        value = max(value, schema["exclusiveMinimum"] + 1)
    if "maximum" in schema:
        value = min(value, schema["maximum"])
    if "exclusiveMaximum" in schema:
        value = min(value, schema["exclusiveMaximum"] - 1)
    return value


_BY_TYPE = {
    "object": _object,
    "array": _array,
    "string": _string,
    "number": _number,
    "integer": _integer,
    "boolean": lambda schema, root, depth: True,
    "null": lambda schema, root, depth: None,
}


def _resolve(root: dict[str, Any], ref: str) -> dict[str, Any]:
    if not ref.startswith("#"):
        return {}
    node: Any = root
    for part in ref.lstrip("#").strip("/").split("/"):
        key = part.replace("~1", "/").replace("~0", "~")
        if not key:
            continue
        if not isinstance(node, dict) or key not in node:
            return {}
        node = node[key]
    return node if isinstance(node, dict) else {}
