"""The global propagator wrapper that enforces where baggage goes and what comes in.

Every injection of trace context into an outgoing request, whichever library makes it, goes
through the global propagator (``opentelemetry.propagate.inject``). The outbound guards mark a
request whose host may not receive baggage (``withholding_baggage``); injections made while the
mark is set carry the trace context but no baggage.

Extraction from an inbound request applies the inbound policy: under ``drop``, tag keys that the
caller sent are removed from the baggage. Either way the tags that arrived are recorded in the
context, where ``inbound_tags`` finds them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar

from opentelemetry import baggage
from opentelemetry.context import Context, create_key, get_value, set_value
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)

from spanledger.instrumentation.baggage.config import InboundPolicy, TagConfig

_WITHHOLD_BAGGAGE: ContextVar[bool] = ContextVar("spanledger_withhold_baggage", default=False)
_INBOUND_TAGS_KEY = create_key("spanledger-inbound-tags")


@contextmanager
def withholding_baggage(withhold: bool = True) -> Iterator[None]:
    """While active, injections through ``GuardedPropagator`` leave baggage out."""
    token = _WITHHOLD_BAGGAGE.set(withhold)
    try:
        yield
    finally:
        _WITHHOLD_BAGGAGE.reset(token)


def baggage_withheld() -> bool:
    """Whether the current request is marked as one that may not carry baggage."""
    return _WITHHOLD_BAGGAGE.get()


def inbound_tags(context: Context | None = None) -> dict[str, str]:
    """The tags that arrived with the inbound request being served, kept or dropped alike."""
    value = get_value(_INBOUND_TAGS_KEY, context)
    return dict(value) if isinstance(value, Mapping) else {}


class GuardedPropagator(TextMapPropagator):
    """Wraps the application's propagator with the outbound and inbound baggage rules."""

    def __init__(self, inner: TextMapPropagator, config: TagConfig) -> None:
        self.inner = inner
        self.config = config

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        if _WITHHOLD_BAGGAGE.get():
            context = baggage.clear(context)
        self.inner.inject(carrier, context=context, setter=setter)

    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = default_getter,
    ) -> Context:
        before = baggage.get_all(context)
        extracted = self.inner.extract(carrier, context=context, getter=getter)
        arrived = {
            key: str(value)
            for key, value in baggage.get_all(extracted).items()
            if key in self.config.tag_keys and before.get(key) != value
        }
        if not arrived:
            return extracted
        if self.config.inbound is InboundPolicy.DROP:
            for key in arrived:
                extracted = (
                    baggage.set_baggage(key, before[key], extracted)
                    if key in before
                    else baggage.remove_baggage(key, extracted)
                )
        return set_value(_INBOUND_TAGS_KEY, arrived, extracted)

    @property
    def fields(self) -> set[str]:
        return set(self.inner.fields)
