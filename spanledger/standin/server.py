"""``StandIn``: the stand-in server's lifecycle and the view tests have of it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

from spanledger.standin.billing import Billing
from spanledger.standin.handler import StandInHTTPServer
from spanledger.standin.scenario import Scenario
from spanledger.standin.state import RecordedRequest, SharedState


class StandIn:
    """A local LLM API stand-in on ``127.0.0.1``, served from a background thread.

    >>> with StandIn() as llm:
    ...     client = openai.OpenAI(base_url=llm.openai_base_url, api_key="test")

    Queued scenarios (:meth:`push`, ``POST /_standin/scenarios``) answer the next API requests
    in order, one request each (``repeat`` for more); an SDK retry is a new request, so a
    queued ``error`` fails the first attempt only and the retry gets the next scenario or the
    default answer. A ``x-standin-scenario`` header answers every request that carries it,
    retries included (the SDKs resend the same headers), and leaves the queue untouched.

    The stand-in also serves the providers' admin usage and cost APIs from the calls it
    answered (:mod:`spanledger.standin.admin_api`): ``clock`` dates the calls (unix seconds),
    ``prices`` bills models at prices of their own (:mod:`spanledger.standin.billing`), and
    ``admin_key``, when set, is the only admin key accepted.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        clock: Callable[[], float] = time.time,
        prices: Mapping[str, Mapping[str, Any]] | None = None,
        admin_key: str | None = None,
    ) -> None:
        self._address = (host, port)
        self._state = SharedState(clock, prices, admin_key)
        self._server: StandInHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> StandIn:
        """Bind and serve in a daemon thread; returns ``self``."""
        if self._server is not None:
            return self
        server = StandInHTTPServer(self._address, self._state)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="spanledger-standin",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
            server.close_connections()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> StandIn:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the stand-in is not running; call start() first")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self._address[0]}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """``base_url`` for ``openai.OpenAI``."""
        return self.url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        """``base_url`` for ``anthropic.Anthropic``."""
        return self.url

    @property
    def mistral_base_url(self) -> str:
        """``server_url`` for ``mistralai.Mistral`` (Mistral's paths are OpenAI's, so they are
        served under a prefix of their own)."""
        return self.url + "/mistral"

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the API requests received since the last :meth:`clear`."""
        with self._state.lock:
            return list(self._state.requests)

    @property
    def queued(self) -> int:
        """Scenarios still waiting in the queue."""
        with self._state.lock:
            return len(self._state.queue)

    def push(self, *scenarios: Scenario) -> None:
        """Queue scenarios for the next API requests, first in first out."""
        self._state.push(list(scenarios))

    def clear(self) -> None:
        """Forget recorded requests, queued scenarios and the bill."""
        self._state.clear()

    @property
    def billing(self) -> Billing:
        """The calls answered so far, as the admin APIs bill them."""
        return self._state.billing
