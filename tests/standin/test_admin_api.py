"""The stand-in's admin usage and cost APIs: billed from the calls it answered, dated by its
clock, in the providers' shapes (OpenAI's read back by the real SDK with strict validation),
paginated, authenticated, and failing on a queued scenario like the API routes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import anthropic
import httpx
import openai
import pytest

from spanledger.processor.model import Usage
from spanledger.processor.pricing import PriceBook
from spanledger.standin import SCENARIO_HEADER, Scenario, StandIn, estimate_tokens

DAY = 86_400
START = int(datetime(2031, 3, 9, tzinfo=UTC).timestamp())
"""Midnight UTC of the first day the clock shows (any fixed date: the clock is injected)."""
HAIKU_PRICES = {"input": "1.5", "cache_read": "0.2", "cache_write": "2", "output": "7"}


class Clock:
    def __init__(self) -> None:
        self.now = START + 9 * 3600.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def billed(clock: Clock) -> Iterator[StandIn]:
    """A stand-in that answered calls on three days (the middle day twice as many)."""
    with StandIn(clock=clock, prices={"claude-haiku-4-5": HAIKU_PRICES}) as llm:
        oai = openai.OpenAI(api_key="k", base_url=llm.openai_base_url, max_retries=0)
        claude = anthropic.Anthropic(api_key="k", base_url=llm.anthropic_base_url, max_retries=0)
        with oai, claude:
            for day in range(3):
                clock.now = START + day * DAY + 3600
                for _ in range(2 if day == 1 else 1):
                    oai.chat.completions.create(
                        model="gpt-4o-mini",
                        messages=[{"role": "user", "content": "hi"}],
                        extra_headers=_usage(
                            prompt_tokens=12_000,
                            completion_tokens=800,
                            prompt_tokens_details={"cached_tokens": 2_000},
                        ),
                    )
                    oai.embeddings.create(model="text-embedding-3-small", input=["a b c d"])
                    with claude.messages.stream(
                        model="claude-haiku-4-5",
                        max_tokens=64,
                        messages=[{"role": "user", "content": "hi"}],
                        extra_headers=_usage(
                            input_tokens=3_000,
                            output_tokens=400,
                            cache_read_input_tokens=5_000,
                            cache_creation={
                                "ephemeral_5m_input_tokens": 600,
                                "ephemeral_1h_input_tokens": 100,
                            },
                        ),
                    ) as stream:
                        stream.get_final_message()
            # Not billed: a failed call and a token count.
            llm.push(Scenario(error=500))
            with pytest.raises(openai.InternalServerError):
                oai.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
                )
            claude.messages.count_tokens(
                model="claude-haiku-4-5", messages=[{"role": "user", "content": "x"}]
            )
        yield llm


def _usage(**usage: object) -> dict[str, str]:
    return {SCENARIO_HEADER: json.dumps({"usage": usage})}


def _get(
    llm: StandIn, path: str, params: list[tuple[str, object]], **headers: str
) -> httpx.Response:
    return httpx.get(llm.url + path, params=params, headers=headers)


def test_openai_usage_read_by_the_real_sdk_with_strict_validation(billed: StandIn) -> None:
    admin = openai.OpenAI(
        api_key="unused",
        admin_api_key="admin-key",
        base_url=billed.openai_base_url,
        max_retries=0,
        _strict_response_validation=True,
    )
    with admin:
        first = admin.admin.organization.usage.completions(
            start_time=START, end_time=START + 3 * DAY, group_by=["model"], limit=2
        )
        second = admin.admin.organization.usage.completions(
            start_time=START,
            end_time=START + 3 * DAY,
            group_by=["model"],
            limit=2,
            page=first.next_page,
        )
        costs = admin.admin.organization.usage.costs(
            start_time=START, end_time=START + 3 * DAY, group_by=["line_item"], limit=3
        )
        embeddings = admin.admin.organization.usage.embeddings(
            start_time=START, end_time=START + DAY, group_by=["model"]
        )
    assert first.has_more and first.next_page and not second.has_more
    assert [b.start_time for b in [*first.data, *second.data]] == [
        START + d * DAY for d in range(3)
    ]
    requests = [r for b in [*first.data, *second.data] for r in b.results]
    assert [r.model for r in requests] == ["gpt-4o-mini"] * 3
    assert [r.num_model_requests for r in requests] == [1, 2, 1]
    assert [r.input_tokens for r in requests] == [12_000, 24_000, 12_000]
    assert [r.input_cached_tokens for r in requests] == [2_000, 4_000, 2_000]
    assert [r.output_tokens for r in requests] == [800, 1_600, 800]
    (embedding,) = embeddings.data[0].results
    assert (embedding.model, embedding.num_model_requests, embedding.input_tokens) == (
        "text-embedding-3-small",
        1,
        estimate_tokens("a b c d"),
    )
    # Costs: list prices of the table, per line item, in dollars.
    book = PriceBook()
    table = book.price(
        Usage("chat", "openai", "gpt-4o-mini", "gpt-4o-mini", 12_000, 800, 2_000),
        (START + 3600) * 10**9,
    )
    day_one = {r.line_item: Decimal(repr(r.amount.value)) for r in costs.data[0].results}
    assert day_one["gpt-4o-mini, input"] == table.input
    assert day_one["gpt-4o-mini, cached input"] == table.cache_read
    assert day_one["gpt-4o-mini, output"] == table.output
    assert {r.amount.currency for b in costs.data for r in b.results} == {"usd"}
    assert sum(day_one.values()) > table.total  # the embedding's charge is billed too


def test_anthropic_reports_bill_the_stream_at_the_stand_ins_own_prices(billed: StandIn) -> None:
    headers = {"x-api-key": "admin-key", "anthropic-version": "2023-06-01"}
    window = [("starting_at", "2031-03-09T00:00:00Z"), ("ending_at", "2031-03-12T00:00:00Z")]
    usage = _get(
        billed,
        "/v1/organizations/usage_report/messages",
        [*window, ("group_by[]", "model")],
        **headers,
    ).json()
    assert not usage["has_more"] and usage["next_page"] is None
    assert [b["starting_at"] for b in usage["data"]] == [
        "2031-03-09T00:00:00Z",
        "2031-03-10T00:00:00Z",
        "2031-03-11T00:00:00Z",
    ]
    (middle,) = usage["data"][1]["results"]
    assert middle == {
        "uncached_input_tokens": 6_000,
        "cache_creation": {"ephemeral_1h_input_tokens": 200, "ephemeral_5m_input_tokens": 1_200},
        "cache_read_input_tokens": 10_000,
        "output_tokens": 800,
        "server_tool_use": {"web_search_requests": 0},
        "api_key_id": None,
        "workspace_id": None,
        "model": "claude-haiku-4-5",
        "service_tier": None,
        "context_window": None,
    }
    costs = _get(
        billed,
        "/v1/organizations/cost_report",
        [*window, ("group_by[]", "description")],
        **headers,
    ).json()
    charges = {r["token_type"]: Decimal(r["amount"]) for r in costs["data"][0]["results"]}
    million = Decimal(1_000_000)
    # Amounts are decimal text in cents.
    assert charges == {
        "uncached_input_tokens": 3_000 * Decimal("1.5") / million * 100,
        "cache_read_input_tokens": 5_000 * Decimal("0.2") / million * 100,
        "cache_creation.ephemeral_5m_input_tokens": 600 * Decimal(2) / million * 100,
        "cache_creation.ephemeral_1h_input_tokens": 100 * Decimal(2) / million * 100,
        "output_tokens": 400 * Decimal(7) / million * 100,
    }
    result = costs["data"][0]["results"][0]
    assert result["currency"] == "USD" and result["model"] == "claude-haiku-4-5"
    assert result["description"].startswith("claude-haiku-4-5 Usage - ")


def test_pages_follow_next_page_to_the_end(billed: StandIn) -> None:
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    params: list[tuple[str, object]] = [
        ("starting_at", "2031-03-08T00:00:00Z"),
        ("ending_at", "2031-03-13T00:00:00Z"),
        ("limit", 2),
    ]
    starts, page = [], None
    for _ in range(5):
        answer = _get(
            billed,
            "/v1/organizations/cost_report",
            [*params, *([("page", page)] if page else [])],
            **headers,
        ).json()
        starts += [b["starting_at"][:10] for b in answer["data"]]
        page = answer["next_page"]
        if not answer["has_more"]:
            break
    assert starts == ["2031-03-08", "2031-03-09", "2031-03-10", "2031-03-11", "2031-03-12"]
    assert page is None


def test_admin_requests_need_a_key_and_honour_queued_errors(clock: Clock) -> None:
    with StandIn(clock=clock, admin_key="the-admin-key") as llm:
        path, params = "/v1/organization/costs", [("start_time", START)]
        assert _get(llm, path, params).status_code == 401
        wrong = _get(llm, path, params, authorization="Bearer nope")
        assert wrong.status_code == 401
        assert wrong.json()["error"]["code"] == "invalid_api_key"
        assert _get(llm, path, params, authorization="Bearer the-admin-key").status_code == 200
        anthropic_path = "/v1/organizations/usage_report/messages"
        no_version = _get(
            llm,
            anthropic_path,
            [("starting_at", "2031-03-09T00:00:00Z")],
            **{"x-api-key": "the-admin-key"},
        )
        assert no_version.status_code == 400
        assert no_version.json()["type"] == "error"
        llm.push(Scenario(error=429, retry_after=3))
        limited = _get(llm, path, params, authorization="Bearer the-admin-key")
        assert limited.status_code == 429 and limited.headers["retry-after"] == "3"
        assert _get(llm, path, params, authorization="Bearer the-admin-key").status_code == 200
        hourly = _get(
            llm, path, [*params, ("bucket_width", "1h")], authorization="Bearer the-admin-key"
        )
        assert hourly.status_code == 400 and "1d" in hourly.json()["error"]["message"]
        assert [r.method for r in llm.requests] == ["GET"] * 7


def test_clear_forgets_the_bill(billed: StandIn) -> None:
    assert billed.billing.calls()
    billed.clear()
    assert billed.billing.calls() == []
