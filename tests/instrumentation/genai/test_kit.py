"""The instrumentation kit on its own: patch points, the call wrapper's guarantees, uninstrument.

A toy SDK (``toy_sdk``) stands for the SDK; every provider built on the kit gets what is checked
here, and its own tests drive the real SDK against the stand-in.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import sys
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import pytest
import toy_sdk
import wrapt
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import StatusCode
from provider_support import refusing_budget  # noqa: F401  (a fixture)

from spanledger import semconv
from spanledger.errors import BudgetExceededError
from spanledger.instrumentation.genai import (
    OPERATION_CHAT,
    Call,
    CallDescription,
    InferenceUsage,
    Patch,
    SdkInstrumentor,
    async_call_wrapper,
    async_generator_wrapper,
    call_wrapper,
    count_whole,
    current_call,
    observe_async_current,
    observe_current,
)


def describe(client: Any, args: tuple, kwargs: dict) -> CallDescription | None:
    if kwargs["model"] == "not-inference":
        return None
    if kwargs["model"] == "broken-describe":
        raise RuntimeError("describe exploded")
    if kwargs["model"] == "prepared":
        return CallDescription(OPERATION_CHAT, "toy", "prepared", prepare=prepare)
    if kwargs["model"] == "asks-more":
        return CallDescription(
            OPERATION_CHAT, "toy", "asks-more", call_kwargs={**kwargs, "prompt": "more"}
        )
    return CallDescription(
        OPERATION_CHAT,
        "toy",
        kwargs["model"],
        server_address="toy.example",
        server_port=443,
        attributes={"gen_ai.request.max_tokens": 5},
        input_messages=lambda: [{"role": "user", "content": kwargs["prompt"]}],
    )


def prepare(call: Call, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Change the request using what only the started span knows: its name."""
    return args, {**kwargs, "prompt": f"{kwargs['prompt']} for {call.span.name}"}


def usage_of(reply: toy_sdk.Reply) -> InferenceUsage:
    return InferenceUsage(input_tokens=reply.usage["in"], output_tokens=reply.usage["out"])


def settle(call: Call, reply: toy_sdk.Reply) -> toy_sdk.Reply:
    if reply.text == "ok" and call.description.request_model == "broken-settle":
        raise RuntimeError("settle exploded")
    call.finish_with(usage_of(reply))
    return reply


def describe_stream(client: Any, args: tuple, kwargs: dict) -> CallDescription:
    return CallDescription(OPERATION_CHAT, "toy", kwargs["model"], stream=True)


def settle_stream(call: Call, replies: Iterator[toy_sdk.Reply]) -> Iterator[toy_sdk.Reply]:
    observed = observe_current(replies, call, lambda reply: call.usage.update(usage_of(reply)))
    call.watch(observed)
    return observed


def settle_async_stream(call: Call, replies: AsyncIterator[toy_sdk.Reply]) -> Any:
    def on_reply(reply: toy_sdk.Reply) -> None:
        call.usage.update(usage_of(reply))

    observed = observe_async_current(replies, call, on_reply)
    call.watch(observed)
    return observed


class ToyInstrumentor(SdkInstrumentor):
    instruments = ("wrapt >= 1.0",)

    def patches(self) -> Sequence[Patch]:
        return (
            Patch("toy_sdk", "ToyClient.complete", call_wrapper(describe, settle)),
            Patch("toy_sdk", "ToyClient.stream", call_wrapper(describe_stream, settle_stream)),
            Patch("toy_sdk", "ToyClient.acomplete", async_call_wrapper(describe, settle)),
            Patch(
                "toy_sdk",
                "ToyClient.astream",
                async_call_wrapper(describe_stream, settle_async_stream),
            ),
            Patch(
                "toy_sdk",
                "ToyClient.agenerate",
                async_generator_wrapper(describe_stream, settle_async_stream),
            ),
            Patch("toy_sdk", "AbsentClient.complete", call_wrapper(describe, settle), True),
        )


@pytest.fixture
def instrumented(tracer_provider) -> Iterator[ToyInstrumentor]:
    instrumentor = ToyInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider)
    yield instrumentor
    instrumentor.uninstrument()


def only_span(exporter):
    spans = exporter.get_finished_spans()
    assert len(spans) == 1, [span.name for span in spans]
    return spans[0]


def test_a_call_gets_one_client_span_with_the_contract_attributes(instrumented, span_exporter):
    reply = toy_sdk.ToyClient().complete(model="toy-1", prompt="hello")

    span = only_span(span_exporter)
    assert span.name == "chat toy-1"
    assert span.kind.name == "CLIENT"
    assert reply.seen_span.get_span_context() == span.get_span_context()
    assert dict(span.attributes) == {
        semconv.GEN_AI_OPERATION_NAME: "chat",
        semconv.GEN_AI_PROVIDER_NAME: "toy",
        semconv.GEN_AI_REQUEST_MODEL: "toy-1",
        semconv.GEN_AI_REQUEST_STREAM: False,
        "gen_ai.request.max_tokens": 5,
        "server.address": "toy.example",
        "server.port": 443,
        semconv.GEN_AI_USAGE_INPUT_TOKENS: 5,
        semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 2,
    }


def test_content_is_captured_only_when_asked(instrumented, span_exporter, monkeypatch):
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    toy_sdk.ToyClient().complete(model="toy-1", prompt="hello")

    captured = only_span(span_exporter).attributes["gen_ai.input.messages"]
    assert json.loads(captured) == [{"role": "user", "content": "hello"}]


def test_calls_that_are_not_inference_pass_by(instrumented, span_exporter):
    reply = toy_sdk.ToyClient().complete(model="not-inference", prompt="x")

    assert reply.text == "ok"
    assert span_exporter.get_finished_spans() == ()


def test_describe_may_give_the_sdk_other_keyword_arguments(instrumented, span_exporter):
    client = toy_sdk.ToyClient()
    client.complete(model="asks-more", prompt="hello")
    asyncio.run(client.acomplete(model="asks-more", prompt="hello"))

    assert [sent["prompt"] for sent in client.sent] == ["more", "more"]
    assert len(span_exporter.get_finished_spans()) == 2


def test_prepare_changes_the_request_once_its_span_has_started_and_the_call_is_current(
    instrumented, span_exporter, monkeypatch
):
    seen: list[Call | None] = []
    send = toy_sdk.ToyClient._send

    def spying_send(client: toy_sdk.ToyClient, model: str, prompt: str) -> toy_sdk.Reply:
        seen.append(current_call())
        return send(client, model, prompt)

    monkeypatch.setattr(toy_sdk.ToyClient, "_send", spying_send)
    client = toy_sdk.ToyClient()
    client.complete(model="prepared", prompt="hello")
    client.complete(model="not-inference", prompt="hello")

    assert [sent["prompt"] for sent in client.sent] == ["hello for chat prepared", "hello"]
    assert [call.description.request_model if call else None for call in seen] == [
        "prepared",
        None,
    ]
    assert current_call() is None
    assert only_span(span_exporter).name == "chat prepared"


def _counting_peer(counts: list[str]) -> Any:
    def peer(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        counts.append("peer")
        return wrapped(*args, **kwargs)

    return peer


class BaseClientInstrumentor(SdkInstrumentor):
    instruments = ("wrapt >= 1.0",)

    def patches(self) -> Sequence[Patch]:
        wrapper = call_wrapper(describe, settle)
        return (Patch("toy_sdk", "BaseClient.request", wrapper, unshadowable=True),)


@pytest.mark.parametrize("peer_first", [True, False], ids=["peer-first", "ours-first"])
def test_an_unshadowable_patch_acts_once_whatever_patched_a_subclass(
    tracer_provider, span_exporter, peer_first
):
    counts: list[str] = []
    original = toy_sdk.SubClient.__dict__.get("request")
    instrumentor = BaseClientInstrumentor()
    try:
        if not peer_first:
            instrumentor.instrument(tracer_provider=tracer_provider)
        wrapt.wrap_function_wrapper(toy_sdk, "SubClient.request", _counting_peer(counts))
        if peer_first:
            instrumentor.instrument(tracer_provider=tracer_provider)

        toy_sdk.SubClient().request(model="toy-1", prompt="hi")
        toy_sdk.BaseClient().request(model="toy-1", prompt="hi")

        assert counts == ["peer"]
        assert [span.name for span in span_exporter.get_finished_spans()] == ["chat toy-1"] * 2
    finally:
        instrumentor.uninstrument()
        if original is not None:
            toy_sdk.SubClient.request = original
        elif "request" in toy_sdk.SubClient.__dict__:
            delattr(toy_sdk.SubClient, "request")
    assert not isinstance(toy_sdk.BaseClient.__dict__["request"], wrapt.ObjectProxy)


def test_the_sdk_exception_passes_through_and_marks_the_span(instrumented, span_exporter):
    error = ConnectionError("refused")
    with pytest.raises(ConnectionError) as raised:
        toy_sdk.ToyClient(fail_with=error).complete(model="toy-1", prompt="x")

    assert raised.value is error
    span = only_span(span_exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "ConnectionError"


@pytest.mark.parametrize("model", ["broken-describe", "broken-settle"])
def test_a_fault_in_the_provider_code_is_logged_and_the_call_unaffected(
    instrumented, span_exporter, caplog, model
):
    with caplog.at_level(logging.ERROR, logger="spanledger.instrumentation"):
        reply = toy_sdk.ToyClient().complete(model=model, prompt="x")

    assert reply.text == "ok"
    assert "exploded" in caplog.text
    assert len(span_exporter.get_finished_spans()) == (model == "broken-settle")


def test_a_generator_is_read_with_its_span_current_and_ends_it_once(instrumented, span_exporter):
    replies = list(toy_sdk.ToyClient().stream(model="toy-1", prompt="hello"))

    span = only_span(span_exporter)
    assert [reply.seen_span.get_span_context() for reply in replies] == [span.context] * 3
    assert span.attributes[semconv.GEN_AI_REQUEST_STREAM] is True
    assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 3
    assert span.attributes[semconv.STREAM_COMPLETED] is True


def test_a_generator_left_early_or_failing_keeps_the_usage_seen(instrumented, span_exporter):
    stream = toy_sdk.ToyClient().stream(model="toy-1", prompt="hello")
    next(stream)
    stream.close()
    with pytest.raises(TimeoutError):
        list(toy_sdk.ToyClient(fail_with=TimeoutError()).stream(model="toy-1", prompt="hello"))

    closed, failed = span_exporter.get_finished_spans()
    assert closed.attributes[semconv.STREAM_COMPLETED] is False
    assert closed.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 1
    assert failed.attributes["error.type"] == "TimeoutError"
    assert failed.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 1


def test_async_calls_are_traced_the_same_way(instrumented, span_exporter):
    reply = asyncio.run(toy_sdk.ToyClient().acomplete(model="toy-1", prompt="hello"))

    span = only_span(span_exporter)
    assert reply.seen_span.get_span_context() == span.get_span_context()
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 5


def test_an_async_generator_is_read_with_its_span_current_and_ends_it_once(
    instrumented, span_exporter
):
    async def read(close_after: int | None) -> list[toy_sdk.Reply]:
        stream = await toy_sdk.ToyClient().astream(model="toy-1", prompt="hello")
        replies = []
        async for reply in stream:
            replies.append(reply)
            if len(replies) == close_after:
                await stream.aclose()
                break
        return replies

    replies = asyncio.run(read(None))
    asyncio.run(read(1))

    whole, closed = span_exporter.get_finished_spans()
    assert [reply.seen_span.get_span_context() for reply in replies] == [whole.context] * 3
    assert whole.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 3
    assert whole.attributes[semconv.STREAM_COMPLETED] is True
    assert closed.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 1
    assert closed.attributes[semconv.STREAM_COMPLETED] is False


def test_an_async_generator_method_is_traced_with_its_span_current(instrumented, span_exporter):
    async def read(client: toy_sdk.ToyClient) -> list[toy_sdk.Reply]:
        return [reply async for reply in client.agenerate(model="toy-1", prompt="hello")]

    replies = asyncio.run(read(toy_sdk.ToyClient()))

    (span,) = span_exporter.get_finished_spans()
    assert [reply.seen_span.get_span_context() for reply in replies] == [span.context] * 3
    assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 3
    assert span.attributes[semconv.STREAM_COMPLETED] is True


@pytest.mark.usefixtures("refusing_budget")
def test_an_async_generator_method_refused_by_the_budget_sends_nothing(instrumented, span_exporter):
    client = toy_sdk.ToyClient()

    async def read() -> None:
        async for _ in client.agenerate(model="toy-1", prompt="x"):
            pass

    with pytest.raises(BudgetExceededError):
        asyncio.run(read())

    assert client.sent == []
    (span,) = span_exporter.get_finished_spans()
    assert span.attributes["error.type"] == "BudgetExceededError"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(12, 12), (12.0, 12), (0.0, 0), (12.5, None), (float("nan"), None), (True, None), ("3", None)],
)
def test_whole_counts_accept_floats_without_a_fraction(value, expected):
    assert count_whole(value) == expected


def test_suppressed_instrumentation_starts_no_span(instrumented, span_exporter):
    with suppress_instrumentation():
        toy_sdk.ToyClient().complete(model="toy-1", prompt="x")

    assert span_exporter.get_finished_spans() == ()


@pytest.mark.usefixtures("refusing_budget")
def test_the_budget_check_stops_the_call_before_the_sdk_sends(instrumented, span_exporter):
    client = toy_sdk.ToyClient()
    with pytest.raises(BudgetExceededError):
        client.complete(model="toy-1", prompt="x")
    with pytest.raises(BudgetExceededError):
        asyncio.run(client.acomplete(model="toy-1", prompt="x"))

    assert client.sent == []
    assert [s.attributes["error.type"] for s in span_exporter.get_finished_spans()] == [
        "BudgetExceededError"
    ] * 2


def test_uninstrument_unwraps_every_patch_even_from_another_instance(tracer_provider):
    ToyInstrumentor().instrument(tracer_provider=tracer_provider)
    assert isinstance(toy_sdk.ToyClient.__dict__["complete"], wrapt.FunctionWrapper)

    ToyInstrumentor().uninstrument()

    for method in ("complete", "stream", "acomplete"):
        assert not isinstance(toy_sdk.ToyClient.__dict__[method], wrapt.ObjectProxy), method


def _deferred_instrumentor(module: str) -> type[SdkInstrumentor]:
    class Deferred(SdkInstrumentor):
        instruments = ("wrapt >= 1.0",)
        patch_when_imported = module

        def patches(self) -> Sequence[Patch]:
            return (Patch(module, "Client.complete", call_wrapper(describe, settle)),)

    return Deferred


@pytest.mark.parametrize("uninstrument_first", [False, True])
def test_an_sdk_patched_when_imported_is_not_imported_by_instrument(
    tracer_provider, span_exporter, tmp_path, monkeypatch, uninstrument_first
):
    module = f"lazy_toy_{int(uninstrument_first)}"
    (tmp_path / f"{module}.py").write_text(
        "from toy_sdk import Reply\n"
        "class Client:\n"
        "    def complete(self, *, model, prompt):\n"
        "        return Reply('ok', {'in': len(prompt), 'out': 2})\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    instrumentor = _deferred_instrumentor(module)()
    instrumentor.instrument(tracer_provider=tracer_provider)
    assert module not in sys.modules
    if uninstrument_first:
        instrumentor.uninstrument()

    sdk = importlib.import_module(module)
    sdk.Client().complete(model="toy-1", prompt="hello")

    assert len(span_exporter.get_finished_spans()) == (0 if uninstrument_first else 1)
    instrumentor.uninstrument()
    assert not isinstance(sdk.Client.__dict__["complete"], wrapt.ObjectProxy)


def test_a_missing_required_patch_point_leaves_nothing_wrapped(tracer_provider):
    class Broken(ToyInstrumentor):
        def patches(self) -> Sequence[Patch]:
            return (
                Patch("toy_sdk", "ToyClient.complete", call_wrapper(describe, settle)),
                Patch("toy_sdk", "ToyClient.vanished", call_wrapper(describe, settle)),
            )

    with pytest.raises(AttributeError):
        Broken().instrument(tracer_provider=tracer_provider)

    assert not isinstance(toy_sdk.ToyClient.__dict__["complete"], wrapt.ObjectProxy)
    Broken().uninstrument()


def test_an_sdk_outside_the_supported_range_is_left_alone(tracer_provider, caplog):
    class TooNew(ToyInstrumentor):
        instruments = ("wrapt >= 999",)

    with caplog.at_level(logging.WARNING, logger="spanledger.instrumentation"):
        TooNew().instrument(tracer_provider=tracer_provider, skip_dep_check=True)

    assert not isinstance(toy_sdk.ToyClient.__dict__["complete"], wrapt.ObjectProxy)
    assert "not installed" in caplog.text
    TooNew().uninstrument()


def test_an_sdk_not_installed_is_skipped_without_a_warning(tracer_provider, caplog):
    class Absent(ToyInstrumentor):
        instruments = ("spanledger-no-such-sdk >= 1",)

    with caplog.at_level(logging.DEBUG, logger="spanledger.instrumentation"):
        Absent().instrument(tracer_provider=tracer_provider, skip_dep_check=True)

    assert not isinstance(toy_sdk.ToyClient.__dict__["complete"], wrapt.ObjectProxy)
    assert [record.levelno for record in caplog.records] == [logging.DEBUG]
    Absent().uninstrument()
