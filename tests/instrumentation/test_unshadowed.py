"""Another instrumentor patching a client subclass cannot shadow ours, in either order.

The other instrumentor here patches ``openai.OpenAI.request`` / ``anthropic.Anthropic.request``
with wrapt and restores the attribute it read on uninstrument, as OpenInference's OpenAI
instrumentation does; tests/interop runs the real packages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import openai
import pytest
import wrapt

from spanledger.instrumentation.anthropic import AnthropicInstrumentor
from spanledger.instrumentation.openai import OpenAIInstrumentor
from spanledger.standin import StandIn

SDKS = {
    "openai": (openai, ("OpenAI", "AsyncOpenAI"), OpenAIInstrumentor),
    "anthropic": (anthropic, ("Anthropic", "AsyncAnthropic"), AnthropicInstrumentor),
}


class SubclassPatcher:
    """Patches ``request`` on the SDK's client classes, counting the calls it sees."""

    def __init__(self, module: Any, classes: tuple[str, ...]) -> None:
        self.module = module
        self.classes = classes
        self.calls = 0
        self._originals: dict[str, Any] = {}

    def instrument(self) -> None:
        for name in self.classes:
            owner = getattr(self.module, name)
            self._originals[name] = owner.request
            wrapt.wrap_function_wrapper(self.module, f"{name}.request", self._wrapper(owner))

    def _wrapper(self, owner: type) -> Callable[..., Any]:
        if owner.__name__.startswith("Async"):

            async def counting_async(wrapped, instance, args, kwargs):
                self.calls += 1
                return await wrapped(*args, **kwargs)

            return counting_async

        def counting(wrapped, instance, args, kwargs):
            self.calls += 1
            return wrapped(*args, **kwargs)

        return counting

    def uninstrument(self) -> None:
        for name, original in self._originals.items():
            getattr(self.module, name).request = original


@pytest.fixture(params=["openai", "anthropic"])
def sdk(request: pytest.FixtureRequest) -> Iterator[str]:
    module, classes, _ = SDKS[request.param]
    before = {name: getattr(module, name).__dict__.get("request") for name in classes}
    yield request.param
    for name, method in before.items():
        owner = getattr(module, name)
        if method is not None:
            owner.request = method
        elif "request" in owner.__dict__:
            delattr(owner, "request")


def _call(sdk: str, llm: StandIn, *, asynchronous: bool) -> None:
    if sdk == "openai":
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
        if asynchronous:

            async def run() -> None:
                async with openai.AsyncOpenAI(
                    api_key="k", base_url=llm.openai_base_url, max_retries=0
                ) as client:
                    await client.chat.completions.create(**body)

            asyncio.run(run())
            return
        with openai.OpenAI(api_key="k", base_url=llm.openai_base_url, max_retries=0) as client:
            client.chat.completions.create(**body)
        return
    body = {
        "model": "claude-sonnet-4-20250514",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "hi"}],
    }
    if asynchronous:

        async def run_anthropic() -> None:
            async with anthropic.AsyncAnthropic(
                api_key="k", base_url=llm.anthropic_base_url, max_retries=0
            ) as client:
                await client.messages.create(**body)

        asyncio.run(run_anthropic())
        return
    with anthropic.Anthropic(api_key="k", base_url=llm.anthropic_base_url, max_retries=0) as client:
        client.messages.create(**body)


@pytest.fixture
def budget_checks(sdk: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Count the budget checks the wrappers make (the real check is a no-op when disabled)."""
    seen: list[str] = []
    target = "spanledger.instrumentation.budgets"

    def check() -> None:
        seen.append("sync")

    async def acheck() -> None:
        seen.append("async")

    monkeypatch.setattr(f"{target}.check_budget", check)
    monkeypatch.setattr(f"{target}.acheck_budget", acheck)
    return seen


@pytest.mark.parametrize(
    "mode",
    [("peer_first", False), ("ours_first", False), ("peer_first", True), ("ours_first", True)],
    ids=["peer-first-sync", "ours-first-sync", "peer-first-async", "ours-first-async"],
)
def test_every_call_gets_our_span_and_budget_check_once(  # noqa: PLR0917 - fixtures
    sdk, mode, llm, tracer_provider, span_exporter, budget_checks
):
    order, asynchronous = mode
    module, classes, instrumentor_class = SDKS[sdk]
    peer = SubclassPatcher(module, classes)
    ours = instrumentor_class()
    steps = [peer.instrument, lambda: ours.instrument(tracer_provider=tracer_provider)]
    if order == "ours_first":
        steps.reverse()
    for step in steps:
        step()
    try:
        for _ in range(3):
            _call(sdk, llm, asynchronous=asynchronous)
    finally:
        ours.uninstrument()
        peer.uninstrument()

    ours_spans = [s for s in span_exporter.get_finished_spans() if s.name.startswith("chat ")]
    assert len(ours_spans) == 3
    assert peer.calls == 3
    assert budget_checks == ["async" if asynchronous else "sync"] * 3


def test_our_uninstrument_leaves_a_later_wrapper_around_ours_working(
    sdk, llm, tracer_provider, span_exporter
):
    module, classes, instrumentor_class = SDKS[sdk]
    peer = SubclassPatcher(module, classes)
    ours = instrumentor_class()
    ours.instrument(tracer_provider=tracer_provider)
    peer.instrument()
    ours.uninstrument()
    try:
        _call(sdk, llm, asynchronous=False)
    finally:
        peer.uninstrument()

    assert peer.calls == 1
    assert span_exporter.get_finished_spans() == ()
