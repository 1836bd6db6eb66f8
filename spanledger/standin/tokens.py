"""Deterministic default figures, so tests can compute the exact token counts to expect.

The rules:

- ``estimate_tokens(text) = max(1, ceil(len(text) / 4))`` (characters, not bytes).
- Input tokens of a chat request: ``estimate_tokens`` of all prompt text concatenated. Prompt
  text is every string under the request's ``messages`` (OpenAI chat, Anthropic), ``system``
  (Anthropic), ``input`` and ``instructions`` (OpenAI responses) and ``prompt`` (legacy
  completions): a string counts whole, a list of parts counts each part's ``text`` or
  ``content``.
- Embeddings: the sum of ``estimate_tokens`` over the inputs (a token-id array counts its
  length).
- Output tokens: ``estimate_tokens(reply text)`` plus the reasoning tokens, plus
  ``estimate_tokens(name + arguments JSON)`` per tool call. The reply text is
  :data:`DEFAULT_TEXT`, repeated with spaces as needed to give every requested chunk a
  character. Reasoning given as an integer ``n`` is thinking text of ``4 * n`` characters
  (so exactly ``n`` tokens); given as text, it counts ``estimate_tokens(text)``.
- Cached and cache-write tokens, and ``cost``, are zero or absent unless a scenario sets them.
- Structured output (a ``json_schema`` response format) replaces the reply text with compact
  JSON built from the schema (:mod:`spanledger.standin.structured`); it counts like any text.
- Embedding vectors have the request's ``dimensions`` (default 8) and depend only on the input.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

DEFAULT_TEXT = "Hello from the spanledger stand-in."
"""The default reply (35 characters, 9 tokens)."""

DEFAULT_CHUNKS = 4
"""Content deltas per streamed reply when a scenario does not say."""

_THINKING_UNIT = "Hmm."
_PROMPT_KEYS = ("instructions", "system", "messages", "input", "prompt")


def estimate_tokens(text: str) -> int:
    """The stand-in's token count for ``text``: a quarter of its characters, rounded up, >= 1."""
    return max(1, math.ceil(len(text) / 4))


def prompt_text(body: dict[str, Any]) -> str:
    """All prompt text of a chat-style request body, concatenated in request order."""
    return "".join(strings(body.get(key)) for key in _PROMPT_KEYS)


def prompt_tokens(body: dict[str, Any]) -> int:
    """Default input tokens of a chat, responses or messages request."""
    return estimate_tokens(prompt_text(body))


def embedding_inputs(body: dict[str, Any]) -> list[Any]:
    """The inputs of an embeddings request as a list (a single input becomes one item)."""
    value = body.get("input")
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        return [value]
    return list(value) if isinstance(value, list) else []


def embedding_tokens(inputs: list[Any]) -> int:
    """Default prompt tokens of an embeddings request."""
    total = 0
    for item in inputs:
        total += len(item) if isinstance(item, list) else estimate_tokens(str(item))
    return total


def reply_text(text: str | None, chunks: int) -> str:
    """The reply: the scenario's text, or the default one long enough for ``chunks`` deltas."""
    if text is not None:
        return text
    reply = DEFAULT_TEXT
    while len(reply) < chunks:
        reply = f"{reply} {DEFAULT_TEXT}"
    return reply


def thinking_text(reasoning: int | str | None) -> str:
    """Thinking text for a scenario's ``reasoning`` ("" when there is none)."""
    if reasoning is None:
        return ""
    if isinstance(reasoning, str):
        return reasoning
    return _THINKING_UNIT * reasoning


def reasoning_tokens(reasoning: int | str | None) -> int:
    """Reasoning tokens for a scenario's ``reasoning``."""
    if reasoning is None:
        return 0
    if isinstance(reasoning, str):
        return estimate_tokens(reasoning) if reasoning else 0
    return reasoning


def split(text: str, chunks: int) -> list[str]:
    """``text`` cut into ``chunks`` non-empty pieces of near-equal size (fewer if it is short)."""
    count = max(1, min(chunks, len(text)))
    size = len(text)
    return [text[i * size // count : (i + 1) * size // count] for i in range(count)]


def merge(defaults: dict[str, Any], override: dict[str, Any] | None) -> dict[str, Any]:
    """``defaults`` with ``override`` merged in, nested objects merged key by key."""
    if not override:
        return defaults
    merged = dict(defaults)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def strings(value: Any) -> str:
    """Every string under ``value``: a string whole, lists item by item, and in an object the
    ``text``, ``content`` and ``parts`` (Gemini) fields."""
    return "".join(_iter_strings(value))


def _iter_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _iter_strings(item)
    elif isinstance(value, dict):
        for key in ("text", "content", "parts"):
            if key in value:
                yield from _iter_strings(value[key])
