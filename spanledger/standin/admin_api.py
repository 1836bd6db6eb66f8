"""The providers' admin APIs, served from the calls the stand-in answered (its bill).

- OpenAI: ``GET /v1/organization/usage/completions``, ``…/usage/embeddings`` and
  ``/v1/organization/costs`` (``Authorization: Bearer <admin key>``; Unix-second
  ``start_time``/``end_time``; ``group_by`` or ``group_by[]``; cursor ``page``).
- Anthropic: ``GET /v1/organizations/usage_report/messages`` and
  ``/v1/organizations/cost_report`` (``x-api-key`` and ``anthropic-version``; RFC 3339
  ``starting_at``/``ending_at``; ``group_by[]``; cursor ``page``).

Daily buckets only (``bucket_width=1d``), in UTC, from the stand-in's clock; ``limit`` buckets
per page with the providers' defaults and maxima; ``has_more``/``next_page`` as the providers
send them. OpenAI amounts are JSON numbers in dollars; Anthropic's are decimal text in cents.
A queued scenario with ``error`` fails the next admin request as it fails an API request (with
``retry_after`` for a 429).
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from spanledger.standin.billing import ANTHROPIC, OPENAI, TOKEN_TYPES, BilledCall, Billing
from spanledger.standin.errors import anthropic_error, openai_error
from spanledger.standin.replies import JsonReply
from spanledger.standin.scenario import Scenario

DAY = 86_400
_OPENAI_LINE = {
    "input": "input",
    "cache_read": "cached input",
    "cache_write_5m": "cache write input",
    "cache_write_1h": "cache write input",
    "output": "output",
}
_ANTHROPIC_TOKEN_TYPE = {
    "input": ("uncached_input_tokens", "Input Tokens"),
    "cache_read": ("cache_read_input_tokens", "Cache Read Input Tokens"),
    "cache_write_5m": ("cache_creation.ephemeral_5m_input_tokens", "5m Cache Write Input Tokens"),
    "cache_write_1h": ("cache_creation.ephemeral_1h_input_tokens", "1h Cache Write Input Tokens"),
    "output": ("output_tokens", "Output Tokens"),
}


class AdminRequestError(Exception):
    """A request the admin API refuses with 400; the message says why."""


@dataclass
class Query:
    """The query string, repeated keys kept (``group_by`` and ``group_by[]`` are one)."""

    pairs: list[tuple[str, str]]

    @classmethod
    def parse(cls, text: str) -> Query:
        return cls(parse_qsl(text, keep_blank_values=True))

    def values(self, name: str) -> list[str]:
        return [v for k, v in self.pairs if k in (name, f"{name}[]")]

    def one(self, name: str) -> str | None:
        found = self.values(name)
        return found[-1] if found else None


@dataclass(frozen=True)
class Route:
    provider: str
    answer: Callable[[Query, Billing, float], dict[str, Any]]


def _time(query: Query, name: str, default: float | None, parse: Callable[[str], int]) -> int:
    """The query's time ``name`` in Unix seconds (``default`` when absent; None: required)."""
    text = query.one(name)
    if text is None:
        if default is None:
            raise AdminRequestError(f"{name} is required")
        return int(default)
    return parse(text)


def _unix(query: Query, name: str, default: float | None) -> int:
    def parse(text: str) -> int:
        try:
            return int(text)
        except ValueError:
            raise AdminRequestError(f"{name} must be Unix seconds, got {text!r}") from None

    return _time(query, name, default, parse)


def _rfc3339(query: Query, name: str, default: float | None) -> int:
    def parse(text: str) -> int:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise AdminRequestError(f"{name} must be an RFC 3339 time, got {text!r}") from None
        return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())

    return _time(query, name, default, parse)


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _limit(query: Query, default: int, most: int) -> int:
    text = query.one("limit")
    if text is None:
        return default
    if not text.isdigit() or not 1 <= int(text) <= most:
        raise AdminRequestError(f"limit must be between 1 and {most}, got {text!r}")
    return int(text)


def _group_by(query: Query, allowed: Iterable[str]) -> set[str]:
    chosen = set(query.values("group_by"))
    unknown = sorted(chosen - set(allowed))
    if unknown:
        raise AdminRequestError(f"cannot group by {', '.join(unknown)}")
    return chosen


def _daily(query: Query) -> None:
    width = query.one("bucket_width") or "1d"
    if width != "1d":
        raise AdminRequestError(f"the stand-in serves daily buckets only (1d), not {width!r}")


def _pages(
    start: int, end: int, cursor: str | None, limit: int, decode: Callable[[str], int]
) -> tuple[list[int], int | None]:
    """The bucket starts of this page and the start of the next page (None: last page)."""
    first = start - start % DAY
    if cursor:
        first = decode(cursor)
    starts = list(range(first, end, DAY))
    return starts[:limit], starts[limit] if len(starts) > limit else None


def _openai_cursor(start: int) -> str:
    return base64.urlsafe_b64encode(f"bucket:{start}".encode()).decode()


def _openai_decode(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
        return int(text.removeprefix("bucket:"))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise AdminRequestError(f"page {cursor!r} is not a cursor of this API") from None


def _anthropic_cursor(start: int) -> str:
    return "page_" + base64.urlsafe_b64encode(_iso(start).encode()).decode()


def _anthropic_decode(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor.removeprefix("page_").encode()).decode()
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise AdminRequestError(f"page {cursor!r} is not a cursor of this API") from None


def _in_day(calls: Sequence[BilledCall], start: int) -> list[BilledCall]:
    return [c for c in calls if start <= c.at < start + DAY]


def _grouped(
    calls: Iterable[BilledCall], key: Callable[[BilledCall], tuple[Any, ...]]
) -> dict[tuple[Any, ...], list[BilledCall]]:
    groups: dict[tuple[Any, ...], list[BilledCall]] = {}
    for call in calls:
        groups.setdefault(key(call), []).append(call)
    return dict(sorted(groups.items(), key=lambda item: tuple(str(v) for v in item[0])))


def _by_model_and_project(
    calls: Sequence[BilledCall], day: int, groups: set[str], project_group: str
) -> dict[tuple[Any, ...], list[BilledCall]]:
    """The calls of ``day`` per ``(model, project)``, each None unless grouped by it."""
    return _grouped(
        _in_day(calls, day),
        lambda c: (
            c.model if "model" in groups else None,
            c.project if project_group in groups else None,
        ),
    )


def _filter(calls: list[BilledCall], query: Query, name: str, field: str) -> list[BilledCall]:
    wanted = set(query.values(name))
    return [c for c in calls if getattr(c, field) in wanted] if wanted else calls


# OpenAI


_OPENAI_USAGE_GROUPS = (
    "model",
    "project_id",
    "api_key_id",
    "user_id",
    "batch",
    "service_tier",
    "api_source",
)


def _openai_usage(record: str) -> Callable[[Query, Billing, float], dict[str, Any]]:
    def answer(query: Query, billing: Billing, now: float) -> dict[str, Any]:
        _daily(query)
        start = _unix(query, "start_time", None)
        end = _unix(query, "end_time", now)
        limit = _limit(query, 7, 31)
        groups = _group_by(query, _OPENAI_USAGE_GROUPS)
        calls = [c for c in billing.calls() if c.provider == OPENAI and c.record == record]
        calls = _filter(_filter(calls, query, "models", "model"), query, "project_ids", "project")
        starts, following = _pages(start, end, query.one("page"), limit, _openai_decode)
        data = []
        for day in starts:
            grouped = _by_model_and_project(calls, day, groups, "project_id")
            results = [
                _openai_usage_result(record, key, members) for key, members in grouped.items()
            ]
            data.append(
                {"object": "bucket", "start_time": day, "end_time": day + DAY, "results": results}
            )
        return _openai_page(data, following)

    return answer


def _openai_usage_result(
    record: str, key: tuple[Any, ...], calls: list[BilledCall]
) -> dict[str, Any]:
    model, project = key
    common = {
        "num_model_requests": len(calls),
        "project_id": project,
        "user_id": None,
        "api_key_id": None,
        "model": model,
    }
    inputs = sum(c.input_tokens for c in calls)
    if record == "embeddings":
        return {"object": "organization.usage.embeddings.result", "input_tokens": inputs, **common}
    return {
        "object": "organization.usage.completions.result",
        "input_tokens": inputs,
        "output_tokens": sum(c.output for c in calls),
        "input_cached_tokens": sum(c.cache_read for c in calls),
        "input_cache_write_tokens": sum(c.cache_write_5m + c.cache_write_1h for c in calls),
        "input_uncached_tokens": sum(c.input for c in calls),
        "input_audio_tokens": 0,
        "output_audio_tokens": 0,
        **common,
        "batch": None,
        "service_tier": None,
    }


def _openai_costs(query: Query, billing: Billing, now: float) -> dict[str, Any]:
    _daily(query)
    start = _unix(query, "start_time", None)
    end = _unix(query, "end_time", now)
    limit = _limit(query, 7, 180)
    groups = _group_by(query, ("line_item", "project_id", "api_key_id", "user_id", "api_source"))
    calls = _filter(
        [c for c in billing.calls() if c.provider == OPENAI], query, "project_ids", "project"
    )
    starts, following = _pages(start, end, query.one("page"), limit, _openai_decode)
    data = []
    for day in starts:
        totals: dict[tuple[Any, ...], list[Decimal]] = {}
        for call, kind, amount, count in _charges(billing, _in_day(calls, day)):
            line = f"{call.model}, {_OPENAI_LINE[kind]}" if "line_item" in groups else None
            project = call.project if "project_id" in groups else None
            total = totals.setdefault((line, project), [Decimal(0), Decimal(0)])
            total[0] += amount
            total[1] += count
        results = [
            {
                "object": "organization.costs.result",
                "amount": {"value": float(amount), "currency": "usd"},
                "line_item": line,
                "project_id": project,
                "api_key_id": None,
                "quantity": float(count) if line is not None else None,
            }
            for (line, project), (amount, count) in sorted(totals.items(), key=lambda i: str(i[0]))
        ]
        data.append(
            {"object": "bucket", "start_time": day, "end_time": day + DAY, "results": results}
        )
    return _openai_page(data, following)


def _openai_page(data: list[dict[str, Any]], following: int | None) -> dict[str, Any]:
    return {
        "object": "page",
        "data": data,
        "has_more": following is not None,
        "next_page": _openai_cursor(following) if following is not None else None,
    }


def _charges(
    billing: Billing, calls: Iterable[BilledCall]
) -> Iterable[tuple[BilledCall, str, Decimal, int]]:
    """``(call, token type, amount, tokens)`` for every non-zero charge of ``calls``."""
    for call in calls:
        charges = billing.charges(call)
        if charges is None:
            continue
        counts = dict(
            zip(
                TOKEN_TYPES,
                (
                    call.input,
                    call.cache_read,
                    call.cache_write_5m,
                    call.cache_write_1h,
                    call.output,
                ),
                strict=True,
            )
        )
        for kind in TOKEN_TYPES:
            if counts[kind] or charges[kind]:
                yield call, kind, charges[kind], counts[kind]


# Anthropic


_ANTHROPIC_USAGE_GROUPS = (
    "model",
    "workspace_id",
    "api_key_id",
    "service_tier",
    "context_window",
    "inference_geo",
    "speed",
    "account_id",
    "service_account_id",
)


def _anthropic_usage(query: Query, billing: Billing, now: float) -> dict[str, Any]:
    _daily(query)
    start = _rfc3339(query, "starting_at", None)
    end = _rfc3339(query, "ending_at", now)
    limit = _limit(query, 7, 31)
    groups = _group_by(query, _ANTHROPIC_USAGE_GROUPS)
    calls = _filter(
        [c for c in billing.calls() if c.provider == ANTHROPIC], query, "models", "model"
    )
    calls = _filter(calls, query, "workspace_ids", "project")
    starts, following = _pages(start, end, query.one("page"), limit, _anthropic_decode)
    data = []
    for day in starts:
        grouped = _by_model_and_project(calls, day, groups, "workspace_id")
        results = [
            {
                "uncached_input_tokens": sum(c.input for c in members),
                "cache_creation": {
                    "ephemeral_1h_input_tokens": sum(c.cache_write_1h for c in members),
                    "ephemeral_5m_input_tokens": sum(c.cache_write_5m for c in members),
                },
                "cache_read_input_tokens": sum(c.cache_read for c in members),
                "output_tokens": sum(c.output for c in members),
                "server_tool_use": {"web_search_requests": 0},
                "api_key_id": None,
                "workspace_id": workspace,
                "model": model,
                "service_tier": "standard" if "service_tier" in groups else None,
                "context_window": "0-200k" if "context_window" in groups else None,
            }
            for (model, workspace), members in grouped.items()
        ]
        data.append({"starting_at": _iso(day), "ending_at": _iso(day + DAY), "results": results})
    return _anthropic_page(data, following)


def _anthropic_costs(query: Query, billing: Billing, now: float) -> dict[str, Any]:
    start = _rfc3339(query, "starting_at", None)
    end = _rfc3339(query, "ending_at", now)
    _daily(query)
    limit = _limit(query, 7, 31)
    groups = _group_by(query, ("workspace_id", "description"))
    calls = [c for c in billing.calls() if c.provider == ANTHROPIC]
    starts, following = _pages(start, end, query.one("page"), limit, _anthropic_decode)
    described = "description" in groups
    data = []
    for day in starts:
        totals: dict[tuple[Any, ...], Decimal] = {}
        for call, kind, amount, _count in _charges(billing, _in_day(calls, day)):
            key = (
                call.model if described else None,
                kind if described else None,
                call.project if "workspace_id" in groups else None,
            )
            totals[key] = totals.get(key, Decimal(0)) + amount
        results = []
        for (model, kind, workspace), amount in sorted(totals.items(), key=lambda i: str(i[0])):
            token_type, label = _ANTHROPIC_TOKEN_TYPE[kind] if kind else (None, None)
            results.append(
                {
                    "currency": "USD",
                    "amount": format(amount * 100, "f"),
                    "workspace_id": workspace,
                    "description": f"{model} Usage - {label}" if described else None,
                    "cost_type": "tokens" if described else None,
                    "context_window": "0-200k" if described else None,
                    "model": model,
                    "service_tier": "standard" if described else None,
                    "token_type": token_type,
                }
            )
        data.append({"starting_at": _iso(day), "ending_at": _iso(day + DAY), "results": results})
    return _anthropic_page(data, following)


def _anthropic_page(data: list[dict[str, Any]], following: int | None) -> dict[str, Any]:
    return {
        "data": data,
        "has_more": following is not None,
        "next_page": _anthropic_cursor(following) if following is not None else None,
    }


ROUTES = {
    "/v1/organization/usage/completions": Route(OPENAI, _openai_usage("completions")),
    "/v1/organization/usage/embeddings": Route(OPENAI, _openai_usage("embeddings")),
    "/v1/organization/costs": Route(OPENAI, _openai_costs),
    "/v1/organizations/usage_report/messages": Route(ANTHROPIC, _anthropic_usage),
    "/v1/organizations/cost_report": Route(ANTHROPIC, _anthropic_costs),
}


def _authorized(provider: str, headers: Mapping[str, str], admin_key: str | None) -> str | None:
    """None when the request carries the admin key (any key, without ``admin_key``); else why
    not."""
    if provider == OPENAI:
        scheme, _, key = headers.get("authorization", "").partition(" ")
        key = key.strip() if scheme.lower() == "bearer" else ""
    else:
        if not headers.get("anthropic-version"):
            return "anthropic-version: header is required"
        key = headers.get("x-api-key", "").strip()
    if not key:
        return "an admin API key is required"
    if admin_key is not None and key != admin_key:
        return "invalid admin API key"
    return None


def answer(
    path: str,
    query: str,
    headers: Mapping[str, str],
    billing: Billing,
    *,
    scenario: Scenario | None,
    admin_key: str | None,
    request_id: str,
) -> JsonReply:
    """The answer to ``GET path?query`` (``path`` must be one of ``ROUTES``)."""
    route = ROUTES[path]

    def fail(
        status: int, message: str | None = None, retry_after: float | None = None
    ) -> JsonReply:
        if route.provider == OPENAI:
            return openai_error(status, message, retry_after)
        return anthropic_error(status, message, retry_after, request_id=request_id)

    if scenario is not None and scenario.delay:
        time.sleep(scenario.delay)
    if scenario is not None and scenario.error is not None:
        reply = fail(scenario.error, scenario.error_message, scenario.retry_after)
        reply.headers.update(scenario.response_headers or {})
        return reply
    problem = _authorized(route.provider, headers, admin_key)
    if problem is not None:
        return fail(401 if "key" in problem else 400, problem)
    try:
        return JsonReply(route.answer(Query.parse(query), billing, billing.clock()))
    except AdminRequestError as exc:
        return fail(400, str(exc))
