"""Pieces the OpenAI endpoints share: reply text, tool calls, usage totals, stream errors."""

from __future__ import annotations

import json
from typing import Any

from spanledger.standin import tokens
from spanledger.standin.replies import Call, sse
from spanledger.standin.scenario import Scenario
from spanledger.standin.structured import example_json

FINGERPRINT = "fp_standin"
STREAM_ERROR = "The server had an error while processing your request. Sorry about that!"


def reply_text(s: Scenario, schema_format: dict[str, Any] | None) -> str:
    """The scenario's text, else JSON for a ``json_schema``/``json_object`` format, else default."""
    if s.text is None and schema_format is not None:
        if schema_format.get("type") == "json_schema":
            schema = schema_format.get("schema")
            if schema is None and isinstance(schema_format.get("json_schema"), dict):
                schema = schema_format["json_schema"].get("schema")
            return example_json(schema or {})
        if schema_format.get("type") == "json_object":
            return json.dumps({"reply": tokens.DEFAULT_TEXT})
    return tokens.reply_text(s.text, s.chunks or tokens.DEFAULT_CHUNKS)


def tool_calls(call: Call, s: Scenario) -> list[tuple[str, str, str]]:
    """``(call_id, name, arguments JSON)`` for each tool call the scenario asks for."""
    return [
        (f"call_standin{call.number:06d}_{i}", c["name"], json.dumps(c.get("arguments", {})))
        for i, c in enumerate(s.tool_calls or [])
    ]


def output_tokens(text: str, calls: list[tuple[str, str, str]], s: Scenario) -> int:
    """Default output tokens: visible text, tool calls (name + arguments) and reasoning."""
    visible = tokens.estimate_tokens(text) if text or not calls else 0
    visible += sum(tokens.estimate_tokens(name + args) for _, name, args in calls)
    return visible + tokens.reasoning_tokens(s.reasoning)


def finish_usage(usage: dict[str, Any], s: Scenario, total: tuple[str, str, str]) -> dict[str, Any]:
    """Recompute the total unless the scenario set it, and add the reported cost."""
    total_key, input_key, output_key = total
    if total_key not in (s.usage or {}):
        usage[total_key] = as_int(usage.get(input_key)) + as_int(usage.get(output_key))
    if s.cost is not None:
        usage["cost"] = s.cost
    return usage


def as_int(value: Any) -> int:
    """``value`` if it is an integer, else 0 (a scenario may set odd usage values on purpose)."""
    return value if isinstance(value, int) else 0


def data_error(sent: int, message: str | None) -> bytes:
    """A chat or completions stream's error: a ``data:`` line holding an ``error`` object."""
    error = {"message": message or STREAM_ERROR, "type": "server_error", "param": None}
    return sse({"error": {**error, "code": None}})


def response_error(sent: int, message: str | None) -> bytes:
    """A Responses stream's ``error`` event."""
    fields = {"code": "server_error", "message": message or STREAM_ERROR, "param": None}
    return sse({"type": "error", **fields, "sequence_number": sent}, "error")


def dict_or_none(value: Any) -> dict[str, Any] | None:
    """``value`` if it is a JSON object, else ``None``."""
    return value if isinstance(value, dict) else None
