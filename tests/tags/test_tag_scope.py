"""``spanledger.tags`` scopes and ``spanledger.current_tags``: merging, restoring, limits."""

from __future__ import annotations

import asyncio
import logging

import pytest
from opentelemetry import baggage, context

import spanledger
from spanledger.tags import MAX_BAGGAGE_BYTES, MAX_BAGGAGE_ENTRIES, MAX_ENTRY_BYTES


def test_scope_merges_inner_overrides_and_restores() -> None:
    assert spanledger.current_tags() == {}
    with spanledger.tags(customer="acme", feature="search") as outer:
        assert outer == {"customer": "acme", "feature": "search"}
        with spanledger.tags(feature="support", team="cx") as inner:
            assert inner == {"customer": "acme", "feature": "support", "team": "cx"}
            assert spanledger.current_tags() == inner
        assert spanledger.current_tags() == {"customer": "acme", "feature": "search"}
    assert spanledger.current_tags() == {}


def test_none_removes_a_key_inside_the_scope_only() -> None:
    with spanledger.tags(customer="acme", feature="search"):
        with spanledger.tags(feature=None):
            assert spanledger.current_tags() == {"customer": "acme"}
        assert spanledger.current_tags() == {"customer": "acme", "feature": "search"}


def test_scope_merges_into_baggage_set_by_others() -> None:
    token = context.attach(baggage.set_baggage("session", "s-1"))
    try:
        with spanledger.tags(customer="acme"):
            assert baggage.get_all() == {"session": "s-1", "customer": "acme"}
        assert baggage.get_all() == {"session": "s-1"}
    finally:
        context.detach(token)


def test_numbers_and_booleans_become_strings() -> None:
    with spanledger.tags(customer=42, env=True, team=1.5):
        assert spanledger.current_tags() == {"customer": "42", "env": "True", "team": "1.5"}


def test_scope_restores_on_exception() -> None:
    with pytest.raises(RuntimeError, match="boom"), spanledger.tags(customer="acme"):
        raise RuntimeError("boom")
    assert spanledger.current_tags() == {}


def test_decorated_function_runs_in_scope_and_restores_on_exception() -> None:
    @spanledger.tags(feature="search")
    def work(fail: bool) -> dict[str, str]:
        if fail:
            raise ValueError("bad")
        return spanledger.current_tags()

    with spanledger.tags(customer="acme"):
        assert work(False) == {"customer": "acme", "feature": "search"}
        with pytest.raises(ValueError, match="bad"):
            work(True)
        assert spanledger.current_tags() == {"customer": "acme"}
    assert work.__name__ == "work"


def test_decorated_coroutine_function() -> None:
    @spanledger.tags(feature="search")
    async def work() -> dict[str, str]:
        await asyncio.sleep(0)
        return spanledger.current_tags()

    async def main() -> tuple[dict[str, str], dict[str, str]]:
        with spanledger.tags(customer="acme"):
            inside = await work()
            return inside, spanledger.current_tags()

    inside, after = asyncio.run(main())
    assert inside == {"customer": "acme", "feature": "search"}
    assert after == {"customer": "acme"}


def test_async_with_is_supported() -> None:
    async def main() -> dict[str, str]:
        async with spanledger.tags(customer="acme") as in_effect:
            assert spanledger.current_tags() == in_effect
        return spanledger.current_tags()

    assert asyncio.run(main()) == {}


def test_decorated_generator_is_in_scope_only_while_running() -> None:
    @spanledger.tags(feature="stream")
    def produce():
        received = yield spanledger.current_tags()
        yield {"received": received, **spanledger.current_tags()}
        return "done"

    with spanledger.tags(customer="acme"):
        generator = produce()
        assert next(generator) == {"customer": "acme", "feature": "stream"}
        assert spanledger.current_tags() == {"customer": "acme"}
    assert spanledger.current_tags() == {}
    # Resumed outside the caller's scope: the decorator's tags only.
    assert generator.send("hello") == {"received": "hello", "feature": "stream"}
    with pytest.raises(StopIteration) as stop:
        next(generator)
    assert stop.value.value == "done"


def test_decorated_generator_receives_throw_and_close() -> None:
    seen: list[object] = []

    @spanledger.tags(feature="stream")
    def produce():
        try:
            while True:
                try:
                    yield 1
                except KeyError as exc:
                    seen.append((str(exc), spanledger.current_tags()))
        finally:
            seen.append(("closed", spanledger.current_tags()))

    generator = produce()
    assert next(generator) == 1
    assert generator.throw(KeyError("k")) == 1
    generator.close()
    assert seen == [("'k'", {"feature": "stream"}), ("closed", {"feature": "stream"})]
    assert spanledger.current_tags() == {}


def test_decorated_async_generator() -> None:
    @spanledger.tags(feature="stream")
    async def produce():
        for index in range(2):
            await asyncio.sleep(0)
            yield index, spanledger.current_tags()

    async def main() -> list[object]:
        items = []
        with spanledger.tags(customer="acme"):
            async for item in produce():
                items.append((item, spanledger.current_tags()))
        return items

    assert asyncio.run(main()) == [
        ((0, {"customer": "acme", "feature": "stream"}), {"customer": "acme"}),
        ((1, {"customer": "acme", "feature": "stream"}), {"customer": "acme"}),
    ]


def test_decorated_async_generator_closed_early() -> None:
    closed: list[dict[str, str]] = []

    @spanledger.tags(feature="stream")
    async def produce():
        try:
            while True:
                yield 1
        finally:
            closed.append(spanledger.current_tags())

    async def main() -> None:
        generator = produce()
        assert await anext(generator) == 1
        await generator.aclose()

    asyncio.run(main())
    assert closed == [{"feature": "stream"}]


def test_invalid_key_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="not a valid W3C baggage key"):
        spanledger.tags(**{"cust omer": "acme"})


def test_invalid_value_type_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match="must be a string, number, boolean or None, not list"):
        spanledger.tags(customer=["acme"])


def test_key_outside_the_allow_list_is_reported_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="spanledger.tags"):
        spanledger.tags(plan_tier_unlisted="gold")
        spanledger.tags(plan_tier_unlisted="silver")
    messages = [r.getMessage() for r in caplog.records if "plan_tier_unlisted" in r.getMessage()]
    assert len(messages) == 1
    assert "not copied onto spans" in messages[0]


def test_entry_over_the_w3c_entry_limit_is_left_out(caplog: pytest.LogCaptureFixture) -> None:
    huge = "x" * MAX_ENTRY_BYTES
    with (
        caplog.at_level(logging.WARNING, logger="spanledger.tags"),
        spanledger.tags(customer="acme", feature=huge),
    ):
        assert spanledger.current_tags() == {"customer": "acme"}
    assert any(
        "left out feature" in r.getMessage() and "W3C limits" in r.getMessage()
        for r in caplog.records
    )


def test_total_size_limit_keeps_earlier_entries(caplog: pytest.LogCaptureFixture) -> None:
    third = MAX_BAGGAGE_BYTES // 3
    with (
        caplog.at_level(logging.WARNING, logger="spanledger.tags"),
        spanledger.tags(customer="a" * third, feature="b" * third),
        spanledger.tags(team="c" * third, env="prod"),
    ):
        in_effect = spanledger.current_tags()
    assert set(in_effect) == {"customer", "feature", "env"}
    assert any("left out team" in r.getMessage() for r in caplog.records)


def test_entry_count_limit(caplog: pytest.LogCaptureFixture) -> None:
    many = {f"k{i}": "v" for i in range(MAX_BAGGAGE_ENTRIES + 3)}
    with caplog.at_level(logging.WARNING, logger="spanledger.tags"), spanledger.tags(**many):
        assert len(spanledger.current_tags()) == MAX_BAGGAGE_ENTRIES
    assert any(f"{MAX_BAGGAGE_ENTRIES} entries" in r.getMessage() for r in caplog.records)
