"""Wrap an SDK client method so that no other instrumentor can shadow the wrapper.

SDK clients funnel every API call through one method of a base class (``request`` of the
``SyncAPIClient`` / ``AsyncAPIClient`` of the openai and anthropic SDKs). Wrapping it on the base
class alone is not enough: another instrumentor may have set its own wrapper on a subclass
(OpenInference patches ``openai.OpenAI.request``), and a method found on the subclass hides the
base class's, so the base wrapper would never run for that client.

:class:`MethodPatch` therefore wraps the method on the base class *and* on every subclass that
holds its own version of it when the patch is installed, with one guard: within one call, only
the outermost of these wrappers acts, and the inner ones pass straight through. Whatever patched
the SDK before or after, the wrapper then runs exactly once per call:

- another wrapper installed later on a subclass wraps ours (found on the base class or on that
  subclass) and calls it;
- another wrapper installed earlier on a subclass is wrapped by ours there.

Uninstalling restores each method where the wrapper is still the outermost one and leaves the
others inert, so a later instrumentor's wrapper around ours keeps working.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from typing import Any

import wrapt

Wrapper = Callable[[Callable[..., Any], Any, tuple, dict], Any]


class MethodPatch:
    """One method of ``base`` and of its subclasses, wrapped by ``wrapper`` (see module doc)."""

    def __init__(self, base: type, name: str, wrapper: Wrapper, *, is_async: bool = False) -> None:
        self.base = base
        self.name = name
        self.on = False
        self._inside: ContextVar[bool] = ContextVar(
            f"spanledger_inside_{base.__module__}.{base.__qualname__}.{name}", default=False
        )
        self._wrapper = self._async_guard(wrapper) if is_async else self._guard(wrapper)
        self._installed: list[tuple[type, wrapt.FunctionWrapper]] = []

    def install(self) -> None:
        """Wrap the method on the base class and on each subclass holding its own version."""
        self.on = True
        for owner in (self.base, *_subclasses(self.base)):
            original = owner.__dict__.get(self.name)
            if original is None or self._is_ours(original):
                continue
            proxy = wrapt.FunctionWrapper(original, self._wrapper)
            setattr(owner, self.name, proxy)
            self._installed.append((owner, proxy))

    def uninstall(self) -> None:
        """Turn the wrappers off; restore each method where ours is still the outermost."""
        self.on = False
        for owner, proxy in self._installed:
            if owner.__dict__.get(self.name) is proxy:
                setattr(owner, self.name, proxy.__wrapped__)
        self._installed.clear()

    @property
    def owners(self) -> list[type]:
        """The classes whose method is wrapped."""
        return [owner for owner, _ in self._installed]

    def _is_ours(self, method: object) -> bool:
        return any(method is proxy for _, proxy in self._installed)

    def _guard(self, wrapper: Wrapper) -> Wrapper:
        inside = self._inside

        def guarded(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
            if not self.on or inside.get():
                return wrapped(*args, **kwargs)
            token = inside.set(True)
            try:
                return wrapper(wrapped, instance, args, kwargs)
            finally:
                inside.reset(token)

        return guarded

    def _async_guard(self, wrapper: Wrapper) -> Wrapper:
        inside = self._inside

        async def guarded(
            wrapped: Callable[..., Awaitable[Any]], instance: Any, args: tuple, kwargs: dict
        ) -> Any:
            if not self.on or inside.get():
                return await wrapped(*args, **kwargs)
            token = inside.set(True)
            try:
                return await wrapper(wrapped, instance, args, kwargs)
            finally:
                inside.reset(token)

        return guarded


def _subclasses(base: type) -> Iterator[type]:
    """Every subclass of ``base``, each once."""
    seen: set[type] = set()
    pending = list(base.__subclasses__())
    while pending:
        owner = pending.pop()
        if owner in seen:
            continue
        seen.add(owner)
        yield owner
        pending.extend(owner.__subclasses__())
