"""Opt-in capture of message content, per OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from opentelemetry.trace import Span

from .environment import EnvSetting

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
