"""Copies allow-listed baggage entries onto every span at start."""

from __future__ import annotations

from collections.abc import Iterable

from opentelemetry import baggage
from opentelemetry.context import Context
from opentelemetry.processor.baggage import BaggageSpanProcessor
from opentelemetry.trace import Span

from spanledger.semconv import TAGS_TRUNCATED


class TagSpanProcessor(BaggageSpanProcessor):
    """A ``BaggageSpanProcessor`` limited to the tag keys, with a cap on value length.

    A value longer than ``value_max_length`` characters is cut to that length on the span, and the
    span lists the keys so cut in ``spanledger.tags.truncated``. The baggage itself is left as it
    is. ``enabled`` turns the copying off without removing the processor from its provider.
    """

    def __init__(self, tag_keys: Iterable[str], value_max_length: int) -> None:
        self.tag_keys = frozenset(tag_keys)
        self.value_max_length = value_max_length
        self.enabled = True
        super().__init__(self._is_tag_key)

    def _is_tag_key(self, key: str) -> bool:
        return key in self.tag_keys

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if not self.enabled:
            return
        context = parent_context
        truncated: list[str] = []
        for key, value in baggage.get_all(parent_context).items():
            if key in self.tag_keys and len(text := str(value)) > self.value_max_length:
                context = baggage.set_baggage(key, text[: self.value_max_length], context)
                truncated.append(key)
        super().on_start(span, context)
        if truncated:
            span.set_attribute(TAGS_TRUNCATED, sorted(truncated))
