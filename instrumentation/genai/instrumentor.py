"""The instrumentor every SDK patch of the kit is installed by: wrap on instrument, unwrap all.

A provider declares its patch points as data::

    class AcmeInstrumentor(SdkInstrumentor):
        instruments = ("acme >= 1.2, < 2",)

        def patches(self) -> Sequence[Patch]:
            return (
                Patch("acme.client", "Client.complete", complete_wrapper),
                Patch("acme.client", "AsyncClient.complete", async_complete_wrapper),
            )

Each :class:`Patch` names a module, a ``Class.method`` in it and a factory that turns the tracer
into the wrapt wrapper. A patch marked ``unshadowable`` wraps the method on the class and on every
subclass holding its own version (see ``patching``): for a base-client method such as the
``request`` of the openai and anthropic SDKs, which other instrumentors patch on subclasses. The
base class checks the installed SDK against ``instruments`` (the ``opentelemetry-instrument`` loader
may skip that check), builds the tracer with the provider module as its scope, wraps every patch
point, and on uninstrument unwraps exactly the ones it wrapped.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from opentelemetry.instrumentation.dependencies import get_dependency_conflicts
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from opentelemetry.instrumentation.utils import unwrap
from opentelemetry.trace import Tracer, get_tracer
from wrapt import register_post_import_hook, wrap_function_wrapper

from spanledger.version import __version__

from .guard import logger
from .patching import MethodPatch

WrapperFactory = Callable[[Tracer], Callable[..., Any]]
"""Builds a wrapt wrapper ``(wrapped, instance, args, kwargs)`` from the tracer."""


@dataclass(frozen=True)
class Patch:
    """One method to wrap: ``module.target`` (``target`` is ``Class.method``)."""

    module: str
    target: str
    wrapper: WrapperFactory
    optional: bool = False
    """Skip this patch (with a debug log) when the module or method is missing: for a patch
    point that only some versions of the SDK, or an optional companion package, have."""
    unshadowable: bool = False
    """Wrap the method on the class and on each of its subclasses holding its own version, so
    that another instrumentor's wrapper on a subclass cannot hide ours (see ``patching``)."""


class SdkInstrumentor(BaseInstrumentor):
    """Base class of the kit's instrumentors; subclasses set ``instruments`` and ``patches``."""

    instruments: ClassVar[tuple[str, ...]] = ()
    """The SDK versions supported, as requirement strings (``"acme >= 1.2, < 2"``)."""
    patch_when_imported: ClassVar[str | None] = None
    """The SDK's top module, for an SDK whose import is slow or does things (LiteLLM fetches its
    price list): its patches are applied when the application imports it, not by
    ``instrument()``, so that a process that never uses the SDK never imports it."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # ``BaseInstrumentor`` keeps one instance per class in class attributes, which a subclass
        # of an instrumentor would otherwise share with its parent.
        cls._instance = None
        cls._is_instrumented_by_opentelemetry = False

    @property
    def _applied(self) -> list[tuple[Patch, MethodPatch | None]]:
        """The patches wrapped now. Kept on the instance, which ``BaseInstrumentor`` makes a
        singleton per class: ``__init__`` runs again for every ``Instrumentor()`` and must not
        forget them."""
        applied = self.__dict__.get("_applied_patches")
        if applied is None:
            applied = self.__dict__["_applied_patches"] = []
        return applied

    def patches(self) -> Sequence[Patch]:
        """The patch points of this SDK."""
        raise NotImplementedError

    def instrumentation_dependencies(self) -> Collection[str]:
        return self.instruments

    def _instrument(self, **kwargs: Any) -> None:
        conflict = get_dependency_conflicts(self.instruments)
        if conflict is not None:
            # An SDK that is not installed is the common case under ``opentelemetry-instrument``,
            # which loads every instrumentor; an installed one outside the range deserves a word.
            log = logger.debug if conflict.found is None else logger.warning
            log("spanledger %s not installed: %s", type(self).__name__, conflict)
            return
        tracer = get_tracer(
            type(self).__module__, __version__, kwargs.get("tracer_provider"), schema_url=None
        )
        module = self.patch_when_imported
        if module is None:
            self._apply(tracer)
            return
        generation = self._next_generation()

        def on_import(_: Any) -> None:
            if self.__dict__.get("_generation") != generation:
                return  # uninstrumented, or instrumented again, since the hook was registered
            try:
                self._apply(tracer)
            except Exception:
                logger.exception("spanledger %s could not patch %s", type(self).__name__, module)

        register_post_import_hook(on_import, module)

    def _next_generation(self) -> int:
        """A new number for the current ``instrument()``; a waiting hook of an earlier one
        then knows it is stale."""
        generation = self.__dict__.get("_generation", 0) + 1
        self.__dict__["_generation"] = generation
        return generation

    def _apply(self, tracer: Tracer) -> None:
        for patch in self.patches():
            method_patch = None
            try:
                if patch.unshadowable:
                    method_patch = _method_patch(patch, tracer)
                    method_patch.install()
                else:
                    wrap_function_wrapper(patch.module, patch.target, patch.wrapper(tracer))
            except (ImportError, AttributeError):
                if not patch.optional:
                    self._unwrap_applied()
                    raise
                logger.debug("spanledger: %s.%s is absent", patch.module, patch.target)
                continue
            self._applied.append((patch, method_patch))

    def _uninstrument(self, **kwargs: Any) -> None:
        self._next_generation()
        self._unwrap_applied()

    def _unwrap_applied(self) -> None:
        while self._applied:
            patch, method_patch = self._applied.pop()
            if method_patch is not None:
                method_patch.uninstall()
                continue
            owner, method = _owner_of(patch)
            unwrap(owner, method)


def _owner_of(patch: Patch) -> tuple[Any, str]:
    """The class (or module) holding the patched method, and the method's name."""
    owner_name, _, method = patch.target.rpartition(".")
    owner: Any = importlib.import_module(patch.module)
    for name in owner_name.split(".") if owner_name else ():
        owner = getattr(owner, name)
    return owner, method


def _method_patch(patch: Patch, tracer: Tracer) -> MethodPatch:
    owner, method = _owner_of(patch)
    if not isinstance(owner, type) or method not in owner.__dict__:
        raise AttributeError(f"{patch.module}.{patch.target} is not a method of a class")
    wrapper = patch.wrapper(tracer)
    return MethodPatch(owner, method, wrapper, is_async=inspect.iscoroutinefunction(wrapper))
