"""One instrumented inference call, from the SDK method's arguments to the span's end.

A provider tells the kit two things about each patched method:

- ``describe(instance, args, kwargs)``: a :class:`CallDescription` when the call is an
  inference call to trace (operation, provider, model, whether it streams), or ``None`` to let it
  pass untouched;
- ``settle(call, result)``: what to do with the SDK's result. It reads usage into
  ``call.usage`` and calls ``call.finish()``, or hands the call to a stream observer that ends it
  later. It returns what the caller gets: the result itself, or the result with its stream
  wrapped.

:func:`call_wrapper` and :func:`async_call_wrapper` turn the two into wrapt wrappers. Around the
SDK method they start the CLIENT span (with the contract's attributes and the request content
when capture is on), make it current while the SDK sends (so HTTP client spans nest under it),
run the budget check before the request leaves, end the span as failed when the SDK raises
(the exception passes through untouched) and keep any fault of ``describe`` or ``settle`` away
from the caller: the fault is logged, and the call goes ahead or its result is returned as is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from opentelemetry.context import attach, detach
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import Tracer, set_span_in_context

# The module, not its functions: budgets imports this package, which may still be loading.
from spanledger.instrumentation import budgets

from .content import capture_content_enabled, record_input_messages
from .guard import guarded, log_fault
from .instrumentor import WrapperFactory
from .span import InferenceUsage, start_inference_span
from .stream import StreamSpan


@dataclass(slots=True)
class CallDescription:
    """What a provider's ``describe`` says about one inference call, before it is sent."""

    operation: str
    """``gen_ai.operation.name``: ``chat``, ``generate_content``, ``embeddings``..."""
    provider: str
    """``gen_ai.provider.name``."""
    request_model: str | None
    stream: bool = False
    server_address: str | None = None
    server_port: int | None = None
    attributes: Mapping[str, Any] | None = None
    """More request attributes for the span's start (``gen_ai.request.max_tokens``...)."""
    input_messages: Callable[[], Any] | None = None
    """Builds the request messages for ``gen_ai.input.messages``; called only when content
    capture is on."""
    details: Any = None
    """Whatever else the provider's ``settle`` needs to know about the request."""
    call_kwargs: dict[str, Any] | None = None
    """Keyword arguments to call the SDK method with instead of the caller's (a copy with an
    option added, such as asking a stream for its usage); ``None`` keeps the caller's."""
    prepare: Callable[[Call, tuple, dict], tuple[tuple, dict]] | None = None
    """Called once the span has started, with the call and the arguments the SDK method is about
    to get; returns the arguments to call it with. For a change that depends on the span (asking
    a stream for its usage only when the span records)."""


class Call(StreamSpan):
    """The span of one call, its usage so far and its description; it ends exactly once."""

    __slots__ = ("description",)

    def __init__(self, span: Any, description: CallDescription) -> None:
        super().__init__(span)
        self.description = description

    def finish_with(self, usage: InferenceUsage | None = None) -> None:
        """Take ``usage`` and end the span of a call whose result is whole (not a stream)."""
        if usage is not None:
            self.usage.update(usage)
        self.finish(completed=None)


_CURRENT: ContextVar[Call | None] = ContextVar("spanledger_genai_call", default=None)


def current_call() -> Call | None:
    """The call whose SDK method is running in this context, if any.

    Set by the kit's wrappers while the wrapped method runs: a second patch point that the SDK
    reaches inside that method (where it parses the response) finds its call here.
    """
    return _CURRENT.get()


Describe = Callable[[Any, tuple, dict], CallDescription | None]
"""``describe(instance, args, kwargs)``: the call to trace, or ``None`` to pass it by."""
Settle = Callable[[Call, Any], Any]
"""``settle(call, result)``: record or observe the result; return what the caller gets."""


def start_call(tracer: Tracer, description: CallDescription) -> Call:
    """Start the span of the call ``description`` describes (not made current)."""
    span = start_inference_span(
        tracer,
        operation=description.operation,
        provider=description.provider,
        request_model=description.request_model,
        stream=description.stream,
        server_address=description.server_address,
        server_port=description.server_port,
        attributes=description.attributes,
    )
    call = Call(span, description)
    if description.input_messages is not None and capture_content_enabled():
        with guarded("capturing request messages"):
            record_input_messages(span, description.input_messages())
    return call


def _begin(
    tracer: Tracer, describe: Describe, instance: Any, args: tuple, kwargs: dict
) -> Call | None:
    if not is_instrumentation_enabled():
        return None
    try:
        description = describe(instance, args, kwargs)
        return None if description is None else start_call(tracer, description)
    except Exception:
        log_fault("starting an inference span")
        return None


def _fail(call: Call, error: BaseException) -> None:
    try:
        call.fail(error, streamed=call.description.stream)
    except Exception:
        log_fault("ending a failed inference span")


def _arguments(call: Call, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """The arguments the SDK method is called with: the caller's, or the ones the description
    replaces them with."""
    description = call.description
    if description.call_kwargs is not None:
        kwargs = description.call_kwargs
    if description.prepare is not None:
        try:
            args, kwargs = description.prepare(call, args, kwargs)
        except Exception:
            log_fault("preparing an inference request")
    return args, kwargs


def _settle(settle: Settle, call: Call, result: Any) -> Any:
    try:
        return settle(call, result)
    except Exception:
        log_fault("reading an inference result")
        call.finish(completed=None)
        return result


def call_wrapper(describe: Describe, settle: Settle) -> WrapperFactory:
    """The wrapper factory of a sync SDK method that sends one inference request."""

    def factory(tracer: Tracer) -> Callable[..., Any]:
        def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
            call = _begin(tracer, describe, instance, args, kwargs)
            if call is None:
                return wrapped(*args, **kwargs)
            description = call.description
            if description.call_kwargs is not None or description.prepare is not None:
                args, kwargs = _arguments(call, args, kwargs)
            token = attach(set_span_in_context(call.span))
            current = _CURRENT.set(call)
            try:
                budgets.check_budget()
                result = wrapped(*args, **kwargs)
            except BaseException as error:
                _fail(call, error)
                raise
            finally:
                _CURRENT.reset(current)
                detach(token)
            return _settle(settle, call, result)

        return wrapper

    return factory


def async_call_wrapper(describe: Describe, settle: Settle) -> WrapperFactory:
    """The wrapper factory of an async SDK method; see :func:`call_wrapper`."""

    def factory(tracer: Tracer) -> Callable[..., Any]:
        async def wrapper(
            wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict
        ) -> Any:
            call = _begin(tracer, describe, instance, args, kwargs)
            if call is None:
                return await wrapped(*args, **kwargs)
            description = call.description
            if description.call_kwargs is not None or description.prepare is not None:
                args, kwargs = _arguments(call, args, kwargs)
            token = attach(set_span_in_context(call.span))
            current = _CURRENT.set(call)
            try:
                await budgets.acheck_budget()
                result = await wrapped(*args, **kwargs)
            except BaseException as error:
                _fail(call, error)
                raise
            finally:
                _CURRENT.reset(current)
                detach(token)
            return _settle(settle, call, result)

        return wrapper

    return factory


def async_generator_wrapper(describe: Describe, settle: Settle) -> WrapperFactory:
    """The wrapper factory of an SDK method that returns an async generator sending its request
    when first read (an ``async def`` with ``yield``, called without ``await``).

    The span starts when the method is called; ``settle`` receives the generator and returns what
    the caller iterates (``observe_async_current(...)``). The budget check runs, awaited, when the
    generator is first read, before the request leaves: a refusal raises from that first read,
    where the SDK's own errors come from.
    """

    def factory(tracer: Tracer) -> Callable[..., Any]:
        def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
            call = _begin(tracer, describe, instance, args, kwargs)
            if call is None:
                return wrapped(*args, **kwargs)
            description = call.description
            if description.call_kwargs is not None or description.prepare is not None:
                args, kwargs = _arguments(call, args, kwargs)
            try:
                items = wrapped(*args, **kwargs)
            except BaseException as error:
                _fail(call, error)
                raise
            return _settle(settle, call, _checked_first(items))

        return wrapper

    return factory


async def _checked_first(items: AsyncIterator[Any]) -> AsyncIterator[Any]:
    await budgets.acheck_budget()
    async for item in items:
        yield item
