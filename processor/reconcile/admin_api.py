"""Read a provider's usage and cost records from its admin API, every page of them.

The admin key travels in a request header only; it is never part of a URL, an error message
or a log line. Rate-limit answers (429) are retried after the ``retry-after`` the provider
sends; 408, 5xx and network errors are retried with exponential backoff.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from spanledger.processor.reconcile import anthropic_pages, openai_pages
from spanledger.processor.reconcile.bill import BillError, Period
from spanledger.version import __version__

ANTHROPIC_VERSION = "2023-06-01"
KEY_VARIABLES = {"openai": "OPENAI_ADMIN_KEY", "anthropic": "ANTHROPIC_ADMIN_KEY"}
DEFAULT_URLS = {"openai": "https://api.openai.com", "anthropic": "https://api.anthropic.com"}
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
MAX_RETRY_AFTER = 120.0
MAX_PAGES = 10_000


@dataclass(frozen=True)
class Endpoint:
    """One record to read: ``source`` names it (``completions``, ``costs``, ``cost_report`` …)."""

    provider: str
    source: str
    path: str
    params: tuple[tuple[str, str], ...]
    max_limit: int


def endpoints(provider: str, period: Period, by_project: bool) -> list[Endpoint]:
    """The usage and cost records of ``provider`` over ``period``, in daily buckets grouped
    by model (and by project or workspace when ``by_project``)."""
    if provider == openai_pages.PROVIDER:
        window = (
            ("start_time", str(int(period.start.timestamp()))),
            ("end_time", str(int(period.end.timestamp()))),
            ("bucket_width", "1d"),
        )
        project = (("group_by[]", "project_id"),) if by_project else ()
        usage = (*window, ("group_by[]", "model"), *project)
        return [
            Endpoint(provider, "completions", "/v1/organization/usage/completions", usage, 31),
            Endpoint(provider, "embeddings", "/v1/organization/usage/embeddings", usage, 31),
            Endpoint(
                provider,
                "costs",
                "/v1/organization/costs",
                (*window, ("group_by[]", "line_item"), *project),
                180,
            ),
        ]
    if provider == anthropic_pages.PROVIDER:
        window = (
            ("starting_at", _rfc3339(period.start)),
            ("ending_at", _rfc3339(period.end)),
            ("bucket_width", "1d"),
        )
        workspace = (("group_by[]", "workspace_id"),) if by_project else ()
        return [
            Endpoint(
                provider,
                anthropic_pages.USAGE_SOURCE,
                "/v1/organizations/usage_report/messages",
                (*window, ("group_by[]", "model"), *workspace),
                31,
            ),
            Endpoint(
                provider,
                anthropic_pages.COST_SOURCE,
                "/v1/organizations/cost_report",
                (*window, ("group_by[]", "description"), *workspace),
                31,
            ),
        ]
    raise ValueError(f"no admin API for provider {provider!r} (known: openai, anthropic)")


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class AdminApi:
    """Pages of one provider's admin API. ``page_limit`` caps buckets per page (the API's own
    maximum when None); ``sleep`` is how retries wait (tests pass a recorder)."""

    def __init__(
        self,
        provider: str,
        key: str,
        base_url: str | None = None,
        *,
        page_limit: int | None = None,
        max_attempts: int = 6,
        backoff: float = 1.0,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if provider not in DEFAULT_URLS:
            raise ValueError(f"no admin API for provider {provider!r} (known: openai, anthropic)")
        if not key.strip():
            raise ValueError(f"the {provider} admin key is empty")
        self.provider = provider
        self.base_url = (base_url or DEFAULT_URLS[provider]).rstrip("/")
        self.page_limit = page_limit
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.sleep = sleep
        headers = {"user-agent": f"spanledger/{__version__}", "accept": "application/json"}
        if provider == "openai":
            headers["authorization"] = f"Bearer {key.strip()}"
        else:
            headers["x-api-key"] = key.strip()
            headers["anthropic-version"] = ANTHROPIC_VERSION
        self._client = httpx.Client(headers=headers, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> AdminApi:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def pages(self, endpoint: Endpoint, days: int) -> list[tuple[str, dict[str, Any]]]:
        """Every page of ``endpoint``, each with the request that fetched it."""
        limit = min(self.page_limit or endpoint.max_limit, endpoint.max_limit, max(days, 1))
        params = [*endpoint.params, ("limit", str(limit))]
        found: list[tuple[str, dict[str, Any]]] = []
        cursors: set[str] = set()
        while True:
            where, page = self._get(endpoint.path, params)
            found.append((where, page))
            has_more = page.get("has_more")
            if has_more is not True:
                if has_more is not False:
                    raise BillError(f"{where}: the answer has no has_more; not a page of records")
                return found
            cursor = page.get("next_page")
            if not isinstance(cursor, str) or not cursor:
                raise BillError(f"{where}: has_more is true but next_page is {cursor!r}")
            if cursor in cursors or len(found) >= MAX_PAGES:
                raise BillError(f"{where}: next_page {cursor!r} repeats; the pages do not end")
            cursors.add(cursor)
            params = [*endpoint.params, ("limit", str(limit)), ("page", cursor)]

    def _get(self, path: str, params: list[tuple[str, str]]) -> tuple[str, dict[str, Any]]:
        url = f"{self.base_url}{path}"
        delay = self.backoff
        for attempt in range(1, self.max_attempts + 1):
            request = self._client.build_request("GET", url, params=params)
            where = f"GET {request.url}"
            wait: float | None
            try:
                response = self._client.send(request)
            except httpx.HTTPError as exc:
                problem, wait = f"{type(exc).__name__}: {exc}", delay
            else:
                if response.status_code == 200:
                    return where, _page(response, where)
                problem = f"HTTP {response.status_code}: {_message(response)}"
                wait = None
                if response.status_code in RETRY_STATUSES:
                    wait = _retry_after(response) if response.status_code == 429 else None
                    wait = delay if wait is None else wait
                if wait is None:
                    raise BillError(f"{where}: {problem}{_hint(response.status_code)}")
            if attempt == self.max_attempts:
                raise BillError(f"{where}: {problem} (gave up after {attempt} attempts)")
            self.sleep(min(wait, MAX_RETRY_AFTER))
            delay = min(delay * 2, 60.0)
        raise AssertionError("unreachable")  # pragma: no cover


def _hint(status: int) -> str:
    if status in (401, 403):
        return " (is the key an admin key of this organization?)"
    return ""


def _page(response: httpx.Response, where: str) -> dict[str, Any]:
    try:
        page = json.loads(response.content, parse_float=Decimal)
    except ValueError as exc:
        raise BillError(f"{where}: the answer is not JSON: {exc}") from None
    if not isinstance(page, dict) or not isinstance(page.get("data"), list):
        raise BillError(f"{where}: the answer is not a page of records (no data array)")
    return page


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"]
    return json.dumps(body)[:200]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())
