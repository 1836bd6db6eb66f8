"""An application instrumented by a peer GenAI instrumentation, ours, or both, in a chosen order.

Run by tests/interop with the Python of a peer's venv (scripts/interop/install.sh)::

    python peer_app.py '{"peer": "traceloop", "order": "peer_first", ...}'

It exports its spans over OTLP/HTTP to ``endpoint`` (a ``spanledger serve``), makes each call
of ``calls`` in a trace of its own against the LLM stand-in, asking the stand-in for usage with
cached tokens, and prints one JSON line per call: its trace id and what it truly used.

``order``: ``alone`` (the peer only), ``peer_first`` / ``ours_first`` (both, in that order),
``entry_points`` (whatever ``opentelemetry-instrument`` loaded; nothing is instrumented here).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable
from typing import Any

SCENARIO_HEADER = "x-standin-scenario"
OPENAI_MODEL = "gpt-4o-mini"
ANTHROPIC_MODEL = "claude-sonnet-4-20250514"
OPENAI_USAGE = {
    "prompt_tokens": 12000,
    "completion_tokens": 800,
    "prompt_tokens_details": {"cached_tokens": 8000},
}
ANTHROPIC_USAGE = {
    "input_tokens": 2500,
    "cache_read_input_tokens": 8000,
    "cache_creation_input_tokens": 1500,
    "output_tokens": 800,
}
TRUE_USAGE = {
    "openai": {"input": 12000, "output": 800, "cache_read": 8000, "cache_write": 0},
    "anthropic": {"input": 12000, "output": 800, "cache_read": 8000, "cache_write": 1500},
}
"""What each call really used, all input counted (cached included)."""


def scenario(usage: dict[str, Any]) -> dict[str, str]:
    return {SCENARIO_HEADER: json.dumps({"usage": usage, "text": "The capital is Paris."})}


# Instrumentors of each peer.


def peer_instrumentors(peer: str) -> list[Any]:
    if peer == "otel-genai":
        from opentelemetry.instrumentation.genai.anthropic import AnthropicInstrumentor
        from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor

        return [OpenAIInstrumentor(), AnthropicInstrumentor()]
    if peer == "otel-contrib":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

        return [OpenAIInstrumentor()]
    if peer == "traceloop":
        from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor

        return [OpenAIInstrumentor(), AnthropicInstrumentor()]
    if peer == "openinference":
        from openinference.instrumentation.anthropic import AnthropicInstrumentor
        from openinference.instrumentation.openai import OpenAIInstrumentor

        return [OpenAIInstrumentor(), AnthropicInstrumentor()]
    if peer == "openinference-langchain":
        from openinference.instrumentation.langchain import LangChainInstrumentor

        return [LangChainInstrumentor()]
    return []  # LiteLLM and OpenLIT are switched on where the app sets them up.


def our_instrumentors() -> list[Any]:
    from spanledger.instrumentation.anthropic import AnthropicInstrumentor
    from spanledger.instrumentation.openai import OpenAIInstrumentor

    return [OpenAIInstrumentor(), AnthropicInstrumentor()]


def instrument(config: dict[str, Any], provider: Any) -> None:
    peer, order = config["peer"], config["order"]
    if order == "entry_points":
        return
    steps: list[Callable[[], None]] = []
    for instrumentor in peer_instrumentors(peer):
        steps.append(lambda i=instrumentor: i.instrument(tracer_provider=provider))
    if peer == "litellm":
        steps.append(switch_on_litellm)
    if peer == "openlit":
        steps.append(lambda: switch_on_openlit(provider))
    ours = [
        lambda i=instrumentor: i.instrument(tracer_provider=provider)
        for instrumentor in our_instrumentors()
    ]
    if order == "peer_first":
        steps += ours
    elif order == "ours_first":
        steps = ours + steps
    for step in steps:
        step()


def switch_on_litellm() -> None:
    import litellm

    litellm.callbacks = ["otel"]


def switch_on_openlit(provider: Any) -> None:
    """OpenLIT takes the tracer provider set already; its price list comes from a file here
    (by default it downloads one), without cache prices, as many of its entries are."""
    import openlit

    openlit.init(
        application_name="interop",
        disable_metrics=True,
        disable_batch=True,
        pricing_json=os.path.join(
            os.path.dirname(os.path.abspath(__file__)), "openlit_pricing.json"
        ),
        capture_message_content=False,
    )


# Calls.


def openai_client(config: dict[str, Any]) -> Any:
    import openai

    return openai.OpenAI(api_key="test-key", base_url=config["openai_url"], max_retries=0)


def anthropic_client(config: dict[str, Any]) -> Any:
    import anthropic

    return anthropic.Anthropic(api_key="test-key", base_url=config["anthropic_url"], max_retries=0)


MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


def call_openai(config: dict[str, Any], stream: bool) -> None:
    client = openai_client(config)
    request = {"model": OPENAI_MODEL, "messages": MESSAGES, "extra_headers": scenario(OPENAI_USAGE)}
    if not stream:
        client.chat.completions.create(**request)
        return
    for _ in client.chat.completions.create(stream=True, **request):
        pass


def call_anthropic(config: dict[str, Any], stream: bool) -> None:
    client = anthropic_client(config)
    request = {
        "model": ANTHROPIC_MODEL,
        "max_tokens": 1024,
        "messages": MESSAGES,
        "extra_headers": scenario(ANTHROPIC_USAGE),
    }
    if not stream:
        client.messages.create(**request)
        return
    with client.messages.stream(**request) as events:
        for _ in events:
            pass


def call_openai_async(config: dict[str, Any], stream: bool) -> None:
    import openai

    async def run() -> None:
        async with openai.AsyncOpenAI(
            api_key="test-key", base_url=config["openai_url"], max_retries=0
        ) as client:
            request = {
                "model": OPENAI_MODEL,
                "messages": MESSAGES,
                "extra_headers": scenario(OPENAI_USAGE),
            }
            if not stream:
                await client.chat.completions.create(**request)
                return
            async for _ in await client.chat.completions.create(stream=True, **request):
                pass

    asyncio.run(run())


def call_langchain(config: dict[str, Any], stream: bool) -> None:
    from langchain_openai import ChatOpenAI

    model = ChatOpenAI(
        model=OPENAI_MODEL,
        api_key="test-key",
        base_url=config["openai_url"],
        max_retries=0,
        default_headers=scenario(OPENAI_USAGE),
        stream_usage=True,
    )
    if not stream:
        model.invoke("What is the capital of France?")
        return
    for _ in model.stream("What is the capital of France?"):
        pass


def call_litellm(config: dict[str, Any], provider: str, stream: bool) -> None:
    import litellm

    if provider == "openai":
        request = {
            "model": f"openai/{OPENAI_MODEL}",
            "api_base": config["openai_url"],
            "extra_headers": scenario(OPENAI_USAGE),
        }
    else:
        request = {
            "model": f"anthropic/{ANTHROPIC_MODEL}",
            "api_base": config["anthropic_url"].removesuffix("/v1"),
            "extra_headers": scenario(ANTHROPIC_USAGE),
            "max_tokens": 1024,
        }
    response = litellm.completion(
        messages=MESSAGES, api_key="test-key", stream=stream, num_retries=0, **request
    )
    if stream:
        for _ in response:
            pass


CALLS: dict[str, tuple[str, Callable[[dict[str, Any]], None]]] = {
    "openai": ("openai", lambda c: call_openai(c, False)),
    "openai_stream": ("openai", lambda c: call_openai(c, True)),
    "openai_async": ("openai", lambda c: call_openai_async(c, False)),
    "openai_async_stream": ("openai", lambda c: call_openai_async(c, True)),
    "anthropic": ("anthropic", lambda c: call_anthropic(c, False)),
    "anthropic_stream": ("anthropic", lambda c: call_anthropic(c, True)),
    "langchain": ("openai", lambda c: call_langchain(c, False)),
    "langchain_stream": ("openai", lambda c: call_langchain(c, True)),
    "litellm_openai": ("openai", lambda c: call_litellm(c, "openai", False)),
    "litellm_openai_stream": ("openai", lambda c: call_litellm(c, "openai", True)),
    "litellm_anthropic": ("anthropic", lambda c: call_litellm(c, "anthropic", False)),
    "litellm_anthropic_stream": ("anthropic", lambda c: call_litellm(c, "anthropic", True)),
}


def tracer_provider(config: dict[str, Any]) -> Any:
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    if config["order"] == "entry_points":
        return trace.get_tracer_provider()  # set up by opentelemetry-instrument
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=config["endpoint"])))
    trace.set_tracer_provider(provider)
    return provider


def main() -> None:
    config = json.loads(sys.argv[1])
    provider = tracer_provider(config)
    instrument(config, provider)
    tracer = provider.get_tracer("interop.app")
    for name in config["calls"]:
        vendor, make_call = CALLS[name]
        with tracer.start_as_current_span(f"call {name}") as root:
            trace_id = format(root.get_span_context().trace_id, "032x")
            make_call(config)
        print(
            json.dumps(
                {
                    "call": name,
                    "trace_id": trace_id,
                    "provider": vendor,
                    "model": OPENAI_MODEL if vendor == "openai" else ANTHROPIC_MODEL,
                    "usage": TRUE_USAGE[vendor],
                }
            ),
            flush=True,
        )
    settle_litellm()
    # The provider shuts down at exit, after what other tools flush at exit (LiteLLM logs
    # streamed calls then): their exit handlers were registered later, and run first.
    provider.force_flush()


def settle_litellm() -> None:
    """LiteLLM logs a call (and makes its spans) in a thread pool after the call returned:
    wait for that work."""
    if "litellm" not in sys.modules:
        return
    from litellm.litellm_core_utils.thread_pool_executor import executor

    executor.shutdown(wait=True)


if __name__ == "__main__":
    os.environ.setdefault("OTEL_SDK_DISABLED", "false")
    main()
