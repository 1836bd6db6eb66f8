"""Carrying trace context and tags into other processes.

Threads and asyncio tasks share the process's context; a child process starts with an empty one.
Two carriers cross the gap, both using the W3C ``traceparent``/``tracestate``/``baggage`` formats:

- ``carry(fn)`` wraps a picklable callable for ``ProcessPoolExecutor``, ``multiprocessing``
  (any start method) and ``Pool.map``: the child runs ``fn`` inside the parent's trace and tags.
- ``context_env()`` gives a child command the ``TRACEPARENT``, ``TRACESTATE`` and ``BAGGAGE``
  environment variables (the OpenTelemetry environment-carrier names); the child, when it runs
  under ``opentelemetry-instrument`` or calls ``spanledger.install_tags()``, starts inside them.

The parent is trusted: the inbound policy does not apply to these carriers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from opentelemetry import context as otel_context
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

R = TypeVar("R")

_W3C = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
ENV_NAMES = ("TRACEPARENT", "TRACESTATE", "BAGGAGE")


def current_carrier(context: Context | None = None) -> dict[str, str]:
    """The W3C headers (``traceparent``, ``tracestate``, ``baggage``) of the current context."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier, context=context)
    return carrier


def context_from_carrier(carrier: Mapping[str, str]) -> Context:
    """A context holding the trace and baggage that ``carrier`` describes (empty if none)."""
    return _W3C.extract(dict(carrier), context=Context())


class CarriedCall(Generic[R]):
    """A callable that runs ``fn`` inside the trace context and tags captured at creation.

    Picklable whenever ``fn`` and the arguments are, so it can be sent to a child process.
    """

    def __init__(self, fn: Callable[..., R], carrier: Mapping[str, str]) -> None:
        self.fn = fn
        self.carrier = dict(carrier)

    def __call__(self, *args: Any, **kwargs: Any) -> R:
        token = otel_context.attach(context_from_carrier(self.carrier))
        try:
            return self.fn(*args, **kwargs)
        finally:
            otel_context.detach(token)

    def __repr__(self) -> str:
        return f"CarriedCall({self.fn!r}, {self.carrier!r})"


def carry(fn: Callable[..., R]) -> CarriedCall[R]:
    """Wraps ``fn`` so that it runs in the current trace and tags, in any thread or process.

    ``executor.submit(spanledger.carry(work), item)`` for a ``ProcessPoolExecutor``,
    ``Process(target=spanledger.carry(work))`` for ``multiprocessing``.
    """
    return CarriedCall(fn, current_carrier())


def context_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: ``os.environ``) plus the current trace and tags as environment variables.

    Pass it as ``env=`` to ``subprocess.run`` or ``Popen``. Variables the current context does not
    fill are removed, so a grandchild never inherits a stale trace.
    """
    env = dict(os.environ if base is None else base)
    for name in ENV_NAMES:
        env.pop(name, None)
    for key, value in current_carrier().items():
        env[key.upper()] = value
    return env


def context_from_env(environ: Mapping[str, str] | None = None) -> Context | None:
    """The context that ``TRACEPARENT``/``TRACESTATE``/``BAGGAGE`` describe, or ``None``."""
    env = os.environ if environ is None else environ
    carrier = {name.lower(): env[name] for name in ENV_NAMES if env.get(name)}
    if not carrier:
        return None
    return context_from_carrier(carrier)


def attach_env_context(environ: Mapping[str, str] | None = None) -> bool:
    """Makes the environment's trace and tags current for this thread; ``True`` if there were any.

    The context stays attached for the life of the thread: it is the parent of all the work the
    process does.
    """
    context = context_from_env(environ)
    if context is None:
        return False
    otel_context.attach(context)
    return True
