"""The budget status endpoint, for people, dashboards and the instrumentation's pre-call check.

- ``GET /v1/budget/status``: every limit's spend in its current windows (JSON).
- ``POST /v1/budget/check`` with ``{"tags": {"customer": "acme", ...}}``: 200 and
  ``{"allow": true, "cache_for": s}``, or 429 with ``{"allow": false, "reasons": [...],
  "retry_after": s, "cache_for": s}`` and a ``Retry-After`` header. A check counts one request
  against the rate limits covering the tags.

With a ``bearer_token`` configured, every request must carry ``Authorization: Bearer <token>``
(else 401): the status lists every customer's spend, and a check both reveals whether a customer
is over budget and uses up rate limits. Served by aiohttp (``spanledger.processor.httpserver``:
connection limit, idle and header timeouts); the status and check run on a small thread pool, so
a slow shared store never stalls the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from typing import Any

from aiohttp import web

from spanledger.processor.httpserver import BackgroundServer, bearer_matches, read_body
from spanledger.processor.sinks.budgets.config import StatusConfig

log = logging.getLogger("spanledger.budgets")

STATUS_PATH = "/v1/budget/status"
CHECK_PATH = "/v1/budget/check"
MAX_BODY_BYTES = 64 * 1024
MAX_CONNECTIONS = 256
IDLE_TIMEOUT = 15.0
_WORKERS = 4

CheckFn = Callable[[dict[str, str]], tuple[bool, dict[str, Any]]]
"""``tags -> (allowed, answer document)``"""


class StatusServer:
    """Serves the status and check endpoints from a background thread."""

    def __init__(
        self, config: StatusConfig, status: Callable[[], dict[str, Any]], check: CheckFn
    ) -> None:
        problems = config.problems()
        if problems:
            raise ValueError("invalid budget status configuration: " + "; ".join(problems))
        host, _, port = config.endpoint.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        self._token = config.bearer_token
        self._status = status
        self._check = check
        self._pool = ThreadPoolExecutor(_WORKERS, thread_name_prefix="budget-status")
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_route("*", "/{path:.*}", self._handle)
        self._server = BackgroundServer(
            "budget status endpoint",
            app,
            host,
            int(port),
            max_connections=MAX_CONNECTIONS,
            idle_timeout=IDLE_TIMEOUT,
        )
        try:
            self._server.start()
        except OSError as exc:
            self._pool.shutdown(wait=False)
            raise OSError(f"cannot serve budget status on {config.endpoint}: {exc}") from None
        self.host = host
        self.port: int = self._server.port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        self._server.stop(1.0)
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.method == "POST":
            length = request.content_length
            if length is None or length > MAX_BODY_BYTES:
                too_long = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
                response = _answer(
                    HTTPStatus.LENGTH_REQUIRED if length is None else too_long,
                    {"error": f"send a JSON body of at most {MAX_BODY_BYTES} bytes with a length"},
                )
                response.force_close()
                return response
        if not bearer_matches(self._token, request.headers.get("Authorization")):
            return _answer(
                HTTPStatus.UNAUTHORIZED,
                {"error": "missing or invalid bearer token"},
                {"WWW-Authenticate": "Bearer"},
            )
        loop = asyncio.get_running_loop()
        if request.method == "GET":
            if request.path != STATUS_PATH:
                return _answer(HTTPStatus.NOT_FOUND, {"error": f"no such path; try {STATUS_PATH}"})
            try:
                document = await loop.run_in_executor(self._pool, self._status)
            except Exception as exc:
                log.exception("budget status failed")
                return _answer(
                    HTTPStatus.SERVICE_UNAVAILABLE, {"error": f"status unavailable: {exc}"}
                )
            return _answer(HTTPStatus.OK, document)
        if request.method != "POST":
            return _answer(
                HTTPStatus.METHOD_NOT_ALLOWED, {"error": "use GET for status, POST for check"}
            )
        if request.path != CHECK_PATH:
            return _answer(HTTPStatus.NOT_FOUND, {"error": f"no such path; try {CHECK_PATH}"})
        try:
            body = await read_body(request, MAX_BODY_BYTES, IDLE_TIMEOUT)
        except TimeoutError:
            body = None
        tags = _tags_of(body) if body is not None else None
        if tags is None:
            return _answer(
                HTTPStatus.BAD_REQUEST,
                {"error": 'expected {"tags": {"key": "value", ...}} with string values'},
            )
        try:
            allowed, answer = await loop.run_in_executor(self._pool, self._check, tags)
        except Exception as exc:
            log.exception("budget check failed")
            return _answer(HTTPStatus.SERVICE_UNAVAILABLE, {"error": f"check unavailable: {exc}"})
        if allowed:
            return _answer(HTTPStatus.OK, answer)
        retry = answer.get("retry_after")
        extra = {"Retry-After": str(math.ceil(retry))} if isinstance(retry, int | float) else {}
        return _answer(HTTPStatus.TOO_MANY_REQUESTS, answer, extra)


def _answer(
    status: HTTPStatus, document: dict[str, Any], headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(document).encode(),
        content_type="application/json",
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def _tags_of(body: bytes) -> dict[str, str] | None:
    try:
        document = json.loads(body)
    except ValueError:
        return None
    tags = document.get("tags", {}) if isinstance(document, dict) else None
    if not isinstance(tags, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
    ):
        return None
    return tags
