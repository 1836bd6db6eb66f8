"""Token usage and response facts of the Messages API, from a Message or from stream events.

Everything here is pure: it reads a Message (a model of the SDK or a decoded JSON body) or the
events of a stream, and gives a :class:`MessageFacts`. Fields that are missing or of an unexpected
type are left out rather than guessed.

Anthropic reports ``input_tokens`` without the cached part, so the GenAI total is
``input_tokens + cache_read_input_tokens + cache_creation_input_tokens``. A stream reports usage
in ``message_start`` and again, cumulatively, in ``message_delta``; the last value of each
field wins.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from spanledger.instrumentation.genai import InferenceUsage
from spanledger.instrumentation.genai.body_reader import BodyOutcome
from spanledger.instrumentation.genai.fields import count as _count
from spanledger.instrumentation.genai.fields import is_mapping_type, is_model_type, read_field

log = logging.getLogger(__name__)


get = read_field
"""``obj[name]`` for a mapping, ``obj.name`` for a model, ``None`` when absent."""


class _Attributes:
    """``get`` over the attributes of an object that is neither a mapping nor a model."""

    __slots__ = ("_obj",)

    def __init__(self, obj: object) -> None:
        self._obj = obj

    def get(self, name: str) -> object:
        return getattr(self._obj, name, None)


_NO_FIELDS: Mapping[str, object] = {}


def fields_of(obj: object) -> Mapping[str, object]:
    """Something whose ``get(name)`` is :func:`get` of ``obj``: for reading several fields.

    A model's fields (its extra fields included) are handed out as they are, so that each read
    after this one is a dict lookup.
    """
    if obj is None:
        return _NO_FIELDS
    kind = type(obj)
    if kind is dict:
        return obj  # type: ignore[return-value]
    if is_mapping_type(kind):
        return obj  # type: ignore[return-value]
    fields = getattr(obj, "__dict__", None)
    if type(fields) is dict and is_model_type(kind):
        extra = getattr(obj, "__pydantic_extra__", None)
        return {**fields, **extra} if extra else fields
    return _Attributes(obj)  # type: ignore[return-value]


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass
class TokenUsage:
    """The token counts as Anthropic reports them (its ``input_tokens`` excludes the cache)."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_creation_5m_input_tokens: int | None = None
    cache_creation_1h_input_tokens: int | None = None
    thinking_output_tokens: int | None = None
    compaction_input_tokens: int | None = None
    """Input of the compaction iterations (beta), which the top-level fields leave out."""
    compaction_output_tokens: int | None = None

    @property
    def total_input_tokens(self) -> int | None:
        """All input tokens, cached ones included, or ``None`` when the base count is unknown."""
        if self.input_tokens is None:
            return None
        return (
            self.input_tokens
            + (self.cache_read_input_tokens or 0)
            + (self.cache_creation_input_tokens or 0)
        )

    def update(self, usage: object) -> None:
        """Overwrites each field that ``usage`` (a ``usage`` object or mapping) reports."""
        if usage is None:
            return
        fields = fields_of(usage)
        if (count := _count(fields.get("input_tokens"))) is not None:
            self.input_tokens = count
        if (count := _count(fields.get("output_tokens"))) is not None:
            self.output_tokens = count
        if (count := _count(fields.get("cache_read_input_tokens"))) is not None:
            self.cache_read_input_tokens = count
        if (count := _count(fields.get("cache_creation_input_tokens"))) is not None:
            self.cache_creation_input_tokens = count
        breakdown = fields.get("cache_creation")
        if breakdown is not None:
            if (five := _count(get(breakdown, "ephemeral_5m_input_tokens"))) is not None:
                self.cache_creation_5m_input_tokens = five
            if (hour := _count(get(breakdown, "ephemeral_1h_input_tokens"))) is not None:
                self.cache_creation_1h_input_tokens = hour
        thinking = _count(get(fields.get("output_tokens_details"), "thinking_tokens"))
        if thinking is not None:
            self.thinking_output_tokens = thinking
        iterations = fields.get("iterations")
        if isinstance(iterations, list | tuple):
            compactions = [i for i in iterations if get(i, "type") == "compaction"]
            if compactions:
                self.compaction_input_tokens = sum(
                    (_count(get(i, "input_tokens")) or 0)
                    + (_count(get(i, "cache_read_input_tokens")) or 0)
                    + (_count(get(i, "cache_creation_input_tokens")) or 0)
                    for i in compactions
                )
                self.compaction_output_tokens = sum(
                    _count(get(i, "output_tokens")) or 0 for i in compactions
                )


@dataclass
class MessageFacts:
    """What a span records about one Message: identity, why it stopped, and its usage."""

    response_id: str | None = None
    response_model: str | None = None
    stop_reason: str | None = None
    usage: TokenUsage = field(default_factory=TokenUsage)
    output_text: list[str] = field(default_factory=list)
    """The text blocks of the answer, kept only when content capture is on."""
    output_final: bool = True
    """Whether ``usage.output_tokens`` is the final count: a stream's ``message_start`` holds a
    count so far, which only a ``message_delta`` makes final."""
    content_chunks: int | None = None
    """Content deltas of a stream that arrived (None for a whole Message)."""

    def update_from_message(self, message: object, *, keep_text: bool = False) -> None:
        """Reads a whole Message, or the ``message`` of a ``message_start`` event."""
        fields = fields_of(message)
        self.response_id = _text(fields.get("id")) or self.response_id
        self.response_model = _text(fields.get("model")) or self.response_model
        self.stop_reason = _text(fields.get("stop_reason")) or self.stop_reason
        self.usage.update(fields.get("usage"))
        if keep_text:
            content = fields.get("content")
            if isinstance(content, list | tuple):
                for block in content:
                    if get(block, "type") == "text" and (text := _text(get(block, "text"))):
                        self.output_text.append(text)


def to_inference_usage(facts: MessageFacts) -> InferenceUsage:
    """The shared usage record for a Message: input includes cache reads and cache writes.

    The output count of a stream cut before its ``message_delta`` is not final: it is left out
    (the instrumentation records an estimate apart from it).
    """
    usage = facts.usage
    # Positional, in field order: calling a class with keywords builds a dict of them.
    return InferenceUsage(
        usage.total_input_tokens,
        usage.output_tokens if facts.output_final else None,
        usage.cache_read_input_tokens,
        usage.cache_creation_input_tokens,
        usage.thinking_output_tokens,
        facts.response_model,
        facts.response_id,
        [facts.stop_reason] if facts.stop_reason else [],
    )


def facts_from_message(message: object, *, keep_text: bool = False) -> MessageFacts:
    """The facts of a whole Message, a model of the SDK or a decoded JSON body."""
    facts = MessageFacts()
    facts.update_from_message(message, keep_text=keep_text)
    return facts


CONTENT_DELTA = b"event: content_block_delta"
"""The line naming a content delta event, as the Messages API writes it."""


class StreamAccumulator:
    """Builds the :class:`MessageFacts` of a streamed Message from its events, one at a time.

    ``completed`` turns true on ``message_stop``; ``error_type`` is the type of an ``error`` event.
    It is the ``StreamEvents`` of the kit's body reader: content deltas are counted in the raw
    bytes (:attr:`content_marker`) and only the events that carry usage are decoded.
    """

    content_marker = CONTENT_DELTA

    def __init__(self, *, keep_text: bool = False) -> None:
        self.facts = MessageFacts(content_chunks=0)
        self.completed = False
        self.error_type: str | None = None
        self.saw_message_start = False
        self._keep_text = keep_text
        self._text: list[str] = []

    def add(self, event_type: str | None, data: object) -> None:
        """Takes one event: its type and its decoded data."""
        kind = event_type or _text(get(data, "type"))
        if kind == "message_start":
            self.saw_message_start = True
            self.facts.update_from_message(get(data, "message"))
            self.facts.output_final = False
        elif kind == "message_delta":
            self.facts.stop_reason = (
                _text(get(get(data, "delta"), "stop_reason")) or self.facts.stop_reason
            )
            usage = get(data, "usage")
            self.facts.usage.update(usage)
            if _count(get(usage, "output_tokens")) is not None:
                self.facts.output_final = True
        elif kind == "message_stop":
            self.completed = True
        elif kind == "error":
            self.error_type = _text(get(get(data, "error"), "type")) or "error"
        elif kind == "content_block_delta" and self._keep_text:
            delta = get(data, "delta")
            if get(delta, "type") == "text_delta" and (text := _text(get(delta, "text"))):
                self._text.append(text)
        if self._keep_text and kind in ("message_stop", "error"):
            self.flush_text()

    @property
    def wanted_events(self) -> frozenset[str]:
        """The types of the server-sent events that :meth:`add_sse` reads; it skips the others."""
        return _TEXT_EVENTS if self._keep_text else _RELEVANT_EVENTS

    def add_sse(self, event_type: str | None, data: str) -> None:
        """Takes one server-sent event; decodes its data only for the events that matter."""
        if event_type not in self.wanted_events:
            return
        try:
            decoded = json.loads(data)
        except ValueError:
            log.debug("Skipping a %s event whose data is not JSON", event_type)
            return
        self.add(event_type, decoded)

    def add_frame(self, event_type: str | None, event: object) -> None:
        """Takes one decoded event of an AWS event stream (``AnthropicBedrock``)."""
        if (event_type or get(event, "type")) == "content_block_delta":
            self.facts.content_chunks += 1  # type: ignore[operator]
        self.add(event_type, event)

    def count_content(self, count: int) -> None:
        """Adds content deltas counted in the raw bytes of a server-sent event stream."""
        self.facts.content_chunks += count  # type: ignore[operator]

    def flush_text(self) -> None:
        """Moves the streamed text gathered so far into the facts, as one block."""
        if self._text:
            self.facts.output_text.append("".join(self._text))
            self._text = []


_RELEVANT_EVENTS = frozenset({"message_start", "message_delta", "message_stop", "error"})
_TEXT_EVENTS = _RELEVANT_EVENTS | {"content_block_delta"}


@dataclass(frozen=True, slots=True)
class MessageOutcome:
    """How reading a Messages response ended, and what it told."""

    facts: MessageFacts | None
    streamed: bool
    """Whether the body was an event stream."""
    completed: bool
    """Whether the whole Message arrived: ``message_stop`` for a stream, the end of a JSON body."""
    error: BaseException | None = None
    """The error that broke off reading, if any."""
    error_type: str | None = None
    """The type of an ``error`` event that the stream carried, if any."""


def message_outcome(
    body: BodyOutcome, stream: StreamAccumulator, *, keep_text: bool = False
) -> MessageOutcome:
    """What a body read to its end (or cut off) tells, from the events ``stream`` took or the
    JSON Message of a whole body."""
    if body.streamed:
        stream.flush_text()
        seen = stream.saw_message_start or stream.completed
        return MessageOutcome(
            stream.facts if seen else None, True, stream.completed, body.error, stream.error_type
        )
    facts = None if body.whole is None else facts_from_message(body.whole, keep_text=keep_text)
    return MessageOutcome(facts, False, body.completed, body.error)
