"""``TagsInstrumentor``: installs the tag pipeline (entry point ``spanledger_tags``)."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Collection
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from spanledger.instrumentation.baggage.config import TagConfig, set_active_config
from spanledger.instrumentation.baggage.outbound import BaggagePolicy, OutboundGuards
from spanledger.instrumentation.baggage.process import attach_env_context
from spanledger.instrumentation.baggage.propagator import GuardedPropagator
from spanledger.instrumentation.baggage.span_processor import TagSpanProcessor

__all__ = ["TagsInstrumentor"]

_logger = logging.getLogger(__name__)


class TagsInstrumentor(BaseInstrumentor):
    """Installs the tag pipeline. Keyword arguments of ``instrument``:

    - ``tracer_provider``: the SDK provider to add ``TagSpanProcessor`` to (default: global);
    - ``config``: a ``TagConfig`` (default: ``TagConfig.from_env()``);
    - ``attach_env``: start inside ``TRACEPARENT``/``BAGGAGE`` from the environment (default true).
    """

    # BaseInstrumentor makes each subclass a singleton and runs ``__init__`` on every
    # construction, so the state lives on the class.
    _processors: weakref.WeakKeyDictionary[Any, TagSpanProcessor] = weakref.WeakKeyDictionary()
    _guards = OutboundGuards()
    _propagator: GuardedPropagator | None = None
    processor: TagSpanProcessor | None = None
    """The processor added by the last ``instrument`` call, if the provider accepted one."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return ()

    def _instrument(self, **kwargs: Any) -> None:
        config = kwargs.get("config") or TagConfig.from_env()
        set_active_config(config)
        provider = kwargs.get("tracer_provider") or trace.get_tracer_provider()
        self.processor = self._add_processor(provider, config)

        self._propagator = GuardedPropagator(propagate.get_global_textmap(), config)
        propagate.set_global_textmap(self._propagator)
        self._guards.install(BaggagePolicy(config.baggage_hosts))

        if kwargs.get("attach_env", True) and attach_env_context():
            _logger.debug("Started inside the trace and tags given by the environment")

    def _uninstrument(self, **kwargs: Any) -> None:
        self._guards.uninstall()
        if self._propagator is not None and propagate.get_global_textmap() is self._propagator:
            propagate.set_global_textmap(self._propagator.inner)
        self._propagator = None
        for processor in self._processors.values():
            processor.enabled = False
        self.processor = None
        set_active_config(None)

    def add_tracer_provider(self, provider: Any = None) -> TagSpanProcessor | None:
        """Copies tags onto the spans of ``provider`` (default: global) too, once instrumented.

        For a provider created after ``instrument`` ran, as when an application sets its own
        provider under ``opentelemetry-instrument``. Does nothing before ``instrument``.
        """
        if not self.is_instrumented_by_opentelemetry or self._propagator is None:
            return None
        provider = provider or trace.get_tracer_provider()
        existing = self._processors.get(provider)
        if existing is not None and existing.enabled:
            return existing
        return self._add_processor(provider, self._propagator.config)

    def _add_processor(self, provider: Any, config: TagConfig) -> TagSpanProcessor | None:
        if not hasattr(provider, "add_span_processor"):
            _logger.warning(
                "The tracer provider %r accepts no span processor: spans will not carry tags. "
                "Configure the OpenTelemetry SDK first, then call spanledger.install_tags().",
                provider,
            )
            return None
        processor = self._processors.get(provider)
        if processor is None:
            processor = TagSpanProcessor(config.tag_keys, config.value_max_length)
            provider.add_span_processor(processor)
            self._processors[provider] = processor
        else:
            processor.tag_keys = frozenset(config.tag_keys)
            processor.value_max_length = config.value_max_length
            processor.enabled = True
        return processor
