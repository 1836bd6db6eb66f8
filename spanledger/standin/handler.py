"""HTTP handling: routes, request bodies, scenarios, JSON and SSE responses, control paths."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from spanledger.standin import (
    admin_api,
    anthropic_wire,
    bedrock_wire,
    cohere_wire,
    gemini_wire,
    mistral_wire,
    ollama_wire,
    openai_chat,
    openai_embeddings,
    openai_responses,
)
from spanledger.standin.errors import anthropic_error, openai_error
from spanledger.standin.replies import Call, JsonReply, StreamReply
from spanledger.standin.scenario import SCENARIO_HEADER, Scenario, ScenarioError
from spanledger.standin.state import RecordedRequest, SharedState

logger = logging.getLogger(__name__)

Route = Callable[[Call, Scenario], JsonReply | StreamReply]

_ROUTES: dict[str, tuple[str, Route]] = {
    "/v1/chat/completions": ("openai", openai_chat.chat_completion),
    "/v1/responses": ("openai", openai_responses.response),
    "/v1/completions": ("openai", openai_chat.completion),
    "/v1/embeddings": ("openai", openai_embeddings.embeddings),
    "/v1/messages": ("anthropic", anthropic_wire.messages),
    "/v1/messages/count_tokens": ("anthropic", anthropic_wire.count_tokens),
    **{path: ("mistral", route) for path, route in mistral_wire.ROUTES.items()},
    **{path: ("cohere", route) for path, route in cohere_wire.ROUTES.items()},
    **{path: ("ollama", route) for path, route in ollama_wire.ROUTES.items()},
}

_PATTERN_ROUTES: tuple[tuple[re.Pattern[str], str, dict[str, Route]], ...] = (
    (
        gemini_wire.PATH,
        "gemini",
        {
            **gemini_wire.ROUTES,
            "rawPredict": anthropic_wire.messages,
            "streamRawPredict": anthropic_wire.messages,
        },
    ),
    (bedrock_wire.PATH, "bedrock", bedrock_wire.ROUTES),
)
"""Routes whose path carries the model: the pattern's groups become ``Call.params``; its
``method`` group picks the route."""

ErrorReply = Callable[[int, str | None, float | None, str], JsonReply]
"""``(status, message, retry_after, request_id)`` → the provider's error response."""

_ERRORS: dict[str, ErrorReply] = {
    "openai": lambda status, message, retry_after, _: openai_error(status, message, retry_after),
    "anthropic": anthropic_error,
    "gemini": gemini_wire.gemini_error,
    "bedrock": bedrock_wire.bedrock_error,
    "mistral": lambda status, message, retry_after, _: mistral_wire.mistral_error(
        status, message, retry_after
    ),
    "cohere": lambda status, message, retry_after, _: cohere_wire.cohere_error(
        status, message, retry_after
    ),
    "ollama": lambda status, message, retry_after, _: ollama_wire.ollama_error(
        status, message, retry_after
    ),
}
_REQUEST_ID_HEADERS = {
    "anthropic": "request-id",
    "gemini": "x-goog-request-id",
    "bedrock": "x-amzn-RequestId",
}
"""The header naming the request id, per provider (``x-request-id`` when not listed)."""

_MAX_BODY = 32 * 1024 * 1024


def find_route(path: str) -> tuple[str, Route, dict[str, str]] | None:
    """``(provider, route, path parameters)`` for an API path, or ``None``."""
    exact = _ROUTES.get(path.rstrip("/"))
    if exact is not None:
        return exact[0], exact[1], {}
    for pattern, provider, routes in _PATTERN_ROUTES:
        match = pattern.match(path)
        if match is not None and match["method"] in routes:
            params = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
            return provider, routes[match["method"]], params
    return None


class StandInHTTPServer(ThreadingHTTPServer):
    """A threaded server whose handler threads share one :class:`SharedState`."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    state: SharedState

    def __init__(self, address: tuple[str, int], state: SharedState) -> None:
        super().__init__(address, StandInHandler)
        self.state = state
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def close_connections(self) -> None:
        """End kept-alive connections, so no client is served after :meth:`StandIn.stop`."""
        with self.connections_lock:
            connections = list(self.connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that goes away mid-answer is normal here; anything else is logged."""
        if not isinstance(sys.exc_info()[1], OSError):
            logger.exception("stand-in failed to answer %s", client_address)


class StandInHandler(BaseHTTPRequestHandler):
    """Answers one connection's requests (HTTP/1.1 keep-alive)."""

    protocol_version = "HTTP/1.1"
    server_version = "spanledger-standin"
    sys_version = ""
    disable_nagle_algorithm = True
    wbufsize = 64 * 1024
    """Buffered: a JSON reply leaves in one send; streams flush after every event."""
    server: StandInHTTPServer
    request_id = "req_standin_control"
    """Sent as ``x-request-id`` (OpenAI) or ``request-id`` (Anthropic); set per API request."""

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests and benchmarks read ``requests`` instead of an access log."""

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        path = parts.path
        if path in admin_api.ROUTES:
            self._admin(path, parts.query)
        elif path == "/_standin/requests":
            with self.server.state.lock:
                recorded = [r.to_dict() for r in self.server.state.requests]
            self._send_json(JsonReply(recorded))
        elif path == "/_standin/health":
            self._send_json(JsonReply({"status": "ok"}))
        else:
            self._send_json(_not_found(path))

    def do_POST(self) -> None:
        self.request_id = StandInHandler.request_id
        parts = urlsplit(self.path)
        raw = self._read_body()
        if raw is None:
            return
        if parts.path.startswith("/_standin/"):
            self._control(parts.path, raw)
            return
        route = find_route(parts.path)
        if route is None:
            self._send_json(_not_found(parts.path))
            return
        provider, handler, params = route
        headers = {k.lower(): v for k, v in self.headers.items()}
        body, problem = _decode_json(raw)
        if problem is None and not isinstance(body, dict):
            problem = "request body must be a JSON object"
        header_scenario = None
        if problem is None and SCENARIO_HEADER in headers:
            try:
                header_scenario = Scenario.from_json(headers[SCENARIO_HEADER])
            except ScenarioError as exc:
                problem = f"{SCENARIO_HEADER}: {exc}"
        number, scenario = self.server.state.take(header_scenario)
        self.request_id = f"req_standin{number:012d}"
        error_reply = _ERRORS[provider]
        request_id = self.request_id

        def fail(status: int, message: str | None = None, retry: float | None = None) -> JsonReply:
            return error_reply(status, message, retry, request_id)

        self.server.state.record(
            RecordedRequest(
                method="POST",
                path=parts.path,
                headers=headers,
                json=body,
                query=dict(parse_qsl(parts.query)),
                scenario=scenario,
            )
        )
        if problem is not None:
            self._send_json(fail(400, problem), provider)
            return
        scenario = scenario or Scenario()
        if scenario.delay:
            time.sleep(scenario.delay)
        if scenario.error is not None:
            reply = fail(scenario.error, scenario.error_message, scenario.retry_after)
            reply.headers.update(scenario.response_headers or {})
            self._send_json(reply, provider)
            return
        call = Call(body=body, number=number, created=int(time.time()), params=params)
        try:
            answer = handler(call, scenario)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            problem = f"the stand-in cannot answer this request: {exc!r}"
            self._send_json(fail(400, problem), provider)
            return
        answer.headers.update(scenario.response_headers or {})
        usage = answer.usage if isinstance(answer, StreamReply) else _usage_of(answer)
        model = scenario.model or str(body.get("model", ""))
        self.server.state.billing.record(parts.path, model, usage, headers)
        if isinstance(answer, StreamReply):
            self._send_stream(answer, scenario, provider)
        else:
            self._send_json(answer, provider, cut=scenario.drop_after)

    def _admin(self, path: str, query: str) -> None:
        """An admin usage or cost request (a queued scenario may fail it)."""
        state = self.server.state
        number, scenario = state.take(None)
        self.request_id = f"req_standin{number:012d}"
        headers = {k.lower(): v for k, v in self.headers.items()}
        state.record(RecordedRequest("GET", path, headers, None, dict(parse_qsl(query)), scenario))
        reply = admin_api.answer(
            path,
            query,
            headers,
            state.billing,
            scenario=scenario,
            admin_key=state.admin_key,
            request_id=self.request_id,
        )
        self._send_json(reply, admin_api.ROUTES[path].provider)

    def do_DELETE(self) -> None:
        if urlsplit(self.path).path == "/_standin/requests":
            self.server.state.clear()
            self._send_json(JsonReply({"cleared": True}))
        else:
            self._send_json(_not_found(self.path))

    def _control(self, path: str, raw: bytes) -> None:
        state = self.server.state
        if path == "/_standin/clear":
            state.clear()
            self._send_json(JsonReply({"cleared": True}))
            return
        if path != "/_standin/scenarios":
            self._send_json(_not_found(path))
            return
        data, problem = _decode_json(raw)
        if problem is None:
            try:
                items = data if isinstance(data, list) else [data]
                scenarios = [Scenario.from_dict(item) for item in items]
            except ScenarioError as exc:
                problem = str(exc)
        if problem is not None:
            self._send_json(JsonReply({"error": problem}, 400))
            return
        state.push(scenarios)
        self._send_json(JsonReply({"queued": len(scenarios)}))

    def _read_body(self) -> bytes | None:
        """The request body (``content-length`` or chunked); ``None`` after answering 400."""
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            return self._read_chunked()
        length = self.headers.get("content-length")
        if length is None:
            return b""
        try:
            size = int(length)
        except ValueError:
            size = -1
        if not 0 <= size <= _MAX_BODY:
            return self._refuse_body(f"bad content-length {length!r}")
        return self.rfile.read(size)

    def _read_chunked(self) -> bytes | None:
        body = bytearray()
        while True:
            line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            try:
                size = int(line, 16)
            except ValueError:
                return self._refuse_body(f"bad chunk size {line[:20]!r}")
            if size == 0 or len(body) + size > _MAX_BODY:
                break
            body += self.rfile.read(size)
            self.rfile.readline(8)
        if size:
            return self._refuse_body("chunked body too large")
        while self.rfile.readline(1024).strip():
            pass
        return bytes(body)

    def _refuse_body(self, problem: str) -> None:
        self.close_connection = True
        self._send_json(JsonReply({"error": problem}, 400))

    def _headers(
        self, status: int, content_type: str, extra: dict[str, str], provider: str
    ) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header(_REQUEST_ID_HEADERS.get(provider, "x-request-id"), self.request_id)
        for name, value in extra.items():
            self.send_header(name, value)

    def _send_json(
        self, reply: JsonReply, provider: str = "openai", cut: int | None = None
    ) -> None:
        """Send ``reply``; with ``cut``, only that many bytes of its body, then drop."""
        payload = reply.encode()
        self._headers(reply.status, "application/json", reply.headers, provider)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        if cut is None:
            self.wfile.write(payload)
            return
        self.wfile.write(payload[:cut])
        self._drop()

    def _send_stream(self, reply: StreamReply, scenario: Scenario, provider: str) -> None:
        self._headers(200, reply.content_type, reply.headers, provider)
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for sent, event in enumerate(reply.events):
            if scenario.drop_after is not None and sent >= scenario.drop_after:
                self._drop()
                return
            if scenario.stream_error_after is not None and sent >= scenario.stream_error_after:
                failure = reply.error_event(sent, scenario.error_message)
                self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(failure), failure))
                return
            if sent and scenario.chunk_delay:
                time.sleep(scenario.chunk_delay)
            self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def _drop(self) -> None:
        """Close the connection in the middle of the chunked body, as a failed upstream would."""
        self.close_connection = True
        self.wfile.flush()
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


def _decode_json(raw: bytes) -> tuple[Any, str | None]:
    if not raw:
        return {}, None
    try:
        data = json.loads(raw)
    except ValueError as exc:
        return None, f"request body is not valid JSON: {exc}"
    if not isinstance(data, dict | list):
        return None, "request body must be a JSON object"
    return data, None


def _usage_of(reply: JsonReply) -> object:
    if reply.status == 200 and isinstance(reply.body, dict):
        return reply.body.get("usage")
    return None


def _not_found(path: str) -> JsonReply:
    return JsonReply(
        {"error": {"message": f"no stand-in route for {path}", "type": "not_found"}}, 404
    )
