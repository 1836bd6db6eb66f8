"""Keeping the SDK's own call span out of the calls this instrumentation traces.

anthropic 2.x starts a span of its own (``anthropic.messages.create``, scope
``com.anthropic.sdk.python``) for every API call, with ``gen_ai.operation.name=chat`` and usage.
Next to ours it would be a second inference span per call, nested under ours, and it would send the
caller's W3C baggage to the vendor with its trace context. While the patched ``request`` sends a
call we trace (the kit's ``current_call()`` is one of ours), the client's ``_tracer`` reads as
``None``, which is exactly the SDK's path for a client created with ``open_telemetry=False``. Every
other call (and every client when uninstrumented) keeps the SDK's behaviour. See docs/anthropic.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class SdkSpanSwitch:
    """Installs and removes the ``_tracer`` override on the SDK's base client class.

    ``tracing_ours``: whether the call being sent in this context is one we trace.
    """

    def __init__(self, tracing_ours: Callable[[], bool]) -> None:
        self._tracing_ours = tracing_ours
        self._owner: type | None = None
        self._original: property | None = None

    def install(self) -> bool:
        """Puts the override in place; ``False`` when this SDK version has no such hook."""
        from anthropic._base_client import BaseClient

        original = BaseClient.__dict__.get("_tracer")
        if not isinstance(original, property) or original.fget is None:
            log.info("anthropic has no client tracer hook; its own spans stay on")
            return False
        getter = original.fget
        tracing_ours = self._tracing_ours

        def _tracer(client: Any) -> Any:
            if tracing_ours():
                return None
            return getter(client)

        BaseClient._tracer = property(_tracer, doc=original.__doc__)  # type: ignore[method-assign,assignment]
        self._owner, self._original = BaseClient, original
        return True

    def uninstall(self) -> None:
        """Restores the SDK's own ``_tracer``."""
        if self._owner is not None and self._original is not None:
            self._owner._tracer = self._original  # type: ignore[attr-defined]
        self._owner = self._original = None
