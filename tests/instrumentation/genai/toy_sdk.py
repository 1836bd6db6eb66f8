"""A minimal SDK for the kit's own tests: one client whose methods the kit patches.

It stands for the shape of a real SDK method (a request that returns a whole result, a
generator that sends when first read, an async request) without a wire protocol of its own,
so that the kit's guarantees can be checked on their own; the real SDKs' tests cover the rest.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace


@dataclass
class Reply:
    text: str
    usage: dict[str, int]
    seen_span: Any = None
    """The span current while the request was sent."""


@dataclass
class ToyClient:
    fail_with: BaseException | None = None
    sent: list[dict[str, Any]] = field(default_factory=list)

    def complete(self, *, model: str, prompt: str) -> Reply:
        return self._send(model, prompt)

    def stream(self, *, model: str, prompt: str) -> Iterator[Reply]:
        return self._replies(model, prompt)

    def _replies(self, model: str, prompt: str) -> Iterator[Reply]:
        self.sent.append({"model": model, "prompt": prompt})
        for index in range(3):
            if self.fail_with is not None and index == 1:
                raise self.fail_with
            yield Reply(str(index), {"in": len(prompt), "out": index + 1}, trace.get_current_span())

    async def acomplete(self, *, model: str, prompt: str) -> Reply:
        return self._send(model, prompt)

    async def astream(self, *, model: str, prompt: str) -> AsyncIterator[Reply]:
        """Returns an async generator that sends when first read (as ``ollama.AsyncClient``)."""

        async def replies() -> AsyncIterator[Reply]:
            for reply in self._replies(model, prompt):
                yield reply

        return replies()

    async def agenerate(self, *, model: str, prompt: str) -> AsyncIterator[Reply]:
        """An async generator method: called without ``await``, sends when first read."""
        for reply in self._replies(model, prompt):
            yield reply

    def _send(self, model: str, prompt: str) -> Reply:
        self.sent.append({"model": model, "prompt": prompt})
        if self.fail_with is not None:
            raise self.fail_with
        return Reply("ok", {"in": len(prompt), "out": 2}, trace.get_current_span())


class BaseClient:
    """A base client whose one ``request`` every subclass inherits (as the openai SDK's)."""

    def request(self, *, model: str, prompt: str) -> Reply:
        return Reply("ok", {"in": len(prompt), "out": 2}, trace.get_current_span())


class SubClient(BaseClient):
    """A client class on which another instrumentation may set its own ``request``."""
