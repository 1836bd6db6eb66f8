"""The budget status endpoint, for people, dashboards and the instrumentation's pre-call check.

- ``GET /v1/budget/status``: every limit's spend in its current windows (JSON).
- ``POST /v1/budget/check`` with ``{"tags": {"customer": "acme", ...}}``: 200 and
  ``{"allow": true, "cache_for": s}``, or 429 with ``{"allow": false, "reasons": [...],
  "retry_after": s, "cache_for": s}`` and a ``Retry-After`` header. A check counts one request
  against the rate limits covering the tags.

With a ``bearer_token`` configured, every request must carry ``Authorization: Bearer <token>``
(else 401).
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from spanledger.processor.budgets.config import StatusConfig

log = logging.getLogger("spanledger.budgets")

STATUS_PATH = "/v1/budget/status"
CHECK_PATH = "/v1/budget/check"
MAX_BODY_BYTES = 64 * 1024

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
        handler = type("Handler", (_Handler,), {"token": config.bearer_token})
        try:
            self._server = _Server((host, int(port)), handler)
        except OSError as exc:
            raise OSError(f"cannot serve budget status on {config.endpoint}: {exc}") from exc
        self._server.status = status
        self._server.check = check
        self.host = host
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="spanledger-budget-status",
            daemon=True,
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    status: Callable[[], dict[str, Any]]
    check: CheckFn


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    token: str | None = None
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("status endpoint: " + format, *args)

    def do_GET(self) -> None:
        if not self._authorized():
            return
        if self.path.split("?", 1)[0] != STATUS_PATH:
            self._answer(HTTPStatus.NOT_FOUND, {"error": f"no such path; try {STATUS_PATH}"})
            return
        try:
            document = self.server.status()
        except Exception as exc:
            log.exception("budget status failed")
            self._answer(HTTPStatus.SERVICE_UNAVAILABLE, {"error": f"status unavailable: {exc}"})
            return
        self._answer(HTTPStatus.OK, document)

    def do_POST(self) -> None:
        length = self.headers.get("Content-Length", "")
        if not length.isdigit() or int(length) > MAX_BODY_BYTES:
            self.close_connection = True
            too_long = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
            self._answer(
                HTTPStatus.LENGTH_REQUIRED if not length.isdigit() else too_long,
                {"error": f"send a JSON body of at most {MAX_BODY_BYTES} bytes with a length"},
            )
            return
        body = self.rfile.read(int(length))
        if not self._authorized():
            return
        if self.path.split("?", 1)[0] != CHECK_PATH:
            self._answer(HTTPStatus.NOT_FOUND, {"error": f"no such path; try {CHECK_PATH}"})
            return
        tags = _tags_of(body)
        if tags is None:
            self._answer(
                HTTPStatus.BAD_REQUEST,
                {"error": 'expected {"tags": {"key": "value", ...}} with string values'},
            )
            return
        try:
            allowed, answer = self.server.check(tags)
        except Exception as exc:
            log.exception("budget check failed")
            self._answer(HTTPStatus.SERVICE_UNAVAILABLE, {"error": f"check unavailable: {exc}"})
            return
        if allowed:
            self._answer(HTTPStatus.OK, answer)
            return
        retry = answer.get("retry_after")
        extra = {"Retry-After": str(math.ceil(retry))} if isinstance(retry, int | float) else {}
        self._answer(HTTPStatus.TOO_MANY_REQUESTS, answer, extra)

    def _authorized(self) -> bool:
        if self.token is None:
            return True
        scheme, _, given = (self.headers.get("Authorization") or "").strip().partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), self.token):
            return True
        self._answer(
            HTTPStatus.UNAUTHORIZED,
            {"error": "missing or invalid bearer token"},
            {"WWW-Authenticate": "Bearer"},
        )
        return False

    def _answer(
        self, status: HTTPStatus, document: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


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
