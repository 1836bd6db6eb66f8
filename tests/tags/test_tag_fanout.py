"""Tags follow LLM calls across threads, executors and asyncio, checked on every LLM span.

The LLM spans come from the real openai and anthropic SDKs, traced by spanledger's
instrumentation, talking to the local stand-in.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anthropic
import openai
import pytest
from tag_pipeline import Pipeline

import spanledger

OPENAI_MODEL = "gpt-4o-mini"
CLAUDE_MODEL = "claude-sonnet-4-6"


@pytest.fixture
def sdk(llm: Any) -> dict[str, Any]:
    """Sync and async clients of both SDKs, pointed at the stand-in."""
    openai_args = {"api_key": "test-key", "base_url": llm.openai_base_url, "max_retries": 0}
    claude_args = {"api_key": "test-key", "base_url": llm.anthropic_base_url, "max_retries": 0}
    return {
        "openai": openai.OpenAI(**openai_args),
        "async_openai": openai.AsyncOpenAI(**openai_args),
        "claude": anthropic.Anthropic(**claude_args),
        "async_claude": anthropic.AsyncAnthropic(**claude_args),
    }


def ask_openai(client: openai.OpenAI, prompt: str) -> None:
    client.chat.completions.create(
        model=OPENAI_MODEL, messages=[{"role": "user", "content": prompt}]
    )


def ask_claude(client: anthropic.Anthropic, prompt: str) -> None:
    client.messages.create(
        model=CLAUDE_MODEL, max_tokens=64, messages=[{"role": "user", "content": prompt}]
    )


async def ask_openai_async(client: openai.AsyncOpenAI, prompt: str) -> None:
    await client.chat.completions.create(
        model=OPENAI_MODEL, messages=[{"role": "user", "content": prompt}]
    )


async def ask_claude_async(client: anthropic.AsyncAnthropic, prompt: str) -> None:
    await client.messages.create(
        model=CLAUDE_MODEL, max_tokens=64, messages=[{"role": "user", "content": prompt}]
    )


def assert_llm_spans(pipeline: Pipeline, trace_id: int, expected: list[dict[str, str]]) -> None:
    """Exactly ``len(expected)`` LLM spans, all in ``trace_id``, with exactly these tag sets."""
    spans = pipeline.llm_spans()
    assert [s.context.trace_id for s in spans] == [trace_id] * len(expected)
    key = lambda tags: sorted(tags.items())  # noqa: E731
    assert sorted((pipeline.tags_of(s) for s in spans), key=key) == sorted(expected, key=key)


def test_threads(pipeline: Pipeline, sdk: dict[str, Any]) -> None:
    tracer = pipeline.provider.get_tracer("agent")

    def second_worker() -> None:
        with spanledger.tags(team="research"):
            ask_claude(sdk["claude"], "two")

    with (
        spanledger.tags(customer="acme", feature="threads"),
        tracer.start_as_current_span("agent") as root,
    ):
        workers = [
            threading.Thread(target=ask_openai, args=(sdk["openai"], "one")),
            threading.Thread(target=second_worker),
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=30)

    assert_llm_spans(
        pipeline,
        root.get_span_context().trace_id,
        [
            {"customer": "acme", "feature": "threads"},
            {"customer": "acme", "feature": "threads", "team": "research"},
        ],
    )


def test_thread_pool_executor_with_nested_scopes(pipeline: Pipeline, sdk: dict[str, Any]) -> None:
    tracer = pipeline.provider.get_tracer("agent")

    def work(index: int) -> None:
        if index == 2:
            # A worker that bills a different customer for its share.
            with spanledger.tags(customer="globex", team="t2"):
                ask_openai(sdk["openai"], "two")
            return
        with spanledger.tags(team=f"t{index}"):
            ask_openai(sdk["openai"], str(index))

    with (
        spanledger.tags(customer="acme", feature="pool"),
        tracer.start_as_current_span("agent") as root,
        ThreadPoolExecutor(max_workers=3) as pool,
    ):
        list(pool.map(work, range(3)))

    assert_llm_spans(
        pipeline,
        root.get_span_context().trace_id,
        [
            {"customer": "acme", "feature": "pool", "team": "t0"},
            {"customer": "acme", "feature": "pool", "team": "t1"},
            {"customer": "globex", "feature": "pool", "team": "t2"},
        ],
    )


def test_run_in_executor(pipeline: Pipeline, sdk: dict[str, Any]) -> None:
    tracer = pipeline.provider.get_tracer("agent")

    async def main() -> int:
        loop = asyncio.get_running_loop()
        with (
            spanledger.tags(customer="acme", feature="executor"),
            tracer.start_as_current_span("agent") as root,
            ThreadPoolExecutor(max_workers=1) as own_pool,
        ):
            await asyncio.gather(
                loop.run_in_executor(None, ask_openai, sdk["openai"], "default executor"),
                loop.run_in_executor(own_pool, ask_claude, sdk["claude"], "own executor"),
            )
        return root.get_span_context().trace_id

    trace_id = asyncio.run(main())
    expected = {"customer": "acme", "feature": "executor"}
    assert_llm_spans(pipeline, trace_id, [expected, expected])


def test_gather_with_decorated_coroutines(pipeline: Pipeline, sdk: dict[str, Any]) -> None:
    tracer = pipeline.provider.get_tracer("agent")

    @spanledger.tags(feature="embed")
    async def embed() -> None:
        await ask_openai_async(sdk["async_openai"], "embed")

    @spanledger.tags(feature="rerank", env="staging")
    async def rerank() -> None:
        await ask_claude_async(sdk["async_claude"], "rerank")

    async def main() -> int:
        with (
            spanledger.tags(customer="acme", env="prod"),
            tracer.start_as_current_span("agent") as root,
        ):
            await asyncio.gather(embed(), rerank(), ask_openai_async(sdk["async_openai"], "x"))
        return root.get_span_context().trace_id

    trace_id = asyncio.run(main())
    assert_llm_spans(
        pipeline,
        trace_id,
        [
            {"customer": "acme", "env": "prod", "feature": "embed"},
            {"customer": "acme", "env": "staging", "feature": "rerank"},
            {"customer": "acme", "env": "prod"},
        ],
    )


def test_create_task_keeps_tags_after_the_scope_closed(
    pipeline: Pipeline, sdk: dict[str, Any]
) -> None:
    tracer = pipeline.provider.get_tracer("agent")

    async def main() -> int:
        with tracer.start_as_current_span("agent") as root:
            with spanledger.tags(customer="acme", feature="background"):
                task = asyncio.create_task(ask_openai_async(sdk["async_openai"], "later"))
            with spanledger.tags(customer="initech"):
                other = asyncio.create_task(ask_claude_async(sdk["async_claude"], "other"))
            # Both run after their scopes closed: a task keeps the context it was created in.
            await asyncio.gather(task, other)
        return root.get_span_context().trace_id

    trace_id = asyncio.run(main())
    assert_llm_spans(
        pipeline,
        trace_id,
        [{"customer": "acme", "feature": "background"}, {"customer": "initech"}],
    )


def test_task_group_with_nested_scopes(pipeline: Pipeline, sdk: dict[str, Any]) -> None:
    tracer = pipeline.provider.get_tracer("agent")

    async def step(index: int) -> None:
        with spanledger.tags(team=f"t{index}"):
            if index % 2:
                await ask_claude_async(sdk["async_claude"], str(index))
            else:
                await ask_openai_async(sdk["async_openai"], str(index))

    async def main() -> int:
        with (
            spanledger.tags(customer="acme", feature="taskgroup"),
            tracer.start_as_current_span("agent") as root,
        ):
            async with asyncio.TaskGroup() as group:
                for index in range(4):
                    group.create_task(step(index))
        return root.get_span_context().trace_id

    trace_id = asyncio.run(main())
    assert_llm_spans(
        pipeline,
        trace_id,
        [{"customer": "acme", "feature": "taskgroup", "team": f"t{i}"} for i in range(4)],
    )


def test_untagged_work_and_long_values(pipeline: Pipeline, sdk: dict[str, Any]) -> None:
    ask_openai(sdk["openai"], "untagged")
    with spanledger.tags(customer="c" * 300, plan="gold"):
        ask_claude(sdk["claude"], "long")
    untagged, long_value = pipeline.llm_spans()
    assert pipeline.tags_of(untagged) == {}
    assert pipeline.tags_of(long_value) == {
        "customer": "c" * pipeline.config.value_max_length,
        "spanledger.tags.truncated": ("customer",),
    }
    assert "plan" not in (long_value.attributes or {})


@pytest.mark.parametrize(
    "pipeline", [{"SPANLEDGER_TAG_KEYS": "tenant_id,version,plan"}], indirect=True
)
def test_user_named_tag_keys(pipeline: Pipeline, sdk: dict[str, Any]) -> None:
    with spanledger.tags(tenant_id="t-42", version="2.1", plan="gold", customer="acme"):
        ask_openai(sdk["openai"], "custom keys")
    (span,) = pipeline.llm_spans()
    assert pipeline.tags_of(span) == {"tenant_id": "t-42", "version": "2.1", "plan": "gold"}
    assert "customer" not in (span.attributes or {})


@pytest.mark.parametrize("pipeline", [{}, {"SPANLEDGER_BAGGAGE_HOSTS": "*"}], indirect=True)
def test_llm_sdk_requests_carry_the_trace_but_never_baggage(
    pipeline: Pipeline, sdk: dict[str, Any], llm: Any
) -> None:
    async def both_async() -> None:
        await ask_openai_async(sdk["async_openai"], "async")
        await ask_claude_async(sdk["async_claude"], "async")

    with spanledger.tags(customer="acme", feature="privacy"):
        ask_openai(sdk["openai"], "sync")
        ask_claude(sdk["claude"], "sync")
        asyncio.run(both_async())

    assert len(llm.requests) == 4
    for request in llm.requests:
        assert "baggage" not in request.headers, request.path
        assert request.headers["traceparent"].startswith("00-")
    expected = {"customer": "acme", "feature": "privacy"}
    assert [pipeline.tags_of(s) for s in pipeline.llm_spans()] == [expected] * 4
