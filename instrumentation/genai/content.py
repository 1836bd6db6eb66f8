"""Opt-in capture of message content, per OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from opentelemetry.trace import Span

from .environment import EnvSetting
from .fields import read_field

CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
GEN_AI_INPUT_MESSAGES = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES = "gen_ai.output.messages"

# "true" is the historical switch; the SPAN_* values are the current GenAI semconv modes.
_ENABLED_VALUES = frozenset({"true", "1", "yes", "span_only", "span_and_event"})


def _capture_asked(env: Mapping[str, str]) -> bool:
    return env.get(CAPTURE_CONTENT_ENV, "").strip().lower() in _ENABLED_VALUES


_CAPTURE_CONTENT = EnvSetting(_capture_asked, CAPTURE_CONTENT_ENV)


def capture_content_enabled() -> bool:
    """True only when the environment explicitly asks for message content on spans."""
    return _CAPTURE_CONTENT.get()


def _to_json(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


def record_input_messages(span: Span, messages: Any) -> None:
    """Write the request messages as JSON, if capture is enabled and the span records."""
    if messages is not None and span.is_recording() and capture_content_enabled():
        span.set_attribute(GEN_AI_INPUT_MESSAGES, _to_json(messages))


def record_output_messages(span: Span, messages: Any) -> None:
    """Write the response messages as JSON, if capture is enabled and the span records."""
    if messages is not None and span.is_recording() and capture_content_enabled():
        span.set_attribute(GEN_AI_OUTPUT_MESSAGES, _to_json(messages))


def message_text(content: Any) -> str:
    """A message's content as text: a string as it is, a list of parts as their ``text``."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list | tuple):
        return ""
    texts = [read_field(part, "text") for part in content]
    return "".join(text for text in texts if isinstance(text, str))


def text_message(role: Any, text: str, finish_reason: str | None = None) -> dict[str, Any]:
    """One message as the GenAI conventions write it: a role and one text part; a reply also
    has its finish reason."""
    message: dict[str, Any] = {
        "role": role if isinstance(role, str) and role else "user",
        "parts": [{"type": "text", "content": text}],
    }
    if role == "assistant":
        message["finish_reason"] = finish_reason
    return message


def text_messages(messages: Any) -> list[dict[str, Any]]:
    """Chat messages (mappings or SDK models with ``role`` and ``content``) as
    :func:`text_message`, for ``gen_ai.input.messages``."""
    return [
        text_message(read_field(message, "role"), message_text(read_field(message, "content")))
        for message in messages or ()
    ]


class ReplyText:
    """The text of a streamed reply, gathered piece by piece only when content capture is on,
    and written as ``gen_ai.output.messages`` when the reply ends."""

    __slots__ = ("pieces",)

    def __init__(self) -> None:
        self.pieces: list[str] | None = [] if capture_content_enabled() else None

    def add(self, text: Any) -> None:
        if self.pieces is not None and isinstance(text, str):
            self.pieces.append(text)

    def record(self, span: Span, finish_reason: str | None) -> None:
        if self.pieces is not None:
            message = text_message("assistant", "".join(self.pieces), finish_reason)
            record_output_messages(span, [message])
