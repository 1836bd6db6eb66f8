"""What the stand-in should answer to one request: figures, text, failures and timing."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

SCENARIO_HEADER = "x-standin-scenario"
"""Request header carrying a JSON object of :class:`Scenario` fields for that request only."""


class ScenarioError(ValueError):
    """A scenario that cannot be understood; the message names the offending field."""


@dataclass
class Scenario:
    """Instructions for answering a request. Every field is optional; ``None`` means default.

    - ``usage``: provider-native usage fields merged over the defaults, e.g.
      ``{"prompt_tokens": 1200, "prompt_tokens_details": {"cached_tokens": 1000}}`` (OpenAI) or
      ``{"input_tokens": 10, "cache_read_input_tokens": 2000}`` (Anthropic). Totals the override
      leaves out (``total_tokens``) are recomputed from the merged figures.
    - ``model``: the response's model; by default the request's model is echoed.
    - ``text``: the assistant's reply (default: see :mod:`spanledger.standin.tokens`).
    - ``chunks``: number of content deltas when streaming (default 4, at most one per character).
    - ``reasoning``: reasoning tokens (int) or thinking text (str). OpenAI reports them as
      ``reasoning_tokens``; Anthropic answers with a thinking block. Counted in the output tokens.
    - ``error``: answer with this HTTP status and the provider's error body instead.
      ``retry_after`` (seconds) adds a ``retry-after`` header; ``error_message`` sets the message.
    - ``drop_after``: when streaming, close the connection abruptly after this many SSE events;
      for a JSON answer, after this many bytes of its body (its ``content-length`` is whole).
    - ``stream_error_after``: when streaming, after this many SSE events send the provider's
      in-stream error instead of the rest (Anthropic ``error`` event with ``overloaded_error``,
      OpenAI ``{"error": ...}`` data or a Responses ``error`` event) and end the stream.
    - ``response_headers``: extra response headers, e.g. ``{"x-litellm-response-cost": "0.01"}``.
    - ``cost``: OpenRouter-style ``usage.cost`` (USD) added to the usage object.
    - ``delay``: seconds to wait before answering; ``chunk_delay``: seconds between SSE events.
    - ``tool_calls``: ``[{"name": ..., "arguments": {...}}]`` answered as tool calls / tool_use.
    - ``repeat``: how many requests a *queued* scenario answers (default 1). Ignored in headers.
    """

    usage: dict[str, Any] | None = None
    model: str | None = None
    text: str | None = None
    chunks: int | None = None
    reasoning: int | str | None = None
    error: int | None = None
    retry_after: float | None = None
    error_message: str | None = None
    drop_after: int | None = None
    stream_error_after: int | None = None
    response_headers: dict[str, str] | None = None
    cost: float | None = None
    delay: float | None = None
    chunk_delay: float | None = None
    tool_calls: list[dict[str, Any]] | None = None
    repeat: int = 1

    def __post_init__(self) -> None:
        _check(self)

    @classmethod
    def from_dict(cls, data: Any) -> Scenario:
        """Build a scenario from decoded JSON, rejecting unknown fields and wrong types."""
        if not isinstance(data, dict):
            raise ScenarioError(f"a scenario must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ScenarioError(
                f"unknown scenario field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        return cls(**data)

    @classmethod
    def from_json(cls, text: str | bytes) -> Scenario:
        """Parse one scenario from JSON text (e.g. the ``x-standin-scenario`` header)."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ScenarioError(f"scenario is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        """The fields that differ from the defaults, ready for JSON."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != f.default
        }

    def to_header(self) -> dict[str, str]:
        """``extra_headers`` for an SDK call that should be answered with this scenario."""
        return {SCENARIO_HEADER: json.dumps(self.to_dict())}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check(s: Scenario) -> None:
    problems: list[str] = []
    if s.usage is not None and not isinstance(s.usage, dict):
        problems.append("usage must be an object of provider usage fields")
    if s.model is not None and not isinstance(s.model, str):
        problems.append("model must be a string")
    if s.text is not None and not isinstance(s.text, str):
        problems.append("text must be a string")
    if s.chunks is not None and not (_is_count(s.chunks) and s.chunks >= 1):
        problems.append("chunks must be an integer >= 1")
    if s.reasoning is not None and not (isinstance(s.reasoning, str) or _is_count(s.reasoning)):
        problems.append("reasoning must be a token count (integer >= 0) or thinking text")
    if s.error is not None and not (
        isinstance(s.error, int) and not isinstance(s.error, bool) and 400 <= s.error <= 599
    ):
        problems.append("error must be an HTTP status between 400 and 599")
    if s.retry_after is not None and not (_is_number(s.retry_after) and s.retry_after >= 0):
        problems.append("retry_after must be a number of seconds >= 0")
    if s.error_message is not None and not isinstance(s.error_message, str):
        problems.append("error_message must be a string")
    for name in ("drop_after", "stream_error_after"):
        if getattr(s, name) is not None and not _is_count(getattr(s, name)):
            problems.append(f"{name} must be an integer >= 0")
    if s.response_headers is not None and not (
        isinstance(s.response_headers, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in s.response_headers.items())
    ):
        problems.append("response_headers must map header names to string values")
    if s.cost is not None and not _is_number(s.cost):
        problems.append("cost must be a number (USD)")
    for name in ("delay", "chunk_delay"):
        value = getattr(s, name)
        if value is not None and not (_is_number(value) and 0 <= value <= 60):
            problems.append(f"{name} must be a number of seconds between 0 and 60")
    if s.tool_calls is not None and not (
        isinstance(s.tool_calls, list)
        and all(
            isinstance(c, dict)
            and isinstance(c.get("name"), str)
            and isinstance(c.get("arguments", {}), dict)
            for c in s.tool_calls
        )
    ):
        problems.append('tool_calls must be a list of {"name": str, "arguments": object}')
    if not (_is_count(s.repeat) and s.repeat >= 1):
        problems.append("repeat must be an integer >= 1")
    if problems:
        raise ScenarioError("; ".join(problems))
