"""spanledger: attribute LLM spend to customers, features, teams and environments."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from spanledger.errors import BudgetExceededError
from spanledger.instrumentation.baggage.process import carry, context_env
from spanledger.instrumentation.baggage.propagator import inbound_tags
from spanledger.tags import current_tags, tags
from spanledger.version import __version__

if TYPE_CHECKING:
    from spanledger.instrumentation.baggage.config import TagConfig

__all__ = [
    "BudgetExceededError",
    "__version__",
    "carry",
    "context_env",
    "current_tags",
    "inbound_tags",
    "install_tags",
    "tags",
]


def install_tags(
    tracer_provider: Any = None, *, config: TagConfig | None = None, attach_env: bool = True
) -> None:
    """Installs the tag pipeline for an application that configures OpenTelemetry in code.

    Call it once, after creating the SDK ``TracerProvider`` (pass it, or set it as the global
    provider first). It copies ``SPANLEDGER_TAG_KEYS`` baggage onto every span, keeps baggage
    off requests to hosts outside ``SPANLEDGER_BAGGAGE_HOSTS`` and off LLM SDK requests, applies
    ``SPANLEDGER_INBOUND_TAGS``, and makes threads and thread pools inherit the tags.
    ``opentelemetry-instrument`` does all of this by itself.

    ``config`` replaces the ``SPANLEDGER_*`` environment variables; ``attach_env=False`` ignores
    a ``TRACEPARENT``/``BAGGAGE`` handed down by a parent process. Once installed (by an earlier
    call or by ``opentelemetry-instrument``), a call only adds tag copying to ``tracer_provider``
    if it lacks it, so an application that sets its own provider under
    ``opentelemetry-instrument`` can still call it.
    """
    from opentelemetry.instrumentation.threading import ThreadingInstrumentor

    from spanledger.instrumentation.baggage import TagsInstrumentor

    threading_instrumentor = ThreadingInstrumentor()
    if not threading_instrumentor.is_instrumented_by_opentelemetry:
        threading_instrumentor.instrument()
    tags_instrumentor = TagsInstrumentor()
    if tags_instrumentor.is_instrumented_by_opentelemetry:
        tags_instrumentor.add_tracer_provider(tracer_provider)
    else:
        tags_instrumentor.instrument(
            tracer_provider=tracer_provider, config=config, attach_env=attach_env
        )
