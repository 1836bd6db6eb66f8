"""Cost tags through W3C baggage: span processor, propagation guards and process helpers.

``TagsInstrumentor`` (entry point ``spanledger_tags``) installs, on the global or a given
tracer provider:

- ``TagSpanProcessor``: copies the baggage keys named in ``SPANLEDGER_TAG_KEYS`` onto every span;
- ``GuardedPropagator`` around the global propagator: inbound policy (``SPANLEDGER_INBOUND_TAGS``)
  and no baggage on requests that the outbound guards withhold it from;
- the outbound guards on httpx2, httpx, requests, aiohttp, urllib3 and urllib
  (``SPANLEDGER_BAGGAGE_HOSTS``);
- the trace and tags of ``TRACEPARENT``/``BAGGAGE`` in the environment, when a parent set them.

Under ``opentelemetry-instrument`` this runs after the distro configured the tracer provider.
Applications that configure OpenTelemetry in code call ``spanledger.install_tags()``.
"""

from typing import Any

__all__ = ["TagsInstrumentor"]


def __getattr__(name: str) -> Any:
    # The instrumentor pulls in the instrumentation framework; ``import spanledger`` stays light.
    if name == "TagsInstrumentor":
        from spanledger.instrumentation.baggage.instrumentor import TagsInstrumentor

        return TagsInstrumentor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
