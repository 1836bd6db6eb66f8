"""The HTTP servers of the processor (OTLP/HTTP, budget status, Prometheus metrics) on aiohttp.

``BackgroundServer`` runs an aiohttp application on an event loop of its own thread, with the
limits an endpoint open to a network needs:

- at most ``max_connections`` open connections. When all are taken, a new connection makes the
  one that has been silent longest give way, if any has been silent for a second or more
  (connected and not sending a request, or kept alive after its answer); else it is closed at
  once. Idle connections therefore cannot lock senders out.
- ``idle_timeout``: a connection that completes no request within that many seconds of
  connecting or of its last answer is closed, whether it sent nothing or only part of a request's
  headers; a request body that stops arriving for that long is abandoned (``read_body``).
- header sizes are bounded by aiohttp's parser (8 KiB per line and per field).

Malformed HTTP (bad framing, bad header values) is answered 400 by aiohttp's parser and logged at
debug level only: it is the sender's fault, not the processor's.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import socket
import ssl
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger("spanledger.processor.http")

_REGISTERING = 10.0
"""Seconds a new connection may take to be registered with aiohttp before it counts as gone."""
IDLE_GRACE = 1.0
"""Seconds a connection must have been silent before a new one may push it out."""


class _QuietLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """aiohttp's per-connection logger: malformed requests are the client's fault, so the
    tracebacks aiohttp logs for them go to debug."""

    def exception(self, msg: object, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("exc_info", True)
        self.debug(msg, *args, **kwargs)


class _Refuse(asyncio.Protocol):
    """Closes a connection the moment it is made (no slot left for it)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


class BackgroundServer:
    """Serves ``app`` on ``host:port`` from a thread with its own event loop.

    ``name`` is how errors and logs call the endpoint. ``port`` 0 picks a free port (see
    ``port`` once started).
    """

    def __init__(
        self,
        name: str,
        app: web.Application,
        host: str,
        port: int,
        *,
        max_connections: int = 256,
        idle_timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.name = name
        self.app = app
        self.host = host
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self._requested_port = port
        self._ssl = ssl_context
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._server: asyncio.base_events.Server | None = None
        self._since: dict[RequestHandler, float] = {}
        """Each open connection: when it last went silent (connected, or answered)."""
        self._busy: set[RequestHandler] = set()
        self._unregistered: set[RequestHandler] = set()
        self.refused_connections = 0
        self.evicted_connections = 0
        app.middlewares.append(self._track)

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{self.name} is not started")
        return int(self._server.sockets[0].getsockname()[1])

    def start(self) -> None:
        """Bind and serve; raise ``OSError`` naming the endpoint if it cannot listen."""
        if self._thread is not None:
            raise RuntimeError(f"{self.name} is already started")
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=self.name.replace(" ", "-"), daemon=True
        )
        self._thread.start()
        try:
            self.call(self._start()).result(10)
        except OSError as exc:
            self._stop_loop()
            where = f"[{self.host}]" if ":" in self.host else self.host
            reason = exc.strerror or str(exc)
            raise OSError(
                exc.errno, f"{self.name} cannot listen on {where}:{self._requested_port}: {reason}"
            ) from None

    def call(self, coroutine: Awaitable[Any]) -> Any:
        """Run ``coroutine`` on the server's loop; a ``concurrent.futures.Future`` of it."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)  # type: ignore[arg-type]

    async def _start(self) -> None:
        runner = web.AppRunner(
            self.app,
            handle_signals=False,
            access_log=None,
            keepalive_timeout=self.idle_timeout,
            logger=_QuietLogger(log, {}),
        )
        await runner.setup()
        self._runner = runner
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._server = await self._loop.create_server(
            self._connection_factory(runner.server),  # type: ignore[arg-type]
            self.host,
            self._requested_port,
            family=family,
            ssl=self._ssl,
            reuse_address=True,
            backlog=128,
            ssl_handshake_timeout=self.idle_timeout if self._ssl else None,
        )

    def _connection_factory(self, server: web.Server) -> Callable[[], asyncio.Protocol]:
        def make() -> asyncio.Protocol:
            self._forget_closed(server)
            if len(self._since) >= self.max_connections and not self._evict_idle():
                self.refused_connections += 1
                log.warning(
                    "%s refused a connection: %d connections open, none idle",
                    self.name,
                    len(self._since),
                )
                return _Refuse()
            handler = server()
            self._since[handler] = time.monotonic()
            self._unregistered.add(handler)
            return handler

        return make

    def _forget_closed(self, server: web.Server) -> None:
        """Drop the connections that closed. A connection accepted in the same batch may not be
        registered with aiohttp yet (asyncio calls ``connection_made`` on a later turn), so one
        is kept while it is young."""
        open_now = set(server.connections)
        now = time.monotonic()
        for handler in list(self._since):
            if handler in open_now:
                self._unregistered.discard(handler)
            elif handler not in self._unregistered or now - self._since[handler] > _REGISTERING:
                self._since.pop(handler, None)
                self._busy.discard(handler)
                self._unregistered.discard(handler)

    def _evict_idle(self) -> bool:
        """Close the connection silent longest, if silent for ``IDLE_GRACE``; whether one was."""
        now = time.monotonic()
        idle = [(since, id(h), h) for h, since in self._since.items() if h not in self._busy]
        if not idle:
            return False
        since, _, handler = min(idle, key=lambda item: item[:2])
        if now - since < IDLE_GRACE:
            return False
        handler.force_close()
        self._since.pop(handler, None)
        self._unregistered.discard(handler)
        self.evicted_connections += 1
        return True

    @web.middleware
    async def _track(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        protocol = request.protocol
        self._busy.add(protocol)
        try:
            return await handler(request)
        finally:
            self._busy.discard(protocol)
            if protocol in self._since:
                self._since[protocol] = time.monotonic()

    def stop(self, grace: float = 1.0) -> None:
        """Stop accepting; let requests in progress finish for up to ``grace`` seconds."""
        if self._thread is None:
            return
        try:
            self.call(self._shutdown(grace)).result(grace + 5.0)
        except Exception:
            log.debug("%s did not stop cleanly", self.name, exc_info=True)
        self._stop_loop()

    async def _shutdown(self, grace: float) -> None:
        if self._server is not None:
            self._server.close()
        if self._runner is not None:
            server = self._runner.server
            if server is not None:
                await server.shutdown(grace)
            await self._runner.cleanup()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(5.0)
        self._thread = None
        if not self._loop.is_running():
            self._loop.close()


async def read_body(request: web.Request, limit: int, idle_timeout: float) -> bytes | None:
    """The request body, or None when it is larger than ``limit`` (what was read is dropped).

    Each piece must arrive within ``idle_timeout`` seconds (``asyncio.TimeoutError`` otherwise).
    """
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = await asyncio.wait_for(request.content.readany(), idle_timeout)
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > limit:
            return None
        chunks.append(chunk)


def bearer_matches(expected: str | None, authorization: str | None) -> bool:
    """Whether ``authorization`` is ``Bearer <expected>`` (always, when nothing is expected)."""
    if expected is None:
        return True
    scheme, _, token = (authorization or "").strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        token.strip().encode("utf-8"), expected.encode("utf-8")
    )
